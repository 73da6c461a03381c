// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.Guests.ModeSwitchGuest;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Paging outside long mode: 32-bit paging with 4 KiB and PSE 4 MiB pages (Intel SDM Vol. 3A 4.3) and PAE paging
/// with its PDPTE registers (SDM 4.4; arch/x86/kvm/x86.c load_pdptrs; arch/x86/kvm/mmu/paging_tmpl.h
/// FNAME(walk_addr_generic) for PTTYPE 32 and PT32E). A <see cref="ModeSwitchGuest"/> enters 32-bit protected mode
/// from real mode (EFER.LME cleared by the host), jumps to a program in a second slot, builds nothing itself: the host
/// writes the tables. Each step reports 32-bit values on port 0x10; a #PF handler reports 0x0E, the error code and
/// CR2, a #GP handler 0x0D and the error code, and both step over the faulting instruction (a fetch fault returns to
/// the caller of the fetched address) with a jump, not IRET (HostDeviations.KvmPvmIretIn32BitCodeFails).
/// </summary>
public static class LegacyPaging
{
    private const ulong Slot1 = 0x20000, Slot1Size = 0x10000;
    private const ulong Program = 0x20000, PfHandler = 0x22000, GpHandler = 0x22400, RetByte = 0x22F00;
    private const ulong Idt = 0x23000, IdtPointer = 0x23800;
    private const ulong PageDirectory = 0x24000, PageTable = 0x25000, Pdpt = 0x26000;
    private const ulong PageA = 0x27000, PageB = 0x28000;
    private const uint PfReport = 0x0E, GpReport = 0x0D;
    private const ulong P = 1, RW = 2, PS = 1UL << 7, A = 1UL << 5, D = 1UL << 6, NX = 1UL << 63;
    private const ulong EferLme = 1UL << 8, EferNx = 1UL << 11;

