// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// 32-bit and PAE paging rules the conformance case (src/KvmSharp.Conformance/Cases/LegacyPaging.cs) cannot show on
/// this host (kvm_pvm refuses paging outside long mode: HostDeviations.KvmPvmNoPagingOutsideLongMode) and that need
/// CPL 3, which the emulator reaches here by KVM_SET_SREGS (its 32-bit delivery to an inner privilege level is not
/// modelled, so a fault ends without an IDT: #PF → #GP → #DF → KVM_EXIT_SHUTDOWN, with CR2 kept). Sources: Intel SDM
/// Vol. 3A 4.3, 4.4, 4.6; arch/x86/kvm/mmu/paging_tmpl.h FNAME(walk_addr_generic); x86.c __set_sregs_common.
/// </summary>
public sealed class LegacyPagingTests
{
    private const ulong Pd = 0x3000, Pt = 0x5000, Pdpt = 0x2000, Data = 0x6000;
    private const ulong P = 1, RW = 2, US = 4, PS = 0x80;
    private const ulong Cr0PgWpEtPe = 0x8001_0011;

    private static void Write32(RawGuest g, ulong gpa, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(g.Memory.GetSpan(gpa, 4), value);

    /// <summary>
    /// 32-bit code at <see cref="RawGuest.CodeGpa"/> at CPL 0 or 3 (IOPL 3, so OUT works at CPL 3) with paging per
    /// <paramref name="cr4"/>; the program reads or writes, reports AL on port 0x10, then loops.
    /// </summary>
    private static void Start32(RawGuest g, Action<Assembler> program, ulong cr4, int cpl, ulong cr0 = Cr0PgWpEtPe, ulong? cr3 = null)
    {
        g.Write(RawGuest.CodeGpa, RawGuest.Assemble(32, RawGuest.CodeGpa, a =>
        {
            program(a);
            a.@out(0x10, al);
            var spin = a.CreateLabel();
            a.Label(ref spin);
            a.jmp(spin);
        }));
        var s = g.Sregs;
        s.cr0 = cr0;
        s.cr4 = cr4;
        s.cr3 = cr3 ?? ((cr4 & 0x20) != 0 ? Pdpt : Pd);
        s.efer = 0;
        byte dpl = (byte)cpl;
        s.cs = new kvm_segment { limit = 0xffff_ffff, selector = (ushort)(8 | cpl), type = 11, present = 1, s = 1, db = 1, g = 1, dpl = dpl };
        var data = new kvm_segment { limit = 0xffff_ffff, selector = (ushort)(16 | cpl), type = 3, present = 1, s = 1, db = 1, g = 1, dpl = dpl };
        s.ds = s.es = s.fs = s.gs = s.ss = data;
        s.idt = default;
        s.gdt = default;
        g.Sregs = s;
        g.Regs = new kvm_regs { rip = RawGuest.CodeGpa, rsp = 0x30_0000, rflags = 0x3002 };
    }

    /// <summary>32-bit tables: PDE 0 a user 4 MiB page at 0 (code, data), PDE 1 a supervisor 4 MiB page at 0.</summary>
    private static void Tables32(RawGuest g)
    {
        Write32(g, Pd + 0, (uint)(0 | PS | US | RW | P));
        Write32(g, Pd + 4, (uint)(0 | PS | RW | P));
    }

    /// <summary>PAE tables: PDPTE 0 → PD; PDE 0–2 user 2 MiB identity pages, PDE 3 a supervisor 2 MiB page at 0.</summary>
    private static void TablesPae(RawGuest g)
    {
        g.Write64(Pdpt, Pd | P);
        for (ulong i = 0; i < 3; i++) g.Write64(Pd + i * 8, (i << 21) | PS | US | RW | P);
        g.Write64(Pd + 3 * 8, 0 | PS | RW | P);
    }

    [Theory]
    [InlineData(false, 0x1000UL, true)]      // 32-bit paging, user 4 MiB page
    [InlineData(false, 0x40_1000UL, false)]  // 32-bit paging, supervisor 4 MiB page: #PF
    [InlineData(true, 0x1000UL, true)]       // PAE, user 2 MiB page
    [InlineData(true, 0x60_1000UL, false)]   // PAE, supervisor 2 MiB page: #PF
    public void A_user_access_needs_the_user_bit(bool pae, ulong linear, bool allowed)
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        if (pae) TablesPae(g);
        else Tables32(g);
        Write32(g, 0x1000, 0x5A);
        Start32(g, a => { a.mov(ebx, (uint)linear); a.mov(eax, __dword_ptr[ebx]); }, cr4: pae ? 0x20UL : 0x10UL, cpl: 3);
        g.RunExpect(allowed ? KvmExitReason.KVM_EXIT_IO : KvmExitReason.KVM_EXIT_SHUTDOWN);
        if (allowed) Assert.Equal(0x5A, g.IoData[0]);
        else Assert.Equal(linear, g.Sregs.cr2);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_user_write_to_a_read_only_page_faults_even_without_CR0_WP(bool pae)
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        if (pae)
        {
            TablesPae(g);
            g.Write64(Pd + 8, (1UL << 21) | PS | US | P); // 2–4 MiB: user, read-only
        }
        else
        {
            Write32(g, Pd + 0, (uint)(PS | US | P));       // 0–4 MiB: user, read-only (the code only reads it)
        }
        Start32(g, a => { a.mov(ebx, 0x20_1000u); a.mov(__dword_ptr[ebx], eax); }, cr4: pae ? 0x20UL : 0x10UL, cpl: 3, cr0: 0x8000_0011);
        g.RunExpect(KvmExitReason.KVM_EXIT_SHUTDOWN);
        Assert.Equal(0x20_1000UL, g.Sregs.cr2);
    }

