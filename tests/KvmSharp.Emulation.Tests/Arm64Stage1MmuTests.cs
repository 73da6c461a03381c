// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// EL1&amp;0 stage-1 translation in the A64 interpreter (Emulation/Arm64/A64Stage1.cs, A64Interpreter.Mmu.cs; Arm ARM
/// DDI 0487 D8): a guest turns its MMU on over 4 KiB tables (TTBR0 from level 0, T0SZ 16, TBI0; TTBR1 from level 1,
/// T1SZ 25; IPS 40 bits) and runs on; reads through a page, a level-2 block, a TTBR1 level-1 block and a tagged
/// pointer; takes translation, address size, access flag and permission faults (ESR_EL1/FAR_EL1 recorded by its
/// vector), the external abort KVM injects for a walk outside guest memory, an EL0 permission fault, an instruction
/// abort; AT fills PAR_EL1; a 16K granule stays an emulation failure.
/// </summary>
public class Arm64Stage1MmuTests
{
    private const ulong L0 = 0x4000, L1 = 0x5000, L2 = 0x6000, L3 = 0x7000, HighL1 = 0x8000;
    private const ulong RwPage = 0x9000, RoPage = 0xA000, NoAfPage = 0xB000, El0Code = 0xC000, El0RoPage = 0xD000, Stack = 0xF000;
    private const ulong Value = 0x1122_3344_5566_7788;
    private const ulong Il = 1UL << 25;

