// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Data alignment faults in the A64 interpreter (Emulation/Arm64/A64Interpreter.Alignment.cs; Arm ARM DDI 0487 B2.5,
/// pseudocode AArch64.CheckAlignment / AArch64.S1HasAlignmentFault): with the MMU off every data access is
/// Device-nGnRnE, so an unaligned one takes a Data Abort (EC 0x25, DFSC 0x21, FAR = the address); SCTLR_EL1.A = 1
/// faults unaligned accesses to Normal memory; a Device page (MAIR attribute 0x00) faults them with the MMU on; a
/// pair is checked on its element size.
/// </summary>
public class Arm64AlignmentTests
{
    private const ulong L0 = 0x4000, L1 = 0x5000, L2 = 0x6000, Data = 0x9000;

    /// <summary>VA base of the Device alias: L2[1], a 2 MiB block over IPA 0 with AttrIndx 1 (MAIR Attr1 = 0x00).</summary>
    private const ulong DeviceAlias = 0x20_0000;

    /// <summary>VA base of a read-only Device alias: L2[2], as <see cref="DeviceAlias"/> with AP[2] set.</summary>
    private const ulong ReadOnlyDeviceAlias = 0x40_0000;

    /// <summary>A VA no table maps: L1[1] is invalid (a level-1 translation fault).</summary>
    private const ulong Unmapped = 0x4000_0000;

    private const ulong Value = 0x1122_3344_5566_7788;
    private const ulong Il = 1UL << 25;
    private const ulong NoFault = 0xDEAD;

