// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>How a micro-VM's guest memory gets a snapshot's pages (<see cref="MicroVmOptions.SnapshotRestore"/>).</summary>
public enum SnapshotRestoreMode
{
    /// <summary>Every page of the snapshot is written before the guest runs (write(2) where offered, else a copy).</summary>
    Eager,

    /// <summary>
    /// Lazily where the kernel offers it, eagerly elsewhere: needs guest_memfd memory with GUEST_MEMFD_FLAG_WRITE
    /// ("[PATCH v7 1/2]") and KVM userfault (KVM_CAP_USERFAULT, "[PATCH v3 00/15]"), both unmerged proposals. Each
    /// snapshot page is then marked in the slot's userfault bitmap and written by write(2) when the guest first touches
    /// it (its KVM_EXIT_MEMORY_FAULT with the USERFAULT flag) or the host reads or writes it through
    /// <see cref="GuestMemory"/> — Firecracker's lazy gmem restore. <see cref="MicroVm.LastRestoreWasLazy"/> says what
    /// was used.
    /// </summary>
    LazyIfOffered,

    /// <summary>Like <see cref="LazyIfOffered"/>, but creation or restore fails (MicroVmException) where it is not offered.</summary>
    Lazy,
}
