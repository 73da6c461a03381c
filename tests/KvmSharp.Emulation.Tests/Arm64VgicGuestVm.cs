// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The set-up of the vGIC delivery tests (Group 0 / FIQ, SGIs, irqfd): <see cref="Arm64TestVm"/> with a GICv3 at the
/// selftests' addresses (128 interrupts), initialized unless asked otherwise, and optional exception vectors for a
/// guest running at EL1h with VBAR_EL1 = 0 (synchronous 0x200, IRQ 0x280, FIQ 0x300).
/// </summary>
internal sealed class Arm64VgicGuestVm : Arm64TestVm
{
    public const ulong Dist = 0x0800_0000, Redist = 0x080A_0000;

    public static readonly ulong IccPmr = KvmArm64SysRegs.Encoding(3, 0, 4, 6, 0),
        IccIar0 = KvmArm64SysRegs.Encoding(3, 0, 12, 8, 0), IccEoir0 = KvmArm64SysRegs.Encoding(3, 0, 12, 8, 1),
        IccHppir0 = KvmArm64SysRegs.Encoding(3, 0, 12, 8, 2), IccAp0r0 = KvmArm64SysRegs.Encoding(3, 0, 12, 8, 4),
        IccIar1 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 0), IccEoir1 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 1),
        IccHppir1 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 2), IccRpr = KvmArm64SysRegs.Encoding(3, 0, 12, 11, 3),
        IccSgi1r = KvmArm64SysRegs.Encoding(3, 0, 12, 11, 5), IccAsgi1r = KvmArm64SysRegs.Encoding(3, 0, 12, 11, 6),
        IccSgi0r = KvmArm64SysRegs.Encoding(3, 0, 12, 11, 7), IccIgrpen0 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 6),
        IccIgrpen1 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 7), EsrEl1 = KvmArm64SysRegs.Encoding(3, 0, 5, 2, 0);

    public Arm64VgicGuestVm(Action<A64Assembler> program, int vcpus = 1, bool initialize = true,
        Action<A64Assembler>? sync = null, Action<A64Assembler>? irq = null, Action<A64Assembler>? fiq = null)
        : base(program)
    {
        if (sync is not null) Host.Write(0x200, Arm64Guest.Assemble(sync));
        if (irq is not null) Host.Write(0x280, Arm64Guest.Assemble(irq));
        if (fiq is not null) Host.Write(0x300, Arm64Guest.Assemble(fiq));
        for (int i = 0; i < vcpus; i++) AddVcpu();
        Gic = Vm.CreateVgicV3(Dist, Redist, (uint)vcpus, interrupts: 128);
        if (initialize) Gic.InitializeVgic();
    }

    public KvmDevice Gic { get; }

    protected override void DisposeExtras() => Gic.Dispose();

    /// <summary>GICD_CTLR.EnableGrp1 (KVM's only distributor enable, for both groups).</summary>
    public static void EnableDistributor(A64Assembler a)
    {
        a.MovImm(X(2), Dist);
        a.MovImm(X(3), 2);
        a.Str(W(3), X(2), 0);
    }

    /// <summary>ICC_PMR_EL1 = 0xff and the given group enables.</summary>
    public static void EnableCpuInterface(A64Assembler a, bool group0, bool group1)
    {
        a.MovImm(X(1), 0xff);
        a.Msr(IccPmr, X(1));
        a.MovImm(X(1), group0 ? 1UL : 0);
        a.Msr(IccIgrpen0, X(1));
        a.MovImm(X(1), group1 ? 1UL : 0);
        a.Msr(IccIgrpen1, X(1));
    }

    /// <summary>Runs vCPU <paramref name="index"/> and asserts that it stops at a UcallDone.</summary>
    public void RunToDone(int index)
    {
        var exit = Vcpus[index].RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(Arm64Guest.UcallDone, BitConverter.ToUInt64(exit.MmioData));
    }
}