    private static ulong Enc(int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(3, op1, crn, crm, op2);

    private static readonly ulong Sctlr = Enc(0, 1, 0, 0), Esr = Enc(0, 5, 2, 0), Far = Enc(0, 6, 0, 0), Elr = Enc(0, 4, 0, 1), Spsr = Enc(0, 4, 0, 0),
        Par = Enc(0, 7, 4, 0);

    // T0SZ 16, TG0 4K, T1SZ 25, TG1 4K (0b10), IPS 0b010 (40 bits), TBI0.
    private const ulong TcrValue = 16 | (25UL << 16) | (2UL << 30) | (2UL << 32) | (1UL << 37);

    private const uint Isb = 0xD503_3FDF, DsbIsh = 0xD503_3B9F, TlbiVmalle1 = 0xD508_871F;

    private static uint AtS1e1r(int rt) => 0xD508_7800u | (uint)rt;

    private static uint AtS1e1w(int rt) => 0xD508_7820u | (uint)rt;

    private static uint AtS1e0r(int rt) => 0xD508_7840u | (uint)rt;

    /// <summary>A page or block descriptor: AF set unless asked, AttrIndx 0, AP[2:1] = <paramref name="ap"/>.</summary>
    private static ulong Leaf(ulong oa, ulong ap = 0, bool af = true, bool page = true) =>
        oa | (page ? 3UL : 1UL) | (ap << 6) | (af ? 1UL << 10 : 0);

    private static ulong TableDesc(ulong next) => next | 3;

    private static void Put(Arm64TestVm s, ulong table, int index, ulong desc) =>
        s.Host.Write(table + (ulong)index * 8, BitConverter.GetBytes(desc));

    /// <summary>
    /// The tables: L0[0] → L1[0] → L2[0] → L3 (identity pages 0..0xFFFF, with RO, AF = 0, EL0 RW and EL0 RO pages,
    /// and L3[0x30] → an output address beyond 40 bits); L2[1] a 2 MiB block at IPA 0; L2[2] a table at an IPA no
    /// memslot covers; L2[8] a block over the ucall MMIO address. TTBR1: L1[511] a 1 GiB block at IPA 0.
    /// </summary>
    private static void BuildTables(Arm64TestVm s)
    {
        Put(s, L0, 0, TableDesc(L1));
        Put(s, L1, 0, TableDesc(L2));
        Put(s, L2, 0, TableDesc(L3));
        Put(s, L2, 1, Leaf(0, page: false));
        Put(s, L2, 2, TableDesc(0x0200_0000));
        Put(s, L2, 8, Leaf(Arm64Guest.UcallMmioGpa, page: false));
        for (int i = 0; i < 16; i++) Put(s, L3, i, Leaf((ulong)i << 12));
        Put(s, L3, (int)(RoPage >> 12), Leaf(RoPage, ap: 2));
        Put(s, L3, (int)(NoAfPage >> 12), Leaf(NoAfPage, af: false));
        Put(s, L3, (int)(El0Code >> 12), Leaf(El0Code, ap: 1));
        Put(s, L3, (int)(El0RoPage >> 12), Leaf(El0RoPage, ap: 3));
        Put(s, L3, 0x30, Leaf(1UL << 44));
        Put(s, HighL1, 511, Leaf(0, page: false));
        s.Host.Write(RwPage, BitConverter.GetBytes(Value));
        s.Host.Write(RoPage, BitConverter.GetBytes(Value + 1));
        s.Host.Write(NoAfPage, BitConverter.GetBytes(Value + 2));
    }

    /// <summary>MAIR, TCR, TTBR0/1, ISB, SCTLR_EL1.M, ISB; SP_EL1 = <see cref="Stack"/>.</summary>
    private static void MmuOn(A64Assembler a, ulong tcr = TcrValue)
    {
        Arm64MmuSetup.Emit(a, tcr, L0, ttbr1: HighL1);
        a.MovImm(X(3), Stack);
        a.AddImm(Sp, X(3), 0);
    }

    /// <summary>One instruction expected to fault: x24 = the address after it, where the vector resumes.</summary>
    private static void Faulting(A64Assembler a, Action<A64Assembler> insn)
    {
        ulong resume = Arm64Guest.CodeGpa + (ulong)a.Position + 12;
        a.Movz(X(24), (ushort)resume);
        a.Movk(X(24), (ushort)(resume >> 16), 16);
        int before = a.Position;
        insn(a);
        Assert.Equal(before + 4, a.Position);
    }

    /// <summary>x20 = ESR_EL1, x21 = FAR_EL1, x22 = ELR_EL1 of the last fault; then <paramref name="esr"/>/<paramref name="far"/> = them.</summary>
    private static void Keep(A64Assembler a, int esr, int far)
    {
        a.Mov(X(esr), X(20));
        a.Mov(X(far), X(21));
    }

    /// <summary>Runs to the ucall (an MMIO write through the stage-1 block over its address) and returns the vCPU.</summary>
    private static (Arm64TestVm Vm, KvmSharp.Vcpu Vcpu, ulong Code) Run(Action<A64Assembler> program, Action<A64Assembler>? el0Code = null)
    {
        var s = new Arm64TestVm(program);
        BuildTables(s);
        // Synchronous vectors: EL1h (0x200) records and resumes at x24; lower EL (0x400) records and ucalls 7.
        s.Host.Write(0x200, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(20), Esr);
            a.Mrs(X(21), Far);
            a.Mrs(X(22), Elr);
            a.Msr(Elr, X(24));
            a.Eret();
        }));
        s.Host.Write(0x400, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(20), Esr);
            a.Mrs(X(21), Far);
            a.Mrs(X(22), Elr);
            Arm64Guest.Ucall(a, 7);
        }));
        if (el0Code is not null) s.Host.Write(El0Code, Arm64Guest.Assemble(el0Code));
        var vcpu = s.AddVcpu();
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        return (s, vcpu, BitConverter.ToUInt64(exit.MmioData));
    }

    private static ulong Reg(KvmSharp.Vcpu v, int n) => v.GetOneReg(KvmArm64Regs.X(n));

    private static ulong DataAbortCur(uint iss) => (0x25UL << 26) | Il | iss;

    [Fact]
    public void Mmu_on_reads_through_a_page_a_block_ttbr1_and_a_tagged_pointer()
    {
        var (s, v, code) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), RwPage);
            a.Ldr(X(11), X(1));
            a.MovImm(X(1), 0x20_0000 + RwPage);          // L2 block (2 MiB) at IPA 0
            a.Ldr(X(12), X(1));
            a.MovImm(X(1), 0xFFFF_FFFF_C000_0000 + RwPage); // TTBR1, L1 block (1 GiB) at IPA 0
            a.Ldr(X(13), X(1));
            a.MovImm(X(1), 0x5A00_0000_0000_0000 + RwPage); // TBI0: the top byte is ignored
            a.Ldr(X(14), X(1));
            a.MovImm(X(2), 0xFFFF_FFFF_C000_0000 + RwPage + 8);
            a.Str(X(11), X(2));
            a.MovImm(X(1), RwPage + 8);
            a.Ldr(X(15), X(1));
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(1UL, code);
            for (int r = 11; r <= 15; r++) Assert.Equal(Value, Reg(v, r));
            Assert.Equal(1UL, v.GetOneReg(KvmArm64SysRegs.SCTLR_EL1) & 1);
        }
    }

    [Fact]
    public void Translation_address_size_walk_and_permission_faults_reach_the_el1_vector()
    {
        var (s, v, code) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), 0x2_0000);                    // L3 entry invalid
            Faulting(a, b => b.Ldr(X(0), X(1)));
            Keep(a, 11, 12);
            a.MovImm(X(1), 0x0001_0000_0000_0000);       // outside T0SZ 16's range (bits 55:48 set)
            Faulting(a, b => b.Ldr(X(0), X(1)));
            Keep(a, 13, 14);
            a.MovImm(X(1), 0x3_0000);                    // OA bit 44 with IPS 40 bits
            Faulting(a, b => b.Ldr(X(0), X(1)));
            Keep(a, 15, 16);
            a.MovImm(X(1), 0x40_0000);                   // level-3 table at an IPA outside every memslot
            Faulting(a, b => b.Ldr(X(0), X(1)));
            Keep(a, 17, 18);
            a.MovImm(X(1), RoPage);                      // read-only page: the read works, the write faults
            a.Ldr(X(19), X(1));
            Faulting(a, b => b.Str(X(0), X(1), 8));
            Keep(a, 25, 26);
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(1UL, code);
            Assert.Equal(DataAbortCur(0x07), Reg(v, 11));   // translation fault, level 3
            Assert.Equal(0x2_0000UL, Reg(v, 12));
            Assert.Equal(DataAbortCur(0x04), Reg(v, 13));   // translation fault, level 0
            Assert.Equal(0x0001_0000_0000_0000UL, Reg(v, 14));
            Assert.Equal(DataAbortCur(0x03), Reg(v, 15));   // address size fault, level 3
            Assert.Equal(0x3_0000UL, Reg(v, 16));
            Assert.Equal(DataAbortCur(0x17), Reg(v, 17));   // KVM: SEA on the translation table walk, level 3
            Assert.Equal(0x40_0000UL, Reg(v, 18));
            Assert.Equal(Value + 1, Reg(v, 19));
            Assert.Equal(DataAbortCur((1u << 6) | 0x0F), Reg(v, 25)); // permission fault, level 3, WnR
            Assert.Equal(RoPage + 8, Reg(v, 26));
        }
    }

    [Fact]
    public void Access_flag_fault_then_the_guest_sets_af_and_retries()
    {
        var (s, v, code) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), NoAfPage);
            Faulting(a, b => b.Ldr(X(0), X(1)));
            Keep(a, 11, 12);
            // The guest updates its own descriptor (no TLB: the next walk sees it; TLBI/DSB/ISB are accepted).
            a.MovImm(X(3), L3 + (NoAfPage >> 12) * 8);
            a.Ldr(X(4), X(3));
            a.MovImm(X(5), 1UL << 10);
            a.Orr(X(4), X(4), X(5));
            a.Str(X(4), X(3));
            a.Emit(DsbIsh);
            a.Emit(TlbiVmalle1);
            a.Emit(DsbIsh);
            a.Emit(Isb);
            a.Ldr(X(13), X(1));
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(1UL, code);
            Assert.Equal(DataAbortCur(0x0B), Reg(v, 11)); // access flag fault, level 3
            Assert.Equal(NoAfPage, Reg(v, 12));
            Assert.Equal(Value + 2, Reg(v, 13));
        }
    }

    [Fact]
    public void Instruction_fetch_from_an_unmapped_va_is_an_instruction_abort()
    {
        var (s, v, code) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), 0x2_0000);
            Faulting(a, b => b.Blr(X(1)));
            Keep(a, 11, 12);
            a.Mov(X(13), X(22));
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(1UL, code);
            Assert.Equal((0x21UL << 26) | Il | 0x07, Reg(v, 11)); // IABT current EL, translation fault level 3
            Assert.Equal(0x2_0000UL, Reg(v, 12));
            Assert.Equal(0x2_0000UL, Reg(v, 13));                 // ELR_EL1 = the faulting fetch
        }
    }

    [Fact]
    public void El0_write_to_a_read_only_page_is_a_lower_el_permission_fault()
    {
        var (s, v, code) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), 0);          // SPSR_EL1: EL0t
            a.Msr(Spsr, X(1));
            a.MovImm(X(1), El0Code);
            a.Msr(Elr, X(1));
            a.Eret();
        }, el0 =>
        {
            el0.MovImm(X(1), El0RoPage);
            el0.Ldr(X(11), X(1));        // EL0 may read (AP 0b11)
            el0.Str(X(1), X(1));         // but not write
        });
        using (s)
        {
            Assert.Equal(7UL, code);
            Assert.Equal((0x24UL << 26) | Il | (1u << 6) | 0x0F, Reg(v, 20)); // DABT lower EL, permission level 3, WnR
            Assert.Equal(El0RoPage, Reg(v, 21));
            Assert.Equal(El0Code + (ulong)Arm64Guest.Assemble(x => x.MovImm(X(1), El0RoPage)).Length + 4, Reg(v, 22)); // ELR = the STR
            Assert.Equal(0UL, Reg(v, 11)); // the page holds zeros
        }
    }

    [Fact]
    public void At_s1e1r_and_s1e1w_fill_par_el1()
    {
        var (s, v, code) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), 0xFFFF_FFFF_C000_0000 + RwPage + 0x123);
            a.Emit(AtS1e1r(1));
            a.Mrs(X(11), Par);
            a.MovImm(X(1), RoPage);
            a.Emit(AtS1e1w(1));
            a.Mrs(X(12), Par);
            a.MovImm(X(1), RwPage);
            a.Emit(AtS1e0r(1));
            a.Mrs(X(13), Par);
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(1UL, code);
            Assert.Equal(RwPage | (1UL << 11) | (0xFFUL << 56), Reg(v, 11)); // PA, RES1 bit 11, ATTR = MAIR attr 0
            Assert.Equal(1UL | (0x0FUL << 1) | (1UL << 11), Reg(v, 12));    // F, FST = permission fault level 3
            Assert.Equal(1UL | (0x0FUL << 1) | (1UL << 11), Reg(v, 13));    // EL0 has no access to an AP 0b00 page
        }
    }

    [Fact]
    public void A_16k_granule_stays_an_emulation_failure()
    {
        const ulong tcr16K = TcrValue | (2UL << 14); // TG0 = 0b10 (16 KiB): not modelled
        using var s = new Arm64TestVm(a => MmuOn(a, tcr16K));
        BuildTables(s);
        var vcpu = s.AddVcpu();
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
        Assert.Equal(0x00C5_0078UL, vcpu.GetOneReg(KvmArm64SysRegs.SCTLR_EL1));
        Assert.Equal(tcr16K, vcpu.GetOneReg(KvmArm64SysRegs.TCR_EL1));
    }
}
