// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>The state of one guest_memfd page (one order-0 folio) in the file's page cache.</summary>
internal enum PageState
{
    /// <summary>No folio: never allocated, or punched out. The next use allocates and zeroes it.</summary>
    Absent,

    /// <summary>A folio exists (fallocate) but is not up to date: it has not been zeroed yet.</summary>
    Allocated,

    /// <summary>
    /// Up to date ("prepared"): zeroed on first use by kvm_gmem_fault_user_mapping or kvm_gmem_get_pfn, which share
    /// the uptodate flag, so a page is zeroed at most once until it is punched out.
    /// </summary>
    Uptodate,
}