    private static ulong Enc(int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(3, op1, crn, crm, op2);

    private static readonly ulong Sctlr = Enc(0, 1, 0, 0), Esr = Enc(0, 5, 2, 0), Far = Enc(0, 6, 0, 0), Elr = Enc(0, 4, 0, 1);

    // T0SZ 16, TG0 4K, EPD1 (no TTBR1 walks), IPS 0b010 (40 bits).
    private const ulong TcrValue = 16 | (1UL << 23) | (2UL << 30) | (2UL << 32);

    private const uint Isb = 0xD503_3FDF;

    private static ulong DataAbortCur(uint iss) => (0x25UL << 26) | Il | iss;

    /// <summary>STP Xt, Xt2, [Xn] (signed offset 0).</summary>
    private static uint Stp(int rt, int rt2, int rn) => 0xA900_0000u | ((uint)rt2 << 10) | ((uint)rn << 5) | (uint)rt;

    /// <summary>LDP Xt, Xt2, [Xn] (signed offset 0).</summary>
    private static uint Ldp(int rt, int rt2, int rn) => 0xA940_0000u | ((uint)rt2 << 10) | ((uint)rn << 5) | (uint)rt;

    /// <summary>L0[0] → L1[0] → L2: L2[0] Normal (AttrIndx 0), L2[1] the Device alias, L2[8] the ucall block (Normal).</summary>
    private static void BuildTables(Arm64TestVm s)
    {
        static ulong Block(ulong oa, ulong attrIndx) => oa | 1 | (attrIndx << 2) | (1UL << 10);
        s.Host.Write(L0, BitConverter.GetBytes(L1 | 3));
        s.Host.Write(L1, BitConverter.GetBytes(L2 | 3));
        s.Host.Write(L2, BitConverter.GetBytes(Block(0, 0)));
        s.Host.Write(L2 + 8, BitConverter.GetBytes(Block(0, 1)));
        s.Host.Write(L2 + 16, BitConverter.GetBytes(Block(0, 1) | (1UL << 7))); // AP[2]: read-only
        s.Host.Write(L2 + 64, BitConverter.GetBytes(Block(Arm64Guest.UcallMmioGpa, 0)));
    }

    /// <summary>MAIR (Attr0 0xFF Normal WB, Attr1 0x00 Device-nGnRnE), TCR, TTBR0, SCTLR_EL1.M (and .A when asked).</summary>
    private static void MmuOn(A64Assembler a, bool alignmentCheck)
    {
        Arm64MmuSetup.Emit(a, TcrValue, L0, set: alignmentCheck ? Arm64MmuSetup.SctlrM | Arm64MmuSetup.SctlrA : Arm64MmuSetup.SctlrM,
            clear: alignmentCheck ? 0 : Arm64MmuSetup.SctlrA);
    }

    /// <summary>
    /// x24 = the address after the next instruction (where the EL1h vector resumes), x20 = <see cref="NoFault"/>;
    /// then the one instruction.
    /// </summary>
    private static void Faulting(A64Assembler a, uint insn)
    {
        a.MovImm(X(20), NoFault);
        ulong resume = Arm64Guest.CodeGpa + (ulong)a.Position + 12;
        a.Movz(X(24), (ushort)resume);
        a.Movk(X(24), (ushort)(resume >> 16), 16);
        a.Emit(insn);
    }

    /// <summary>Runs to the ucall; the EL1h synchronous vector records ESR/FAR/ELR in x20/x21/x22 and resumes at x24.</summary>
    private static (Arm64TestVm Vm, KvmSharp.Vcpu Vcpu) Run(Action<A64Assembler> program)
    {
        var s = new Arm64TestVm(program);
        BuildTables(s);
        s.Host.Write(Data, BitConverter.GetBytes(Value));
        s.Host.Write(Data + 8, BitConverter.GetBytes(Value + 1));
        s.Host.Write(Data + 16, BitConverter.GetBytes(Value + 2));
        s.Host.Write(0x200, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(20), Esr);
            a.Mrs(X(21), Far);
            a.Mrs(X(22), Elr);
            a.Msr(Elr, X(24));
            a.Eret();
        }));
        var vcpu = s.AddVcpu();
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(1UL, BitConverter.ToUInt64(exit.MmioData));
        return (s, vcpu);
    }

    private static ulong Reg(KvmSharp.Vcpu v, int n) => v.GetOneReg(KvmArm64Regs.X(n));

    /// <summary>Loads X(1) with <paramref name="address"/> and runs one LDR X0, [X1] that may fault; X(15) = X0.</summary>
    private static void LoadAt(A64Assembler a, ulong address)
    {
        a.MovImm(X(0), 0);
        a.MovImm(X(1), address);
        Faulting(a, 0xF940_0020); // LDR X0, [X1]
        a.Mov(X(15), X(0));
    }

    [Fact]
    public void Unaligned_ldr_with_the_mmu_off_is_an_alignment_fault()
    {
        var (s, v) = Run(a =>
        {
            LoadAt(a, Data + 1);
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(DataAbortCur(0x21), Reg(v, 20));
            Assert.Equal(Data + 1, Reg(v, 21));
            Assert.Equal(0UL, Reg(v, 15)); // the load did not happen
            Assert.Equal(0UL, Reg(v, 20) & (1UL << 24)); // ISV = 0
        }
    }

    [Fact]
    public void Aligned_ldr_with_the_mmu_off_loads()
    {
        var (s, v) = Run(a =>
        {
            LoadAt(a, Data);
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(NoFault, Reg(v, 20));
            Assert.Equal(Value, Reg(v, 15));
        }
    }

    [Fact]
    public void Unaligned_store_with_the_mmu_off_sets_wnr()
    {
        var (s, v) = Run(a =>
        {
            a.MovImm(X(1), Data + 2);
            a.MovImm(X(3), 0x55AA);
            Faulting(a, 0xB900_0023); // STR W3, [X1]
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(DataAbortCur(0x21 | (1u << 6)), Reg(v, 20));
            Assert.Equal(Data + 2, Reg(v, 21));
            Assert.Equal(Value, s.Host.Read<ulong>(Data));
        }
    }

    [Fact]
    public void Sctlr_a_faults_an_unaligned_load_from_normal_memory()
    {
        var (s, v) = Run(a =>
        {
            MmuOn(a, alignmentCheck: true);
            LoadAt(a, Data + 4);
            a.Mov(X(11), X(20));
            a.Mov(X(12), X(21));
            LoadAt(a, Data + 8); // aligned: loads
            a.Mov(X(13), X(20));
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(DataAbortCur(0x21), Reg(v, 11));
            Assert.Equal(Data + 4, Reg(v, 12));
            Assert.Equal(NoFault, Reg(v, 13));
            Assert.Equal(Value + 1, Reg(v, 15));
        }
    }

    [Fact]
    public void Without_sctlr_a_an_unaligned_load_from_normal_memory_works()
    {
        var (s, v) = Run(a =>
        {
            MmuOn(a, alignmentCheck: false);
            LoadAt(a, Data + 4);
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(NoFault, Reg(v, 20));
            Assert.Equal((Value >> 32) | ((Value + 1) << 32), Reg(v, 15));
        }
    }

    [Fact]
    public void A_device_page_faults_an_unaligned_load_with_the_mmu_on()
    {
        var (s, v) = Run(a =>
        {
            MmuOn(a, alignmentCheck: false);
            LoadAt(a, DeviceAlias + Data + 4);
            a.Mov(X(11), X(20));
            a.Mov(X(12), X(21));
            LoadAt(a, DeviceAlias + Data + 8); // aligned Device access: loads
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(DataAbortCur(0x21), Reg(v, 11));
            Assert.Equal(DeviceAlias + Data + 4, Reg(v, 12));
            Assert.Equal(NoFault, Reg(v, 20));
            Assert.Equal(Value + 1, Reg(v, 15));
        }
    }

    [Fact]
    public void Stp_on_device_memory_is_checked_on_its_element_size()
    {
        var (s, v) = Run(a =>
        {
            a.MovImm(X(1), Data + 4);
            a.MovImm(X(3), 0xAAAA);
            a.MovImm(X(4), 0xBBBB);
            Faulting(a, Stp(3, 4, 1)); // 4-aligned, not 8: faults
            a.Mov(X(11), X(20));
            a.Mov(X(12), X(21));
            a.MovImm(X(1), Data + 8);
            Faulting(a, Stp(3, 4, 1)); // 8-aligned (not 16): the elements are aligned
            a.Mov(X(13), X(20));
            Faulting(a, Ldp(5, 6, 1));
            a.Mov(X(14), X(20));
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(DataAbortCur(0x21 | (1u << 6)), Reg(v, 11));
            Assert.Equal(Data + 4, Reg(v, 12));
            Assert.Equal(Value, s.Host.Read<ulong>(Data));
            Assert.Equal(NoFault, Reg(v, 13));
            Assert.Equal(NoFault, Reg(v, 14));
            Assert.Equal(0xAAAAUL, Reg(v, 5));
            Assert.Equal(0xBBBBUL, Reg(v, 6));
        }
    }

    [Fact]
    public void Sctlr_a_alignment_fault_comes_before_a_translation_fault()
    {
        // Mem[] calls AArch64.CheckAlignment before any translation: an unaligned access to an unmapped VA is an
        // alignment fault with SCTLR_EL1.A = 1, and a translation fault (level 1) without it (no memory type yet).
        var (s, v) = Run(a =>
        {
            MmuOn(a, alignmentCheck: true);
            LoadAt(a, Unmapped + 4);
            a.Mov(X(11), X(20));
            a.Mov(X(12), X(21));
            a.Mrs(X(1), Sctlr);
            a.MovImm(X(2), ~2UL);
            a.And(X(1), X(1), X(2));
            a.Msr(Sctlr, X(1));
            a.Emit(Isb);
            LoadAt(a, Unmapped + 4);
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(DataAbortCur(0x21), Reg(v, 11));
            Assert.Equal(Unmapped + 4, Reg(v, 12));
            Assert.Equal(DataAbortCur(0x05), Reg(v, 20)); // translation fault, level 1
            Assert.Equal(Unmapped + 4, Reg(v, 21));
        }
    }

    [Fact]
    public void A_device_alignment_fault_comes_before_a_permission_fault()
    {
        // AArch64.S1Translate: the Device alignment check follows the walk and precedes AArch64.S1CheckPermissions.
        var (s, v) = Run(a =>
        {
            MmuOn(a, alignmentCheck: false);
            a.MovImm(X(1), ReadOnlyDeviceAlias + Data + 4);
            a.MovImm(X(3), 0x55AA);
            Faulting(a, 0xF900_0023); // STR X3, [X1]: unaligned, to a read-only Device page
            a.Mov(X(11), X(20));
            a.Mov(X(12), X(21));
            a.MovImm(X(1), ReadOnlyDeviceAlias + Data + 8);
            Faulting(a, 0xF900_0023); // aligned: the permission fault
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(DataAbortCur(0x21 | (1u << 6)), Reg(v, 11));
            Assert.Equal(ReadOnlyDeviceAlias + Data + 4, Reg(v, 12));
            Assert.Equal(DataAbortCur(0x0E | (1u << 6)), Reg(v, 20)); // permission fault, level 2
            Assert.Equal(ReadOnlyDeviceAlias + Data + 8, Reg(v, 21));
            Assert.Equal(Value + 1, s.Host.Read<ulong>(Data + 8));
        }
    }
}
