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
    /// exits as KVM_EXIT_MMIO. Observed on Linux 6.18 kvm_pvm:
    /// <list type="bullet">
    /// <item>64-bit guest (test_guest_memfd_guest as upstream: one-page MMAP|INIT_SHARED gmem, slot 1 at GPA 4 GiB,
    /// identity-mapped by a 4 KiB PTE; code, stack and page tables in slot 0, a gmem mapped for userspace): the
    /// first exit is KVM_EXIT_MMIO read, phys_addr 0x100000000, len 1, RIP at the guest's <c>cmp byte [rdi+rcx],
    /// 0xaa</c>. Serving every read from the file, the guest makes 4096 one-byte MMIO reads (0x100000000 ..
    /// 0x100000FFF) and 4096 one-byte MMIO writes of 0xff, then reaches its done port; the file still holds 0xaa
    /// (upstream: no exit until GUEST_DONE, and the host sees 0xff).</item>
    /// <item>Real-mode guest, gmem-only data slot at GPA 0x20000: the first exit is KVM_EXIT_MMIO at 0x20000.</item>
    /// </list>
    /// </summary>
    public static bool KvmPvmGmemNeedsUserspaceMapping(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
