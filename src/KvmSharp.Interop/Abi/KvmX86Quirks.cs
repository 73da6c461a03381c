// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>
/// arch/x86/include/uapi/asm/kvm.h <c>KVM_X86_QUIRK_*</c>: behaviours KVM keeps for old userspace, each on until a VM
/// turns it off with KVM_CAP_DISABLE_QUIRKS / KVM_CAP_DISABLE_QUIRKS2 (<see cref="KvmCaps"/>).
/// </summary>
public static class KvmX86Quirks
{
    public const ulong KVM_X86_QUIRK_LINT0_REENABLED = 1UL << 0;
    public const ulong KVM_X86_QUIRK_CD_NW_CLEARED = 1UL << 1;
    public const ulong KVM_X86_QUIRK_LAPIC_MMIO_HOLE = 1UL << 2;
    public const ulong KVM_X86_QUIRK_OUT_7E_INC_RIP = 1UL << 3;
    public const ulong KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT = 1UL << 4;
    public const ulong KVM_X86_QUIRK_FIX_HYPERCALL_INSN = 1UL << 5;
    public const ulong KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS = 1UL << 6;
    public const ulong KVM_X86_QUIRK_SLOT_ZAP_ALL = 1UL << 7;
    public const ulong KVM_X86_QUIRK_STUFF_FEATURE_MSRS = 1UL << 8;
    public const ulong KVM_X86_QUIRK_IGNORE_GUEST_PAT = 1UL << 9;

    /// <summary>
    /// "KVM: x86: Introduce KVM_X86_QUIRK_VMCS12_ALLOW_FREEZE_IN_SMM" (2025, backported to 6.12.y and 6.18.y; newer
    /// than the vendored headers): offered by this machine's 6.18.44 kernel (KVM_CAP_DISABLE_QUIRKS2 = 0x5ff).
    /// </summary>
    public const ulong KVM_X86_QUIRK_VMCS12_ALLOW_FREEZE_IN_SMM = 1UL << 10;
}