    /// <summary>A protected-mode guest with its program, handlers and IDT in slot 1; tables are the caller's.</summary>
    private sealed class Guest : IDisposable
    {
        public Guest(Kvm kvm, Action<Assembler> program, bool nxe)
        {
            Mode = ModeSwitchGuest.Create(kvm, code16: EnterProtectedMode, code32: a =>
            {
                a.mov(ax, DataSelector);
                a.mov(ds, ax);
                a.mov(es, ax);
                a.mov(ss, ax);
                a.mov(esp, (uint)StackTop);
                a.mov(eax, (uint)Program);
                a.jmp(eax);
            });
            try
            {
                Memory = Mode.Vm.AllocateMemory(Slot1Size);
                Slot = Mode.Vm.AddMemorySlot(1, Slot1, Memory);
                Write(Program, Assemble(32, Program, a =>
                {
                    a.lidt(__[(uint)IdtPointer]);
                    program(a);
                    var halt = a.CreateLabel();
                    a.Label(ref halt);
                    a.hlt();
                    a.jmp(halt);
                }));
                Write(PfHandler, Assemble(32, PfHandler, PageFaultHandler));
                Write(GpHandler, Assemble(32, GpHandler, GeneralProtectionHandler));
                Write(RetByte, new byte[] { 0xC3 });
                Write(Idt + 13 * 8, Gate(GpHandler));
                Write(Idt + 14 * 8, Gate(PfHandler));
                Write<ushort>(IdtPointer, 15 * 8 - 1);
                Write(IdtPointer + 2, (uint)Idt);
                // Legacy paging: EFER.LME clear (ModeSwitchGuest sets it); NXE from the host (no CPUID needed for KVM_SET_SREGS).
                var sregs = Mode.Vcpu.GetSregs();
                sregs.efer = (sregs.efer & ~EferLme) | (nxe ? EferNx : 0);
                Mode.Vcpu.SetSregs(sregs);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public ModeSwitchGuest Mode { get; }

        public AnonymousMemory? Memory { get; }

        public MemorySlot? Slot { get; }

        public void Write(ulong gpa, ReadOnlySpan<byte> bytes) => Memory!.Write(gpa - Slot1, bytes);

        public void Write<T>(ulong gpa, T value) where T : unmanaged => Memory!.Write(gpa - Slot1, value);

        public T Read<T>(ulong gpa) where T : unmanaged => Memory!.Read<T>(gpa - Slot1);

        public void Dispose()
        {
            Mode.Vcpu.Dispose();
            Slot?.Dispose();
            Memory?.Dispose();
            Mode.Dispose();
        }
    }

    /// <summary>A 32-bit interrupt gate, DPL 0, in the flat code segment (SDM Vol. 3A 6.11, Figure 6-2).</summary>
    private static ulong Gate(ulong offset) =>
        (offset & 0xFFFF) | ((ulong)Code32Selector << 16) | (0x8EUL << 40) | ((offset >> 16 & 0xFFFF) << 48);

    private static void Report(Assembler a) => a.@out(ReportPort.Port, eax);

    private static void Report(Assembler a, uint value)
    {
        a.mov(eax, value);
        Report(a);
    }

    /// <summary>
    /// #PF: report 0x0E, the error code, CR2. A fetch fault (CR2 = the pushed EIP) returns to the caller of the fetched
    /// address; a data fault resumes 2 bytes on (every faulting access here is a 2-byte <c>mov</c> through EBX).
    /// </summary>
    private static void PageFaultHandler(Assembler a)
    {
        var data = a.CreateLabel();
        Report(a, PfReport);
        a.pop(eax);
        Report(a);
        a.mov(eax, cr2);
        Report(a);
        a.cmp(eax, __dword_ptr[esp]);
        a.jne(data);
        a.add(esp, 12);
        a.ret();
        a.Label(ref data);
        a.mov(eax, __dword_ptr[esp]);
        a.add(eax, 2);
        a.add(esp, 12);
        a.jmp(eax);
    }

    /// <summary>#GP: report 0x0D and the error code, resume 3 bytes on (a MOV to a control register).</summary>
    private static void GeneralProtectionHandler(Assembler a)
    {
        Report(a, GpReport);
        a.pop(eax);
        Report(a);
        a.mov(eax, __dword_ptr[esp]);
        a.add(eax, 3);
        a.add(esp, 12);
        a.jmp(eax);
    }

    /// <summary><c>mov ebx, linear; mov eax, [ebx]</c> (8B 03).</summary>
    private static void Load(Assembler a, uint linear)
    {
        a.mov(ebx, linear);
        a.mov(eax, __dword_ptr[ebx]);
    }

    /// <summary><c>mov ebx, linear; mov eax, value; mov [ebx], eax</c> (89 03).</summary>
    private static void Store(Assembler a, uint linear, uint value)
    {
        a.mov(ebx, linear);
        a.mov(eax, value);
        a.mov(__dword_ptr[ebx], eax);
    }

    private static void SetCr(Assembler a, AssemblerRegisterCR cr, uint orBits)
    {
        a.mov(eax, cr);
        a.or(eax, unchecked((int)orBits));
        a.mov(cr, eax);
    }

    /// <summary>
    /// Runs to the first exit that is not an OUT to the report port; returns the values, that exit and, for
    /// KVM_EXIT_MMIO, its address.
    /// </summary>
    private static (List<uint> Reports, KvmExitReason Last, ulong MmioAddress) Run(Vcpu vcpu)
    {
        var reports = new List<uint>();
        for (int n = 0; n < 128; n++)
        {
            var exit = vcpu.Run();
            if (exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut && exit.IoPort == ReportPort.Port)
            {
                var data = exit.IoData;
                reports.Add(exit.IoSize == 4 ? BitConverter.ToUInt32(data) : data[0]);
                continue;
            }
            return (reports, exit.Reason, exit.Reason == KvmExitReason.KVM_EXIT_MMIO ? exit.MmioAddress : 0);
        }
        throw new Xunit.Sdk.XunitException("the guest did not stop within 128 exits");
    }

    private static string Hex(IEnumerable<uint> values) => string.Join(", ", values.Select(r => $"0x{r:X}"));

    private static void AssertRun(Guest g, uint[] expected, KvmExitReason last = KvmExitReason.KVM_EXIT_HLT, ulong mmioAddress = 0)
    {
        var run = Run(g.Mode.Vcpu);
        Assert.True(run.Last == last && run.MmioAddress == mmioAddress,
            $"expected {last} (MMIO 0x{mmioAddress:X}), got {run.Last} (MMIO 0x{run.MmioAddress:X}) after [{Hex(run.Reports)}]");
        Assert.True(expected.SequenceEqual(run.Reports), $"expected [{Hex(expected)}], got [{Hex(run.Reports)}]");
    }

    /// <summary>The pages both slots cover, identity-mapped by 4 KiB PTEs (code, stack, handlers, IDT, tables).</summary>
    private static IEnumerable<ulong> IdentityPages() =>
        Enumerable.Range(0, (int)((Base + Size + Slot1Size - Base) >> 12)).Select(n => Base + ((ulong)n << 12));

    /// <summary>
    /// 32-bit tables: PDE 0 → page table (identity for both slots; linear 0x100000 → PageA, 0x101000 → PageB read-only,
    /// 0x102000 not present); PDE 1: a 4 MiB page at physical 0 (linear 0x400000 + x → x); PDE 2: a 4 MiB page with
    /// bit 17, reserved by KVM's PSE-36 (mmu.c __reset_rsvds_bits_mask PT32_ROOT_LEVEL: rsvd_bits(17, 21)).
    /// </summary>
    private static void Write32BitTables(Guest g)
    {
        foreach (ulong page in IdentityPages()) g.Write(PageTable + (page >> 12) * 4, (uint)(page | P | RW));
        g.Write(PageTable + 0x100 * 4, (uint)(PageA | P | RW));
        g.Write(PageTable + 0x101 * 4, (uint)(PageB | P));
        g.Write(PageDirectory + 0 * 4, (uint)(PageTable | P | RW));
        g.Write(PageDirectory + 1 * 4, (uint)(0 | PS | P | RW));
        g.Write(PageDirectory + 2 * 4, (uint)((1UL << 17) | PS | P | RW));
    }

    [ConformanceCase("Intel SDM Vol. 3A 4.3 + paging_tmpl.h FNAME(walk_addr_generic) PTTYPE 32: 4 KiB and PSE 4 MiB pages, A/D, #PF error codes and CR2")]
    public static void thirty_two_bit_paging_maps_4k_and_4m_pages_and_reports_page_faults(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = new Guest(kvm, a =>
        {
            SetCr(a, cr4, 0x10);                     // CR4.PSE
            a.mov(eax, (uint)PageDirectory);
            a.mov(cr3, eax);
            SetCr(a, cr0, 0x8001_0000);              // CR0.PG | CR0.WP
            Store(a, 0x10_0010, 0x1122_3344);        // 4 KiB page: linear 0x100010 → PageA + 0x10
            Load(a, 0x40_0000 + (uint)PageA + 0x10); // the same bytes through the 4 MiB page
            Report(a);
            Store(a, 0x40_0000 + (uint)PageB + 0x20, 0x5566_7788); // write through the 4 MiB page (writable)
            Load(a, 0x10_1020);                      // read through the read-only 4 KiB PTE
            Report(a);
            Store(a, 0x10_1020, 0);                  // supervisor write to a read-only page with CR0.WP: #PF P|W
            Load(a, 0x10_2004);                      // not present: #PF 0
            Load(a, 0x80_0008);                      // 4 MiB PDE with reserved bit 17: #PF P|RSVD
            a.mov(ebx, 0x10_2000u);
            a.call(ebx);                             // fetch from a not-present page, EFER.NXE set: #PF I/D
        }, nxe: true);
        Write32BitTables(g);
        if (HostDeviations.KvmPvmNoPagingOutsideLongMode(ctx.Target.IsReal))
        {
            // MOV CR0 with PG is #GP(0); paging stays off and the first store goes to GPA 0x100010: no memslot.
            AssertRun(g, [GpReport, 0], KvmExitReason.KVM_EXIT_MMIO, 0x10_0010);
            Assert.Equal(0UL, g.Mode.Vcpu.GetSregs().cr0 & 0x8000_0000);
            return;
        }
        AssertRun(g, [
            0x1122_3344, 0x5566_7788,
            PfReport, 0x3, 0x10_1020,
            PfReport, 0x0, 0x10_2004,
            PfReport, 0x9, 0x80_0008,
            // paging_tmpl.h: "if (fetch_fault && (is_efer_nx(mmu) || is_cr4_smep(mmu))) errcode |= PFERR_FETCH_MASK"
            // — the MMU role's efer_nx follows EFER.NXE in 32-bit paging too (mmu.c kvm_calc_cpu_role).
            PfReport, 0x10, 0x10_2000,
        ]);
        Assert.Equal(0x5566_7788u, g.Read<uint>(PageB + 0x20));
        // A on every entry walked, D on a written leaf; a faulting walk changes nothing (the 4 MiB PDE with bit 17).
        uint Bits(ulong entry) => g.Read<uint>(entry) & (uint)(A | D);
        Assert.Equal((uint)A, Bits(PageDirectory));
        Assert.Equal((uint)(A | D), Bits(PageTable + 0x100 * 4));
        Assert.Equal((uint)A, Bits(PageTable + 0x101 * 4));
        Assert.Equal((uint)(A | D), Bits(PageDirectory + 4));
        Assert.Equal(0u, Bits(PageDirectory + 8));
    }

    /// <summary>
    /// PAE tables: PDPT at <see cref="Pdpt"/> with PDPTE 0 and 1 → one page directory; PDE 0 → page table (identity
    /// for both slots; 0x100000 → PageA, 0x101000 → PageB read-only, 0x103000 → PageA with bit 62, reserved below
    /// MAXPHYADDR..62); PDE 1: 2 MiB page at physical 0; PDE 2: the same with NX; PDE 3: a 2 MiB page with bit 13
    /// (reserved in a large PDE). Three bad PDPTs follow in the same page, 32 bytes apart: PDPTE 0 with bit 5, with
    /// bit 1, and a good one whose not-present PDPTE 1 has every other bit set (not checked: load_pdptrs tests only
    /// present entries).
    /// </summary>
    private static void WritePaeTables(Guest g)
    {
        foreach (ulong page in IdentityPages()) g.Write(PageTable + (page >> 12) * 8, page | P | RW);
        g.Write(PageTable + 0x100 * 8, PageA | P | RW);
        g.Write(PageTable + 0x101 * 8, PageB | P);
        g.Write(PageTable + 0x103 * 8, PageA | P | RW | (1UL << 62));
        g.Write(PageDirectory + 0 * 8, PageTable | P | RW);
        g.Write(PageDirectory + 1 * 8, 0 | PS | P | RW);
        g.Write(PageDirectory + 2 * 8, 0 | PS | P | RW | NX);
        g.Write(PageDirectory + 3 * 8, (1UL << 13) | PS | P | RW);
        g.Write(Pdpt + 0, PageDirectory | P);
        g.Write(Pdpt + 8, PageDirectory | P);
        g.Write(Pdpt + 0x20, PageDirectory | P | (1UL << 5));
        g.Write(Pdpt + 0x40, PageDirectory | P | RW);
        g.Write(Pdpt + 0x60, PageDirectory | P);
        g.Write(Pdpt + 0x68, ~P);
    }

    [ConformanceCase("Intel SDM Vol. 3A 4.4 + x86.c load_pdptrs + paging_tmpl.h PT32E: PDPTEs loaded at CR0/CR3 writes (#GP on reserved bits), 2 MiB pages, NX, reserved bits")]
    public static void pae_paging_loads_pdptes_at_cr_writes_and_walks_2m_pages_with_nx(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = new Guest(kvm, a =>
        {
            SetCr(a, cr4, 0x20);                     // CR4.PAE with paging off: no PDPTE load
            a.mov(eax, (uint)Pdpt + 0x20);
            a.mov(cr3, eax);                         // a bad PDPT with paging off: accepted
            SetCr(a, cr0, 0x8001_0000);              // CR0.PG loads it: #GP(0), CR0 unchanged
            a.mov(eax, cr0);
            a.shr(eax, 31);
            Report(a);
            a.mov(eax, (uint)Pdpt);
            a.mov(cr3, eax);
            SetCr(a, cr0, 0x8001_0000);              // PAE paging on
            Store(a, 0x20_0000 + (uint)PageA + 0x10, 0xAABB_CCDD); // through the 2 MiB page
            Load(a, 0x10_0010);                      // the same bytes through the 4 KiB page
            Report(a);
            Load(a, 0x40_0000 + (uint)PageA + 0x10); // reading an NX page is fine
            Report(a);
            a.mov(ebx, 0x40_0000u + (uint)RetByte);
            a.call(ebx);                             // fetch from the NX page: #PF P|I/D
            a.mov(ebx, (uint)RetByte);
            a.call(ebx);                             // the same byte through the identity map runs
            Load(a, 0x60_0010);                      // 2 MiB PDE with bit 13: #PF P|RSVD
            Load(a, 0x10_3000);                      // PTE with bit 62: #PF P|RSVD
            Store(a, 0x10_1000, 0);                  // write to a read-only page with CR0.WP: #PF P|W
            Load(a, 0x4020_0000 + (uint)PageA + 0x10); // through PDPTE 1
            Report(a);
            a.mov(__dword_ptr[(long)Pdpt + 8], 0);   // clear PDPTE 1 in memory: the loaded copy still maps
            Load(a, 0x4020_0000 + (uint)PageA + 0x10);
            Report(a);
            a.mov(eax, cr3);
            a.mov(cr3, eax);                         // reload: PDPTE 1 is now not present
            Load(a, 0x4020_0000 + (uint)PageA + 0x10);
            a.mov(eax, (uint)Pdpt + 0x20);
            a.mov(cr3, eax);                         // PDPTE with bit 5: #GP(0)
            a.mov(eax, (uint)Pdpt + 0x40);
            a.mov(cr3, eax);                         // PDPTE with bit 1 (R/W): #GP(0)
            a.mov(eax, cr3);
            Report(a);                               // CR3 unchanged
            a.mov(eax, (uint)Pdpt + 0x60);
            a.mov(cr3, eax);                         // a not-present PDPTE's bits are not checked
            a.mov(eax, cr3);
            Report(a);
            Load(a, 0x10_0010);
            Report(a);
        }, nxe: true);
        WritePaeTables(g);
        if (HostDeviations.KvmPvmNoPagingOutsideLongMode(ctx.Target.IsReal))
        {
            // Both MOV CR0 with PG are #GP(0) — the bad PDPT's and the good one's; the first store, to linear
            // 0x227010 with paging off, exits as MMIO.
            AssertRun(g, [GpReport, 0, 0, GpReport, 0], KvmExitReason.KVM_EXIT_MMIO, 0x20_0000 + PageA + 0x10);
            Assert.Equal(0UL, g.Mode.Vcpu.GetSregs().cr0 & 0x8000_0000);
            return;
        }
        AssertRun(g, [
            GpReport, 0, 0,
            0xAABB_CCDD, 0xAABB_CCDD,
            PfReport, 0x11, 0x40_0000 + (uint)RetByte,
            PfReport, 0x9, 0x60_0010,
            PfReport, 0x9, 0x10_3000,
            PfReport, 0x3, 0x10_1000,
            0xAABB_CCDD, 0xAABB_CCDD,
            PfReport, 0x0, 0x4020_0000 + (uint)PageA + 0x10,
            GpReport, 0, GpReport, 0, (uint)Pdpt,
            (uint)Pdpt + 0x60, 0xAABB_CCDD,
        ]);
        ulong Bits(ulong entry) => g.Read<ulong>(entry) & (A | D);
        Assert.Equal(A, Bits(PageDirectory));
        Assert.Equal(A, Bits(PageTable + 0x100 * 8));
        Assert.Equal(A | D, Bits(PageDirectory + 8));
        Assert.Equal(A, Bits(PageDirectory + 16));
        Assert.Equal(0UL, Bits(PageDirectory + 24));
        Assert.Equal(0UL, Bits(PageTable + 0x101 * 8));
        // The walk neither checks nor updates a PDPTE (bit 5 is reserved there, not Accessed).
        Assert.Equal(PageDirectory | P, g.Read<ulong>(Pdpt));
    }

    /// <summary>A flat 32-bit segment (base 0, 4 GiB, G=1, D/B=1) for KVM_SET_SREGS.</summary>
    private static kvm_segment Flat(ushort selector, byte type) => new()
    {
        @base = 0, limit = 0xFFFF_FFFF, selector = selector, type = type, present = 1, dpl = 0, db = 1, s = 1, l = 0, g = 1,
    };

    [ConformanceCase("x86.c __set_sregs_common: KVM_SET_SREGS into PAE paging loads the PDPTEs from CR3 (load_pdptrs)")]
    public static void set_sregs_into_pae_paging_loads_the_pdptes(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = new Guest(kvm, a =>
        {
            Load(a, 0x20_0000 + (uint)PageA + 0x10);
            Report(a);
            Load(a, 0x4010_0010);                    // PDPTE 1 → PDE 0 → PTE 0x100 → PageA
            Report(a);
        }, nxe: false);
        WritePaeTables(g);
        g.Write(PageA + 0x10, 0x0BAD_F00Du);
        var vcpu = g.Mode.Vcpu;
        var sregs = vcpu.GetSregs();
        sregs.cs = Flat(Code32Selector, 0xB);
        sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = Flat(DataSelector, 0x3);
        sregs.gdt.@base = Gdt;
        sregs.gdt.limit = GdtLimit;
        sregs.cr0 = 0x8001_0011;                     // PG | WP | ET | PE
        sregs.cr4 = 0x20;                            // PAE
        sregs.cr3 = Pdpt;
        sregs.efer = 0;
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(new kvm_regs { rip = Program, rsp = StackTop, rflags = 2 });
        if (HostDeviations.KvmPvmDropsCr0PgWithoutLongMode(ctx.Target.IsReal) && HostDeviations.KvmPvmNoPagingOutsideLongMode(ctx.Target.IsReal))
        {
            // KVM_SET_SREGS succeeds but KVM_GET_SREGS shows CR0.PG clear; KVM_RUN then stops at once with
            // KVM_EXIT_SHUTDOWN, nothing run (with PG clear in the same KVM_SET_SREGS, the program runs).
            Assert.Equal(0UL, vcpu.GetSregs().cr0 & 0x8000_0000);
            AssertRun(g, [], KvmExitReason.KVM_EXIT_SHUTDOWN);
            Assert.Equal(Program, vcpu.GetRegs().rip);
            return;
        }
        AssertRun(g, [0x0BAD_F00D, 0x0BAD_F00D]);
        var after = vcpu.GetSregs();
        Assert.Equal(Pdpt, after.cr3);
        Assert.Equal(0x20UL, after.cr4 & 0x20);
        Assert.Equal(0UL, after.efer & (1UL << 10)); // not long mode
    }
}