    [Fact]
    public void Without_CR4_PSE_a_32_bit_PDE_PS_bit_is_ignored_and_the_entry_points_to_a_page_table()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        Tables32(g);
        // PDE 2 (linear 8 MiB) with PS: a page table at Pt when CR4.PSE is clear (paging_tmpl.h is_last_gpte).
        Write32(g, Pd + 8, (uint)(Pt | PS | RW | P));
        Write32(g, Pt + 4, (uint)(Data | RW | P));
        Write32(g, Data + 0x10, 0x77);
        // CR4.PSE clear: PDE 0 (the code's 4 MiB page) is a page table too — at GPA 0, where an identity PT for the code
        // page and the stack page is written.
        Write32(g, 0 + (RawGuest.CodeGpa >> 12) * 4, (uint)(RawGuest.CodeGpa | RW | P));
        Start32(g, a => { a.mov(ebx, 0x80_1010u); a.mov(eax, __dword_ptr[ebx]); }, cr4: 0, cpl: 0);
        g.RunExpect(KvmExitReason.KVM_EXIT_IO);
        Assert.Equal(0x77, g.IoData[0]);
    }

    [Fact]
    public void A_PAE_entry_with_a_bit_at_MAXPHYADDR_is_a_reserved_bit_fault()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        TablesPae(g);
        // No KVM_SET_CPUID2: MAXPHYADDR 36 (cpuid_query_maxphyaddr), so PDE bit 36 is rsvd_bits(maxphyaddr, 62).
        g.Write64(Pd + 16, (1UL << 36) | (2UL << 21) | PS | US | RW | P);
        Start32(g, a => { a.mov(ebx, 0x40_1000u); a.mov(eax, __dword_ptr[ebx]); }, cr4: 0x20, cpl: 0);
        g.RunExpect(KvmExitReason.KVM_EXIT_SHUTDOWN);
        Assert.Equal(0x40_1000UL, g.Sregs.cr2);
    }

    [Fact]
    public void Set_sregs_with_a_bad_pdpte_succeeds_but_loads_nothing()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        TablesPae(g);
        g.Write64(Pdpt, Pd | P | RW); // bit 1 is reserved in a PDPTE: load_pdptrs fails, __set_sregs_common ignores it
        Start32(g, a => a.mov(al, 1), cr4: 0x20, cpl: 0);
        // The PDPTE cache keeps its old (zero) entries: the first fetch is a #PF at the code's address.
        g.RunExpect(KvmExitReason.KVM_EXIT_SHUTDOWN);
        Assert.Equal(RawGuest.CodeGpa, g.Sregs.cr2);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Setting_CR4_PAE_under_32_bit_paging_loads_the_PDPTEs_and_refuses_reserved_bits(bool validPdpt)
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        // CR3 = Pdpt + 0x20: 32-bit paging takes its PD from CR3[31:12] (PDE 0, a 4 MiB page, maps the code; the walk
        // sets its A bit — bit 5, reserved in a PDPTE), PAE its PDPT from CR3[31:5] (SDM Vol. 3A 4.3, 4.4.1).
        TablesPae(g);
        g.Write64(Pdpt, 0 | PS | RW | P);
        g.Write64(Pdpt + 0x20, Pd | P | (validPdpt ? 0 : RW)); // R/W (bit 1) is reserved in a PDPTE
        Start32(g, a =>
        {
            a.mov(eax, cr4);
            a.or(eax, 0x20);
            a.mov(cr4, eax);       // x86.c kvm_set_cr4: PAE set with paging on → load_pdptrs, failure → #GP
            a.mov(al, 0x42);
        }, cr4: 0x10, cpl: 0, cr3: Pdpt + 0x20);
        Assert.Equal(0, g.RunOnce());
        var s = g.Sregs;
        ulong rip = g.Regs.rip;
        Assert.True(g.ExitReason == (validPdpt ? KvmExitReason.KVM_EXIT_IO : KvmExitReason.KVM_EXIT_SHUTDOWN), $"{g.ExitReason} at 0x{rip:X}, CR2 0x{s.cr2:X}");
        // The invalid case ends at the MOV to CR4 (0F 22: #GP → no IDT → shutdown), not earlier.
        if (!validPdpt) Assert.Equal([0x0F, 0x22], g.Memory.GetSpan(rip, 2).ToArray());
        Assert.Equal(validPdpt ? 0x30UL : 0x10UL, s.cr4);
        if (validPdpt) Assert.Equal(0x42, g.IoData[0]);
    }
}
