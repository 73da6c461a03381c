// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// The x86 quirks (KVM_X86_QUIRK_*): old KVM behaviours that stay on for compatibility until a VM disables them
/// (<see cref="Vm.DisableQuirks"/>). A disabled quirk cannot be turned on again.
/// </summary>
[Flags]
#pragma warning disable CA1711 // "Quirks" is the kernel's word, not a collection suffix
public enum X86Quirks : ulong
#pragma warning restore CA1711
{
    /// <summary>No quirk.</summary>
    None = 0,

    /// <summary>The BSP's LVT LINT0 is reset to ExtINT, unmasked (off: masked like every other LVT entry).</summary>
    Lint0Reenabled = KvmX86Quirks.KVM_X86_QUIRK_LINT0_REENABLED,

    /// <summary>CR0.CD and NW are cleared in the hardware CR0 (SVM) while the guest sets them.</summary>
    CdNwCleared = KvmX86Quirks.KVM_X86_QUIRK_CD_NW_CLEARED,

    /// <summary>The xAPIC MMIO page stays claimed by the local APIC in x2APIC mode (reads all ones, drops writes).</summary>
    LapicMmioHole = KvmX86Quirks.KVM_X86_QUIRK_LAPIC_MMIO_HOLE,

    /// <summary>RIP is already past an <c>OUT 0x7e</c> when KVM exits to userspace for it.</summary>
    Out7eIncRip = KvmX86Quirks.KVM_X86_QUIRK_OUT_7E_INC_RIP,

    /// <summary>IA32_MISC_ENABLE's MWAIT bit is free for the guest to flip (off: it needs SSE3 and drives CPUID.1:ECX.MONITOR).</summary>
    MiscEnableNoMwait = KvmX86Quirks.KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT,

    /// <summary>The other vendor's hypercall instruction is rewritten in guest memory and run (off: #UD).</summary>
    FixHypercallInsn = KvmX86Quirks.KVM_X86_QUIRK_FIX_HYPERCALL_INSN,

    /// <summary>MONITOR/MWAIT run as NOPs whatever the guest's CPUID says.</summary>
    MwaitNeverUdFaults = KvmX86Quirks.KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS,

    /// <summary>Deleting or moving a memslot zaps every SPTE, not only the slot's.</summary>
    SlotZapAll = KvmX86Quirks.KVM_X86_QUIRK_SLOT_ZAP_ALL,

    /// <summary>KVM fills the VMX feature MSRs and PERF_CAPABILITIES at vCPU creation and on CPUID changes.</summary>
    StuffFeatureMsrs = KvmX86Quirks.KVM_X86_QUIRK_STUFF_FEATURE_MSRS,

    /// <summary>Intel: the guest's PAT is ignored for its memory types.</summary>
    IgnoreGuestPat = KvmX86Quirks.KVM_X86_QUIRK_IGNORE_GUEST_PAT,

    /// <summary>nested VMX: vmcs12 may set IA32_DEBUGCTL.FREEZE_IN_SMM.</summary>
    Vmcs12AllowFreezeInSmm = KvmX86Quirks.KVM_X86_QUIRK_VMCS12_ALLOW_FREEZE_IN_SMM,
}
