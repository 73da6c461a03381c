// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Loader;

/// <summary>How a micro-VM put its image into guest memory (<see cref="MicroVm.LastImageLoad"/>).</summary>
public enum ImageLoadMethod
{
    /// <summary>Copied through the host mapping of guest memory (host memory, or a guest_memfd without write(2)).</summary>
    MappingCopy,

    /// <summary>
    /// Written with pwrite(2) on the guest_memfd (<see cref="GuestMemfd.WriteAll"/>), a whole page at a time: the
    /// guest_memfd was created with GUEST_MEMFD_FLAG_WRITE, a proposal ("[PATCH v7 1/2] KVM: guest_memfd: add generic
    /// population via write"; today the emulator with <c>GuestMemfdWrite</c>). No host page fault per page.
    /// </summary>
    GuestMemfdWrite,
}
