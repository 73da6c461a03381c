// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The A64 interpreter's fetch page (Emulation/Arm64/A64Interpreter.FetchCache.cs): a fetch from the page of the last
/// fetch reads through a read view of that page, skipping stage 1 and the stage-2 lookup, only while both would decide
/// the same. Each test runs a loop inside one code page (so every fetch after the first is served from the remembered
/// page), reports a value the loop's MOVZ puts in x1 (an MMIO store: one KVM_RUN per report), then changes what the
/// fetch depends on and checks the next fetch in that page sees it exactly as a fetch through Translate and
/// Stage2Access.Access would: the code rewritten by the host or by the guest, the page punched, the slot deleted,
/// replaced, moved or its guest_memfd released, KVM_MEM_USERFAULT turned on (stage 2; Stage2Access's class comment),
/// SCTLR_EL1.M toggled, TTBR0_EL1 switched, the leaf rewritten with or without TLBI (stage 1; the emulator has no TLB,
/// A64Interpreter.Mmu.cs). Emulator only: the real kernel here is x86.
/// </summary>
public sealed class Arm64FetchCacheTests
{
    private const ulong Base = 0x4000_0000;
    private const ushort ValueA = 0x1111, ValueB = 0x2222;
    private const ulong Il = 1UL << 25;

    private static readonly ulong Page = (ulong)Environment.SystemPageSize;
    private static readonly ulong Report = Arm64Guest.UcallMmioGpa;

