// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// The flags of a memory slot backed by ordinary host memory (kvm_userspace_memory_region.flags). KVM_MEM_GUEST_MEMFD
/// is not here: it is implied by <see cref="Vm.AddGuestMemfdSlot"/> and <see cref="Vm.AddPrivateMemorySlot"/>.
/// </summary>
[Flags]
public enum MemorySlotFlags : uint
{
    /// <summary>A writable slot without dirty logging.</summary>
    None = 0,

    /// <summary>KVM_MEM_LOG_DIRTY_PAGES: KVM tracks the pages the guest writes (not allowed with guest_memfd).</summary>
    LogDirtyPages = KvmConstants.KVM_MEM_LOG_DIRTY_PAGES,

    /// <summary>
    /// KVM_MEM_READONLY: the guest may read but not write; a guest write exits as KVM_EXIT_MMIO instead of reaching
    /// the host memory. Needs KVM_CAP_READONLY_MEM on the VM (not on VMs with protected state, e.g. TDX/SEV-ES).
    /// </summary>
    ReadOnly = KvmConstants.KVM_MEM_READONLY,
}
