// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// The boot of an arm64 micro-VM, the way tools/testing/selftests/kvm/lib/arm64/processor.c sets up a vCPU before
/// paging: KVM_ARM_PREFERRED_TARGET, KVM_ARM_VCPU_INIT with PSCI 0.2 (so PSCI SYSTEM_OFF is a KVM_EXIT_SYSTEM_EVENT),
/// VBAR_EL1 = the VMM's vector table, and per call PC = the trampoline, SP_EL1 = the stack top, PSTATE = EL1h with
/// DAIF masked, all through KVM_SET_ONE_REG; and, as processor.c's aarch64_vcpu_setup does before the guest runs, the
/// stage-1 MMU turned on over the identity tables the host wrote (<see cref="Arm64PageTables"/>): MAIR_EL1, TCR_EL1,
/// TTBR0_EL1, then SCTLR_EL1 with M, C and I set (<see cref="Layout"/>).
/// </summary>
internal sealed class Arm64Boot
{
    private readonly kvm_vcpu_init _init;

    private Arm64Boot(kvm_vcpu_init init) => _init = init;

    /// <summary>KVM_ARM_PREFERRED_TARGET of <paramref name="vm"/>, with PSCI 0.2 added.</summary>
    public static Arm64Boot Open(Vm vm)
    {
        kvm_vcpu_init init = vm.PreferredTarget();
        init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2;
        return new Arm64Boot(init);
    }

    /// <summary>
    /// KVM_ARM_VCPU_INIT (again, for a reset: arm.c kvm_arch_vcpu_ioctl_vcpu_init resets an initialized vCPU to its
    /// reset state when given the same target and features), then VBAR_EL1 and CPACR_EL1.FPEN = 0b11 (KVM resets
    /// CPACR_EL1 to 0, which traps every FP/SIMD instruction at EL1 — Arm ARM D19.2.30 CPACR_EL1 — while compiled C
    /// uses them as soon as the compiler may: GUEST-ABI.md, "arm64 C guests"), then the MMU: MAIR_EL1, TCR_EL1 and
    /// TTBR0_EL1 (<see cref="Layout.EntryMair"/>, <see cref="Layout.EntryTcr"/>, <see cref="Layout.TranslationTables"/>),
    /// and SCTLR_EL1 = KVM's reset value (read back, so its RES1 bits are kept: sys_regs.c resets it to 0x00C50078)
    /// with M, C and I set and A clear (<see cref="Layout.EntrySctlrBits"/>). The tables must be in memory already
    /// (<see cref="WriteBootState"/>); a Reset rewrites both.
    /// </summary>
    public void InitVcpu(Vcpu vcpu)
    {
        vcpu.Init(_init);
        vcpu.SetOneReg(KvmArm64SysRegs.VBAR_EL1, Layout.Vectors);
        vcpu.SetOneReg(KvmArm64SysRegs.CPACR_EL1, Layout.EntryCpacr);
        vcpu.SetOneReg(KvmArm64SysRegs.MAIR_EL1, Layout.EntryMair);
        vcpu.SetOneReg(KvmArm64SysRegs.TCR_EL1, Layout.EntryTcr);
        vcpu.SetOneReg(KvmArm64SysRegs.TTBR0_EL1, Layout.TranslationTables);
        ulong sctlr = vcpu.GetOneReg(KvmArm64SysRegs.SCTLR_EL1);
        vcpu.SetOneReg(KvmArm64SysRegs.SCTLR_EL1, (sctlr | Layout.EntrySctlrBits) & ~SctlrA);
    }

    /// <summary>
    /// KVM_ARM_VCPU_INIT alone, with this micro-VM's target and features: every register back to its reset value, the
    /// first step of loading a snapshot's registers (Snapshots/Arm64VcpuState.cs), which then set VBAR, CPACR, the MMU …
    /// </summary>
    public void ResetVcpu(Vcpu vcpu) => vcpu.Init(_init);

    /// <summary>SCTLR_EL1.A (bit 1): alignment checking of data accesses, kept off.</summary>
    private const ulong SctlrA = 1UL << 1;

    /// <summary>
    /// The registers of a call's start: the trampoline loads the arguments from the call region itself. A call that
    /// ended at an MMIO exit (a store to the exit or return port, an exception report …) left that exit pending: the
    /// next KVM_RUN would complete it first (arm.c kvm_arch_vcpu_ioctl_run → mmio.c kvm_handle_mmio_return: Rt of a
    /// load, and PC += 4 — one instruction past the trampoline's start). So it is completed now, by a KVM_RUN with
    /// immediate_exit set (which completes it and returns EINTR before entering the guest), and only then are the
    /// registers written.
    /// </summary>
    public static void EnterCall(Vcpu vcpu, bool mmioPending)
    {
        if (mmioPending)
        {
            vcpu.ImmediateExit = true;
            try
            {
                vcpu.Run();
            }
            finally
            {
                vcpu.ImmediateExit = false;
            }
        }
        vcpu.SetPc(Layout.Trampoline);
        vcpu.SetOneReg(KvmArm64Regs.SpEl1, Layout.StackTop);
        vcpu.SetOneReg(KvmArm64Regs.Pstate, Layout.EntryPstate);
    }

    /// <summary>
    /// Writes the translation tables (<see cref="Arm64PageTables"/>), the trampoline, the vector table (with its common
    /// handler) and the call region's magic and version (as X86_64.BootMemory does: a guest's kvms_abi_version() reads
    /// them) into fresh memory.
    /// </summary>
    public static void WriteBootState(GuestMemory memory)
    {
        Arm64PageTables.Write(memory);
        memory.Write(Layout.Trampoline, Arm64GuestCode.Trampoline());
        memory.Write(Layout.Vectors, Arm64GuestCode.Vectors());
        memory.Write(CallRegion.Address(CallRegion.Magic), CallRegion.MagicValue);
        memory.Write(CallRegion.Address(CallRegion.Version), CallRegion.VersionValue);
    }
}
