// SPDX-License-Identifier: MIT
// Host deviations in coalesced MMIO (virt/kvm/coalesced_mmio.c).
namespace KvmSharp.Conformance;

public static partial class HostDeviations
{
    /// <summary>
    /// kvm_pvm answers KVM_CHECK_EXTENSION(KVM_CAP_COALESCED_PIO = 133) with 0 on /dev/kvm and on a VM, where upstream
    /// kvm_vm_ioctl_check_extension_generic returns 1 under CONFIG_KVM_MMIO ("case KVM_CAP_COALESCED_PIO: return 1"),
    /// yet it takes PIO zones as upstream does: KVM_REGISTER_COALESCED_MMIO with pio = 1 answers 0 and the guest's OUTs
    /// into the zone are queued with pio 1 (Conformance/Cases/CoalescedMmioRules.cs pio_zones_take_outs passes on it).
    /// Observed on Linux 6.18.44 kvm_pvm; KVM_CAP_COALESCED_MMIO is 2 there, as upstream. The emulator's upstream presets
    /// answer 1, its like-this-host preset 0 (the host's snapshot).
    /// </summary>
    public static bool KvmPvmCoalescedPioCapIsZero(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