    private static ulong Enc(int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(3, op1, crn, crm, op2);

    private static readonly ulong Sctlr = Enc(0, 1, 0, 0), Ttbr0 = Enc(0, 2, 0, 0), Esr = Enc(0, 5, 2, 0), Elr = Enc(0, 4, 0, 1);

    // Arm ARM C6.2: ISB, DSB ISH, TLBI VMALLE1 (SYS #0, C8, C7, #0), IC IALLU (SYS #0, C7, C5, #0).
    private const uint Isb = 0xD503_3FDF, DsbIsh = 0xD503_3B9F, TlbiVmalle1 = 0xD508_871F, IcIallu = 0xD508_751F;

    // ---- Stage 2, MMU off: the loop is in a second memslot at Base (VA = IPA). ----

    /// <summary>
    /// The loop at Base: MOVZ x1, #value; STR x1, [x2] (the report); <paramref name="change"/>; B back. x2 = the report
    /// address, x5 = Base (set by the program at CodeGpa, which branches there).
    /// </summary>
    private static byte[] Loop(ushort value, Action<A64Assembler>? change = null) => Arm64Guest.Assemble(a =>
    {
        var loop = a.CreateLabel();
        a.Bind(loop);
        a.Movz(X(1), value);
        a.Str(X(1), X(2));
        change?.Invoke(a);
        a.B(loop);
    });

    /// <summary>
    /// A VM whose program (slot 0) sets x2 and x5 and branches to Base; its EL1h synchronous vector (VBAR_EL1 = 0,
    /// offset 0x200) reports ESR_EL1 with x3 = ELR_EL1.
    /// </summary>
    private static Arm64TestVm NewVm(EmulatorConfig? config = null)
    {
        var s = new Arm64TestVm(a =>
        {
            a.MovImm(X(2), Report);
            a.MovImm(X(5), Base);
            a.Br(X(5));
        }, config);
        s.Host.Write(0x200, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(1), Esr);
            a.Mrs(X(3), Elr);
            a.Str(X(1), X(2));
            a.Emit(0x1400_0000); // B . (never reached again: the tests stop here)
        }));
        return s;
    }

    /// <summary>One report: the value the guest stored at the report address.</summary>
    private static ulong Next(KvmSharp.Vcpu vcpu)
    {
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal((Report, true), (exit.MmioAddress, exit.MmioIsWrite));
        return BitConverter.ToUInt64(exit.MmioData);
    }

    private static ulong Reg(KvmSharp.Vcpu v, int n) => v.GetOneReg(KvmArm64Regs.X(n));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Code_rewritten_by_the_host_is_fetched_as_rewritten(bool gmemSlot)
    {
        using var s = NewVm();
        using var gmem = s.Vm.CreateGuestMemfd(2 * Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var view = gmem.Map();
        using var slot = gmemSlot ? s.Vm.AddGuestMemfdSlot(1, Base, 2 * Page, gmem) : s.Vm.AddMemorySlot(1, Base, memory);
        void Write(byte[] code)
        {
            if (gmemSlot) view.Write(0, code);
            else memory.Write(0, code);
        }
        Write(Loop(ValueA));
        var vcpu = s.AddVcpu();
        Assert.Equal(ValueA, Next(vcpu));
        Assert.Equal(ValueA, Next(vcpu));
        // The next fetch (B, then MOVZ) is in the remembered page: it reads the page as it is now.
        Write(Loop(ValueB));
        Assert.Equal(ValueB, Next(vcpu));
    }

    [Fact]
    public void Code_rewritten_by_the_guest_is_fetched_as_rewritten()
    {
        // The loop stores w3 over its own MOVZ, then the Arm ARM's sequence for modified code (B2.4.4: the store, DSB,
        // instruction cache invalidation, DSB, ISB; IC IALLU here; IC IVAU by address is in Arm64CacheMaintenanceTests) before it branches.
        uint movzB = BitConverter.ToUInt32(Arm64Guest.Assemble(a => a.Movz(X(1), ValueB)));
        uint movzA = BitConverter.ToUInt32(Arm64Guest.Assemble(a => a.Movz(X(1), ValueA)));
        using var s = NewVm();
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory);
        memory.Write(0, Loop(ValueA, a =>
        {
            a.Str(W(3), X(5));
            a.Emit(DsbIsh);
            a.Emit(IcIallu);
            a.Emit(DsbIsh);
            a.Emit(Isb);
        }));
        var vcpu = s.AddVcpu();
        vcpu.SetX(3, movzA);
        Assert.Equal(ValueA, Next(vcpu));
        Assert.Equal(ValueA, Next(vcpu));
        vcpu.SetX(3, movzB);
        Assert.Equal(ValueB, Next(vcpu));
        Assert.Equal(movzB, memory.Read<uint>(0));
    }

    [Fact]
    public void A_punched_code_page_is_faulted_in_again_and_reads_zero()
    {
        using var s = NewVm();
        using var gmem = s.Vm.CreateGuestMemfd(2 * Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = s.Vm.AddGuestMemfdSlot(1, Base, 2 * Page, gmem);
        using (var view = gmem.Map()) view.Write(0, Loop(ValueA));
        var vcpu = s.AddVcpu();
        Assert.Equal(ValueA, Next(vcpu));
        Assert.Equal(ValueA, Next(vcpu));
        // kvm_gmem_punch_hole → kvm_gmem_invalidate_begin zaps the leaf: the next fetch is a new gmem_abort, whose
        // kvm_gmem_get_pfn allocates a zeroed folio (0x00000000 = UDF #0: EC 0, ELR = the B after the STR).
        gmem.PunchHole(0, (long)Page);
        Assert.Equal(-(long)Errno.ENOENT, GuestMappingInspection.LastFault(s.Kernel, s.Vm.Handle, Base, out _));
        Assert.Equal(Il, Next(vcpu));
        Assert.Equal(Base + 8, Reg(vcpu, 3));
        Assert.Equal(0, GuestMappingInspection.LastFault(s.Kernel, s.Vm.Handle, Base, out var m));
        Assert.Equal(Base, m.Gpa);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_code_slot_replaced_by_another_is_fetched_from_the_new_memory(bool loadsFromCodePage)
    {
        // With loadsFromCodePage the loop also reads its own page (LDR x6, [x5]: a literal load), so the stage-2 page
        // cache's last-used entry (GuestPhysicalMemory.Stage2.cs) is the code page when the slot goes.
        Action<A64Assembler>? change = loadsFromCodePage ? a => a.Ldr(X(6), X(5)) : null;
        using var s = NewVm();
        using var first = s.Vm.AllocateMemory(2 * Page);
        using var second = s.Vm.AllocateMemory(2 * Page);
        first.Write(0, Loop(ValueA, change));
        second.Write(0, Loop(ValueB, change));
        var slot = s.Vm.AddMemorySlot(1, Base, first);
        var vcpu = s.AddVcpu();
        Assert.Equal(ValueA, Next(vcpu));
        Assert.Equal(ValueA, Next(vcpu));
        slot.Dispose(); // KVM_MR_DELETE: kvm_arch_flush_shadow_memslot
        using var other = s.Vm.AddMemorySlot(2, Base, second);
        Assert.Equal(ValueB, Next(vcpu));
    }

    [Fact]
    public void A_code_slot_moved_away_makes_the_next_fetch_an_external_abort()
    {
        using var s = NewVm();
        using var memory = s.Vm.AllocateMemory(2 * Page);
        memory.Write(0, Loop(ValueA));
        using var slot = s.Vm.AddMemorySlot(1, Base, memory);
        var vcpu = s.AddVcpu();
        Assert.Equal(ValueA, Next(vcpu));
        Assert.Equal(ValueA, Next(vcpu));
        slot.Move(Base + 0x10_0000); // KVM_MR_MOVE: kvm_arch_flush_shadow_memslot of the old range
        // 6.18 kvm_handle_guest_abort: an instruction fetch outside every memslot → kvm_inject_sea_iabt: EC IABT_CUR,
        // FSC ESR_ELx_FSC_EXTABT (0x10), ELR = the fetched B.
        Assert.Equal((0x21UL << 26) | Il | 0x10, Next(vcpu));
        Assert.Equal(Base + 8, Reg(vcpu, 3));
    }

    [Fact]
    public void A_released_code_guest_memfd_makes_the_next_fetch_a_memory_fault_exit()
    {
        using var s = NewVm();
        var gmem = s.Vm.CreateGuestMemfd(2 * Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using (var view = gmem.Map()) view.Write(0, Loop(ValueA));
        using var slot = s.Vm.AddGuestMemfdSlot(1, Base, 2 * Page, gmem, mapForUserspace: false);
        var vcpu = s.AddVcpu();
        Assert.Equal(ValueA, Next(vcpu));
        Assert.Equal(ValueA, Next(vcpu));
        gmem.Dispose(); // the last reference: kvm_gmem_release unbinds the slot
        var exit = vcpu.RunBounded();
        // gmem_abort: kvm_gmem_get_pfn → -EFAULT → kvm_prepare_memory_fault_exit(fault_ipa, PAGE_SIZE, …).
        Assert.Equal((KvmExitReason.KVM_EXIT_MEMORY_FAULT, Base), (exit.Reason, exit.MemoryFaultGpa));
    }

    [Fact]
    public void Turning_userfault_on_for_the_code_slot_exits_at_the_next_fetch()
    {
        using var s = NewVm(EmulatorConfig.Arm64() with { KvmUserfault = true });
        using var memory = s.Vm.AllocateMemory(2 * Page);
        memory.Write(0, Loop(ValueA));
        using var slot = s.Vm.AddMemorySlot(1, Base, memory);
        var vcpu = s.AddVcpu();
        Assert.Equal(ValueA, Next(vcpu));
        Assert.Equal(ValueA, Next(vcpu));
        using var bitmap = UserfaultBitmap.ForSlotSize(2 * Page, allSet: true);
        slot.EnableUserfault(bitmap); // [PATCH v3 04/15]: enabling KVM_MEM_USERFAULT zaps the slot's mappings
        var exit = vcpu.RunBounded();
        Assert.True(exit.MemoryFaultIsUserfault, $"exit {exit.Reason}");
        Assert.Equal(Base, exit.MemoryFaultGpa);
    }

    // ---- Stage 1: the loop runs at VA Code, which the tables map to PageA (table set 1) or PageB (set 2). ----

    // Tables (4 KiB granule, T0SZ 16: the walk starts at level 0) and pages, all in slot 0 (64 KiB).
    private const ulong L0 = 0x4000, L1 = 0x5000, L2 = 0x6000, L3 = 0x7000;
    private const ulong L0b = 0xB000, L1b = 0xC000, L2b = 0xD000, L3b = 0xE000;
    private const ulong PageA = 0x9000, PageB = 0xA000;

    /// <summary>The VA of the loop: the IPA of page B (so with the MMU off it is page B).</summary>
    private const ulong Code = PageB;

    private const int CodeIndex = (int)(Code >> 12);

    // T0SZ 16, TG0 4K, EPD1 (no TTBR1 walks), TG1 4K, IPS 40 bits.
    private const ulong TcrValue = 16 | (1UL << 23) | (2UL << 30) | (2UL << 32);

    private static ulong Leaf(ulong oa) => oa | 3 | (1UL << 10);

    private static void Put(Arm64TestVm s, ulong table, int index, ulong desc) =>
        s.Host.Write(table + (ulong)index * 8, BitConverter.GetBytes(desc));

    /// <summary>
    /// Set 1 (L0..L3): pages 0..15 identity but Code → page A; set 2 (L0b..L3b): all identity (Code → page B). L2[8]:
    /// a block over the report address. Page A holds the loop reporting A, page B the same loop reporting B.
    /// </summary>
    private static Arm64TestVm NewMmuVm(Action<A64Assembler> change, bool mmuOn = true)
    {
        var s = new Arm64TestVm(a =>
        {
            Arm64MmuSetup.Emit(a, TcrValue, L0, set: mmuOn ? Arm64MmuSetup.SctlrM : 0);
            a.Mrs(X(3), Sctlr); // x3: SCTLR_EL1 as the program left it
            a.MovImm(X(2), Report);
            a.MovImm(X(5), Code);
            a.Br(X(5));
        });
        foreach (var (l0, l1, l2, l3, target) in new[] { (L0, L1, L2, L3, PageA), (L0b, L1b, L2b, L3b, PageB) })
        {
            Put(s, l0, 0, l1 | 3);
            Put(s, l1, 0, l2 | 3);
            Put(s, l2, 0, l3 | 3);
            Put(s, l2, 8, (Report & ~0x1F_FFFFUL) | 1 | (1UL << 10));
            for (int i = 0; i < 16; i++) Put(s, l3, i, Leaf((ulong)i << 12));
            Put(s, l3, CodeIndex, Leaf(target));
        }
        s.Host.Write(PageA, Loop(ValueA, change));
        s.Host.Write(PageB, Loop(ValueB, change));
        return s;
    }

    /// <summary>
    /// Runs the loop twice with register <paramref name="reg"/> as <paramref name="initial"/> (or as the program left
    /// it), then once more with it <paramref name="changed"/>: the three reports.
    /// </summary>
    private static (ulong, ulong, ulong) Around(Arm64TestVm s, int reg, ulong? initial, Func<KvmSharp.Vcpu, ulong> changed)
    {
        var vcpu = s.AddVcpu();
        if (initial is ulong v) vcpu.SetX(reg, v);
        ulong first = Next(vcpu), second = Next(vcpu);
        vcpu.SetX(reg, changed(vcpu));
        return (first, second, Next(vcpu));
    }

    [Fact]
    public void A_new_ttbr0_is_walked_at_the_next_fetch()
    {
        using var s = NewMmuVm(a =>
        {
            a.Msr(Ttbr0, X(7));
            a.Emit(Isb);
        });
        Assert.Equal(((ulong)ValueA, (ulong)ValueA, (ulong)ValueB), Around(s, 7, L0, _ => L0b));
    }

    [Fact]
    public void Sctlr_m_cleared_makes_the_next_fetch_use_the_va_as_the_ipa()
    {
        using var s = NewMmuVm(a =>
        {
            a.Msr(Sctlr, X(3));
            a.Emit(Isb);
        });
        // x3 = SCTLR_EL1 as the program left it (M set), then with M clear.
        Assert.Equal(((ulong)ValueA, (ulong)ValueA, (ulong)ValueB), Around(s, 3, null, v => Reg(v, 3) & ~1UL));
    }

    [Fact]
    public void Sctlr_m_set_makes_the_next_fetch_walk()
    {
        using var s = NewMmuVm(a =>
        {
            a.Msr(Sctlr, X(3));
            a.Emit(Isb);
        }, mmuOn: false);
        Assert.Equal(((ulong)ValueB, (ulong)ValueB, (ulong)ValueA), Around(s, 3, null, v => Reg(v, 3) | 1));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_code_leaf_rewritten_is_seen_by_the_next_fetch(bool tlbi)
    {
        // x4 = the leaf of Code in table set 1; the loop stores x8 there (then TLBI VMALLE1, as the architecture
        // requires, or nothing: the emulator has no TLB, A64Interpreter.Mmu.cs).
        using var s = NewMmuVm(a =>
        {
            a.Str(X(8), X(4));
            if (tlbi)
            {
                a.Emit(DsbIsh);
                a.Emit(TlbiVmalle1);
                a.Emit(DsbIsh);
            }
            a.Emit(Isb);
        });
        var vcpu = s.AddVcpu();
        vcpu.SetX(8, Leaf(PageA));
        vcpu.SetX(4, L3 + (ulong)CodeIndex * 8);
        Assert.Equal(ValueA, Next(vcpu));
        Assert.Equal(ValueA, Next(vcpu));
        vcpu.SetX(8, Leaf(PageB));
        Assert.Equal(ValueB, Next(vcpu));
    }
}
