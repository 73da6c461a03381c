// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>What holds a micro-VM's memory.</summary>
public enum GuestMemoryBacking
{
    /// <summary>
    /// One guest_memfd (MMAP|INIT_SHARED), the sandbox's design: the memory belongs to KVM, the host reaches it only
    /// through the file's mapping, and VM types with private memory can convert pages. Needs
    /// KVM_CAP_GUEST_MEMFD_FLAGS with MMAP|INIT_SHARED for the VM type.
    /// </summary>
    GuestMemfd,

    /// <summary>
    /// Ordinary anonymous host memory in a plain memory slot, for kernels without guest_memfd (built without
    /// CONFIG_KVM_GUEST_MEMFD, or older than 6.8). Same layout, ABI and outcomes; no private memory.
    /// </summary>
    HostMemory,
}
