// SPDX-License-Identifier: MIT
namespace KvmSharp;

/// <summary>
/// What a guest_memfd can be for one VM, read from the VM's KVM_CAP_GUEST_MEMFD and KVM_CAP_GUEST_MEMFD_FLAGS
/// (<see cref="Vm.GuestMemfdUse"/>): the decision a VMM makes between guest_memfd and ordinary host memory, without
/// parsing kernel versions. Ordered: each value can do what the ones before it can.
/// </summary>
public enum GuestMemfdUse
{
    /// <summary>
    /// None: KVM_CAP_GUEST_MEMFD = 0 on the VM. The kernel has no guest_memfd (built without CONFIG_KVM_GUEST_MEMFD,
    /// or older than 6.8), or it is 6.8–6.17 and the VM type has no private memory (a default x86 VM): back the
    /// guest with host memory (<see cref="Vm.AddMemorySlot(uint, ulong, AnonymousMemory, MemorySlotFlags)"/>).
    /// </summary>
    None,

    /// <summary>
    /// The private half of a private-capable slot only: the file cannot be mapped (no GUEST_MEMFD_FLAG_MMAP: the 6.8
    /// design, or 6.18+ for a VM type whose private memory the host must not map). Shared pages come from
    /// userspace_addr (<see cref="Vm.AddPrivateMemorySlot"/>), KVM_SET_MEMORY_ATTRIBUTES picks per page.
    /// </summary>
    PrivateBacking,

    /// <summary>
    /// Mappable but born private (GUEST_MEMFD_FLAG_MMAP without INIT_SHARED: a 6.18 VM type with private memory):
    /// the host can map the file, but every page faults (SIGBUS; the SDK throws first) until it is made shared.
    /// </summary>
    MappablePrivate,

    /// <summary>
    /// The guest's whole memory (GUEST_MEMFD_FLAG_MMAP | INIT_SHARED, 6.18+): a gmem-only slot the host maps and
    /// writes, no host memory at all.
    /// </summary>
    SoleMemory,
}
