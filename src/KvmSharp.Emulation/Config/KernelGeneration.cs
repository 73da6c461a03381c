// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation;

/// <summary>Which tree the emulated kernel follows.</summary>
public enum KernelGeneration
{
    /// <summary>Linux 6.18 mainline: guest_memfd with MMAP and INIT_SHARED, per-VM memory attributes only.</summary>
    Mainline618,

    /// <summary>
    /// "guest_memfd: In-place conversion support" [PATCH v8 00/46] (Ackerley Tng, 2026-06-18, unmerged): per-gmem
    /// attributes and KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd fd, gated by <c>kvm.gmem_in_place_conversion</c>.
    /// </summary>
    InPlaceConversionV8,
}
