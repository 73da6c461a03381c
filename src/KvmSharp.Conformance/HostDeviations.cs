// SPDX-License-Identifier: MIT
namespace KvmSharp.Conformance;

/// <summary>
/// Known, named differences between this machine's kernel and upstream. A test that meets one asserts the host's
/// behaviour on the real kernel (so a change on the host is noticed) and the upstream behaviour on the emulator.
/// </summary>
public static class HostDeviations
{
    /// <summary>
    /// kvm_pvm (software nested KVM): a vCPU reaches guest_memfd memory only when the slot's userspace_addr is a
    /// mapping of that gmem. With userspace_addr = 0 (upstream's gmem-only slot, selftest test_guest_memfd_guest)
    /// an instruction fetch from the slot ends in KVM_EXIT_INTERNAL_ERROR (emulation failure) and a data access
    /// exits as KVM_EXIT_MMIO. Observed on Linux 6.18 kvm_pvm.
    /// </summary>
    public static bool KvmPvmGmemNeedsUserspaceMapping(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
