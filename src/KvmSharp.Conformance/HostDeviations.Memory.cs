// SPDX-License-Identifier: MIT
// Host deviations in guest memory: guest_memfd and memslot access, the dirty ring.
namespace KvmSharp.Conformance;

public static partial class HostDeviations
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

    /// <summary>
    /// kvm_pvm (software nested KVM): a guest access to a plain memslot whose userspace_addr the kernel cannot fault
    /// in (a valid, PROT_NONE or unmapped address: access_ok passes, get_user_pages fails) is emulated as MMIO instead
    /// of failing. Upstream x86: __kvm_faultin_pfn → KVM_PFN_ERR_FAULT → kvm_handle_error_pfn →
    /// kvm_mmu_prepare_memory_fault_exit, KVM_RUN returns -EFAULT with KVM_EXIT_MEMORY_FAULT (flags 0, the page's
    /// gpa and size). Observed on Linux 6.18 kvm_pvm, real-mode guest (CS = DS base 0x10000, code in slot 0 of
    /// anonymous memory), slot 1 at GPA 0x12000 of one page:
    /// <list type="bullet">
    /// <item>userspace_addr = a PROT_NONE anonymous mapping: <c>mov al, [0x2000]</c> → KVM_EXIT_MMIO read,
    /// phys_addr 0x12000, len 1; answered with 0, the guest continues; <c>mov byte [0x2001], 0xff</c> →
    /// KVM_EXIT_MMIO write at 0x12001; then HLT.</item>
    /// <item>userspace_addr = anonymous memory that was munmap'ed after the slot was added (and had been used by the
    /// guest before): the same, KVM_EXIT_MMIO read at the slot's GPA, then MMIO write.</item>
    /// </list>
    /// The typed API cannot reach this state (a memory slot keeps its host memory mapped until it is deleted).
    /// </summary>
    public static bool KvmPvmUnbackedUserMemoryIsMmio(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM) emulates real-mode guests instruction by instruction, and every emulated write goes
    /// through kvm_vcpu_write_guest → mark_page_dirty_in_slot: with a dirty ring, each write to a logging slot is
    /// pushed, also to a page already pushed and not yet reset. Upstream (a guest the hardware runs) pushes a page once
    /// — on the write fault that makes it writable — and not again until KVM_RESET_DIRTY_RINGS write-protects it.
    /// Observed on Linux 6.18 kvm_pvm (C probe, real mode, 4 KiB ACQ_REL ring, slot 1 with LOG_DIRTY_PAGES): writes to
    /// pages 0, 2, 1, 2 → entries (1,0) (1,2) (1,1) (1,2); after collecting (not resetting) them, writes to 1, 3 →
    /// (1,1) (1,3); KVM_RESET_DIRTY_RINGS then returns 4 for the 4 collected of them, and a read pushes nothing. The
    /// emulator pushes once per page between resets (DirtyRingRules).
    /// </summary>
    public static bool KvmPvmDirtyRingPushesEveryWrite(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM): a real-mode guest filling its dirty ring past the soft limit (size - 64 entries)
    /// is not stopped: KVM_REQ_DIRTY_RING_SOFT_FULL is only looked at on the next KVM_RUN. Upstream the next
    /// vcpu_enter_guest after the write fault that reached the limit exits with KVM_EXIT_DIRTY_RING_FULL (x86.c,
    /// kvm_dirty_ring_check_request). Observed on Linux 6.18 kvm_pvm (C probe, 4 KiB ring = 256 entries, soft limit
    /// 192): a loop writing 208 pages ran to its OUT (KVM_EXIT_IO) with 210 entries in the ring; the next two KVM_RUNs
    /// returned KVM_EXIT_DIRTY_RING_FULL without running the guest; after collecting all and a reset (210) the guest
    /// went on. A loop long enough to overrun the ring (the kernel's WARN_ON_ONCE in kvm_dirty_ring_push) was not
    /// tried. The emulator exits after the instruction whose write reached the limit.
    /// </summary>
    public static bool KvmPvmDirtyRingFullExitIsLate(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
