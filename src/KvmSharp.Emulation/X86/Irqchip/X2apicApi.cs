// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>kvm-&gt;arch.x2apic_format and kvm-&gt;arch.x2apic_broadcast_quirk_disabled (KVM_CAP_X2APIC_API).</summary>
internal sealed class X2apicApiState
{
    /// <summary>KVM_X2APIC_API_USE_32BIT_IDS: 32-bit APIC IDs in KVM_GET/SET_LAPIC, MSI address_hi bits 31:8 as destination bits 31:8.</summary>
    public volatile bool Format;

    /// <summary>KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK: a non-IPI message to 0xFF is no x2APIC broadcast.</summary>
    public volatile bool BroadcastQuirkDisabled;

    /// <summary>
    /// kvm-&gt;arch.suppress_eoi_broadcast_mode: 0 quirked (the default), 1 enabled
    /// (KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST), 2 disabled (KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST).
    /// </summary>
    public volatile int SuppressEoiBroadcast;
}

/// <summary>
/// x86.c kvm_vm_ioctl_enable_cap KVM_CAP_X2APIC_API and where its two VM flags count (lapic.c kvm_apic_state_fixup,
/// kvm_recalculate_phys_map, kvm_apic_mda, kvm_apic_is_broadcast_dest; irq.c kvm_msi_route_invalid,
/// x86_msi_msg_get_destid). The flags live in the VM's irqchip state (<see cref="VmIrqchip.X2apicApiFlags"/>;
/// kvm-&gt;arch upstream).
/// </summary>
internal static class X2apicApi
{

    /// <summary>
    /// KVM_X2APIC_API_USE_32BIT_IDS, KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK, KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST,
    /// KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST: KVM_X2APIC_API_VALID_FLAGS (15 — the last two from the "suppress EOI
    /// broadcast" series, which this host's kernel has: KVM_CHECK_EXTENSION answers 15 on /dev/kvm, 11 on a VM without
    /// a split irqchip).
    /// </summary>
    public const ulong UseX2apicIds = KvmConstants.KVM_X2APIC_API_USE_32BIT_IDS,
        DisableBroadcastQuirk = KvmConstants.KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK,
        EnableSuppressEoiBroadcast = 4, DisableSuppressEoiBroadcast = 8, ValidFlags = 15;

    /// <summary>kvm-&gt;arch.suppress_eoi_broadcast_mode values.</summary>
    public const int SuppressQuirked = 0, SuppressEnabled = 1, SuppressDisabled = 2;



    /// <summary>
    /// "case KVM_CAP_X2APIC_API: r = -EINVAL; if (cap-&gt;args[0] &amp; ~KVM_X2APIC_API_VALID_FLAGS) break;" — both
    /// suppress-EOI-broadcast flags, or ENABLE without a split irqchip, break too; then USE_32BIT_IDS sets
    /// x2apic_format, DISABLE_BROADCAST_QUIRK x2apic_broadcast_quirk_disabled (never cleared again), and either
    /// suppress flag sets suppress_eoi_broadcast_mode. With or without vCPUs.
    /// </summary>
    public static long Enable(Kvm kvm, in kvm_enable_cap cap)
    {
        ulong flags = cap.args[0];
        if ((flags & ~ValidFlags) != 0) return Vfs.Err.EINVAL;
        if ((flags & EnableSuppressEoiBroadcast) != 0 && (flags & DisableSuppressEoiBroadcast) != 0) return Vfs.Err.EINVAL;
        if ((flags & EnableSuppressEoiBroadcast) != 0 && kvm.Irqchip.Mode != IrqchipMode.Split) return Vfs.Err.EINVAL;
        // LVR's directed-EOI bit follows these flags only at kvm_apic_set_version (reset, KVM_SET_LAPIC, KVM_SET_CPUID2):
        // a KVM_SET_CPUID2 made before this call keeps the old flags' answer (Lapic.SyncVersion sees it lazily).
        foreach (var v in kvm.Vcpus) v.Lapic?.SyncVersionNow();
        var s = kvm.Irqchip.X2apicApiFlags;
        if ((flags & UseX2apicIds) != 0) s.Format = true;
        if ((flags & DisableBroadcastQuirk) != 0) s.BroadcastQuirkDisabled = true;
        if ((flags & EnableSuppressEoiBroadcast) != 0) s.SuppressEoiBroadcast = SuppressEnabled;
        if ((flags & DisableSuppressEoiBroadcast) != 0) s.SuppressEoiBroadcast = SuppressDisabled;
        return 0;
    }

    /// <summary>
    /// Whether kvm_apic_set_version advertises APIC_LVR_DIRECTED_EOI to an x2APIC guest: quirked — only without the
    /// in-kernel IOAPIC (the legacy rule); enabled — yes; disabled — never.
    /// </summary>
    public static bool AdvertiseDirectedEoi(Kvm kvm) => kvm.Irqchip.X2apicApiFlags.SuppressEoiBroadcast switch
    {
        SuppressEnabled => true,
        SuppressDisabled => false,
        _ => !kvm.Irqchip.Full,
    };
}
