// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Abi.KvmX86Quirks;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c's quirks: kvm_caps.supported_quirks (KVM_CAP_DISABLE_QUIRKS2), kvm->arch.disabled_quirks
/// (KVM_ENABLE_CAP of KVM_CAP_DISABLE_QUIRKS / 2) and kvm_check_has_quirk.
/// <para>
/// What disabling each changes here: LINT0_REENABLED — the BSP's LVT LINT0 at APIC reset (Irqchip/Lapic.cs);
/// LAPIC_MMIO_HOLE — the xAPIC page of a hardware-disabled or x2APIC-mode APIC goes to KVM_EXIT_MMIO
/// (Irqchip/Lapic.Registers.cs MmioRead/MmioWrite); FIX_HYPERCALL_INSN — the other vendor's hypercall is #UD.
/// Not modelled, with what this host (kvm_pvm, AMD) shows: CD_NW_CLEARED only changes SVM's hardware CR0 (svm_set_cr0),
/// never the guest's CR0 — nothing to see; OUT_7E_INC_RIP — kvm_pvm exits every OUT with RIP already past it (no
/// kvm_fast_pio_out), with and without the quirk, as the emulator does; MWAIT_NEVER_UD_FAULTS and
/// MISC_ENABLE_NO_MWAIT — MONITOR is KVM_EXIT_INTERNAL_ERROR on kvm_pvm whatever the quirks, and the emulator does not
/// emulate MONITOR/MWAIT outside SEV-ES (an SEV-ES guest's #VC path follows both quirks: X86Emulator.GhcbEvents.cs); SLOT_ZAP_ALL — which SPTEs a memslot deletion zaps, not observable; IGNORE_GUEST_PAT and
/// VMCS12_ALLOW_FREEZE_IN_SMM are Intel (VMX) only. STUFF_FEATURE_MSRS is modelled for MSR_PLATFORM_INFO
/// (<see cref="StuffFeatureMsrs"/>), and with it whether CPUID faulting (MSR_MISC_FEATURES_ENABLES, MsrRules) can be enabled.
/// </para>
/// </summary>
internal static class Quirks
{
    /// <summary>KVM_X86_VALID_QUIRKS up to 6.11: LINT0_REENABLED … MWAIT_NEVER_UD_FAULTS.</summary>
    private const ulong ValidBefore612 = 0x7f;

    /// <summary>
    /// kvm_caps.supported_quirks on an AMD host: every quirk but the Intel-only IGNORE_GUEST_PAT (vmx.c adds it only
    /// with self-snoop). 6.12 added SLOT_ZAP_ALL and STUFF_FEATURE_MSRS; VMCS12_ALLOW_FREEZE_IN_SMM came to 6.12.y
    /// and 6.18.y as a stable backport. Observed on this host (6.18.44, EPYC): 0x5ff.
    /// </summary>
    private const ulong SupportedOnAmd = ValidBefore612 | KVM_X86_QUIRK_SLOT_ZAP_ALL | KVM_X86_QUIRK_STUFF_FEATURE_MSRS
        | KVM_X86_QUIRK_VMCS12_ALLOW_FREEZE_IN_SMM;

    /// <summary>KVM_CHECK_EXTENSION(KVM_CAP_DISABLE_QUIRKS2) for <paramref name="generation"/> (the same on /dev/kvm and every VM).</summary>
    public static ulong Supported(KernelGeneration generation) =>
        generation >= KernelGeneration.Linux611 ? SupportedOnAmd : ValidBefore612;

    /// <summary>kvm_check_has_quirk: the quirk is on unless the VM disabled it.</summary>
    public static bool Has(Kvm kvm, ulong quirk) => (kvm.DisabledQuirks & quirk) == 0;

    /// <summary>
    /// x86.c kvm_arch_vcpu_create: "if (kvm_check_has_quirk(vcpu->kvm, KVM_X86_QUIRK_STUFF_FEATURE_MSRS)) {
    /// vcpu->arch.arch_capabilities = kvm_get_arch_capabilities(); vcpu->arch.msr_platform_info =
    /// MSR_PLATFORM_INFO_CPUID_FAULT; vcpu->arch.perf_capabilities = kvm_caps.supported_perf_cap; }" — of these only
    /// MSR_PLATFORM_INFO differs on this host (observed on kvm_pvm: 0x80000000 with the quirk, 0 without, to
    /// KVM_GET_MSRS and the guest's RDMSR; ARCH_CAPABILITIES, PERF_CAPABILITIES and svm_vcpu_create's microcode
    /// version read 0 either way, as the emulator has them). Before 6.12 there is no such quirk: always stuffed (a v1
    /// KVM_CAP_DISABLE_QUIRKS of bit 8 there changes nothing). Also records the vCPU's VM in
    /// <paramref name="msrs"/> (vcpu->kvm: the per-VM guest_can_read_msr_platform_info).
    /// </summary>
    public static void StuffFeatureMsrs(Kvm kvm, MsrState msrs)
    {
        msrs.Vm = kvm;
        bool offered = (Supported(kvm.Kernel.Config.Generation) & KVM_X86_QUIRK_STUFF_FEATURE_MSRS) != 0;
        if (!offered || Has(kvm, KVM_X86_QUIRK_STUFF_FEATURE_MSRS)) msrs.PlatformInfo = MsrRules.PlatformInfoCpuidFault;
    }

    /// <summary>
    /// kvm_vm_ioctl_enable_cap: "case KVM_CAP_DISABLE_QUIRKS2: r = -EINVAL; if (cap->args[0] &amp; ~kvm_caps.supported_quirks)
    /// break; fallthrough; case KVM_CAP_DISABLE_QUIRKS: kvm->arch.disabled_quirks |= cap->args[0] &amp;
    /// kvm_caps.supported_quirks". Since "KVM: x86: do not allow re-enabling quirks" (6.14; in 6.12.y and 6.18.y as a
    /// dependency of VMCS12_ALLOW_FREEZE_IN_SMM) a disabled quirk stays disabled (observed: disabling LINT0 then nothing,
    /// by either cap, keeps it off); before, each call replaced the set. No kvm->created_vcpus check: allowed after
    /// KVM_CREATE_VCPU (observed).
    /// </summary>
    public static long Disable(Kvm kvm, in kvm_enable_cap cap, bool checkSupported)
    {
        ulong supported = Supported(kvm.Kernel.Config.Generation);
        if (checkSupported && (cap.args[0] & ~supported) != 0) return Err.EINVAL;
        kvm.DisabledQuirks = kvm.Kernel.Config.Generation >= KernelGeneration.Linux611
            ? kvm.DisabledQuirks | (cap.args[0] & supported)
            : cap.args[0];
        return 0;
    }
}
