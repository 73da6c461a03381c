// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation;

/// <summary>What the emulated MMU would map a guest page with, and why (see <see cref="GuestMemfdHugetlbInspection"/>).</summary>
/// <param name="PageShift">log2 of the mapping size: 12 (4 KiB), 21 (2 MiB) or 30 (1 GiB).</param>
/// <param name="GmemOrder">kvm_gmem_get_pfn's max_order: the folio order of the backing page (0 unless a whole huge folio), lowered to the order at which the GFN and the file index agree.</param>
public readonly record struct GuestMappingLevel(int PageShift, int GmemOrder);

/// <summary>One huge page of a HugeTLB guest_memfd, as the emulated page cache holds it.</summary>
/// <param name="Allocated">A folio exists (fallocate, a guest fault, populate or write made it).</param>
/// <param name="Whole">The folio is one huge folio; false when it is restructured (split) to 4 KiB folios or absent.</param>
public readonly record struct GuestMemfdHugePage(bool Allocated, bool Whole);

/// <summary>
/// Observation points for the guest_memfd HugeTLB proposal (GuestMemfd/GmemHugetlb.cs) that no syscall exposes:
/// the host's huge page pools, the split/merge state of a file's huge pages, and the mapping level the guest fault
/// path would use. Test and tooling hooks; the kernel itself shows these only through /proc and tracepoints.
/// </summary>
public static class GuestMemfdHugetlbInspection
{
    /// <summary>The pool of huge pages of <paramref name="pageShift"/> (21 or 30), or null when the host has no such hstate.</summary>
    public static HugetlbPool? Pool(EmulatedKernel kernel, int pageShift)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        lock (kernel.SyncRoot) return GmemHugetlb.Pool(kernel, pageShift - EmulatorConfig.PageShift);
    }

    /// <summary>
    /// The huge page holding byte <paramref name="offset"/> of the guest_memfd <paramref name="gmemFd"/>: 0 and its
    /// state, EBADF, or EINVAL (not a guest_memfd, not HugeTLB, or beyond i_size).
    /// </summary>
    public static long HugePage(EmulatedKernel kernel, KernelFd gmemFd, ulong offset, out GuestMemfdHugePage page)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(gmemFd);
        page = default;
        lock (kernel.SyncRoot)
        {
            var file = kernel.Fget((uint)gmemFd.Number);
            if (file is null) return Err.EBADF;
            if (file is not GmemFile f || f.GmemInode.Hugetlb is not { } huge || offset >= (ulong)f.GmemInode.Size) return Err.EINVAL;
            ulong h = (offset >> EmulatorConfig.PageShift) >> huge.Order;
            page = new GuestMemfdHugePage(huge.IsAllocated(h), huge.IsWhole(h));
            return 0;
        }
    }

    /// <summary>
    /// The mapping the x86 MMU would install for a fault on guest physical address <paramref name="gpa"/> of the VM
    /// <paramref name="vmFd"/> (address space 0) now, by the rules of the emulated fault path (Mmu/MmuMappingLevel.cs:
    /// kvm_mmu_max_mapping_level with lpage_info — slot head/tail, userspace_addr alignment, mixed attributes —, the
    /// guest_memfd folio's max_order and the VM type's gmem_max_mapping_level), with the fault's private/shared
    /// choice taken from the GFN's attributes. A huge page not allocated yet counts as the whole folio the fault would
    /// allocate iff all of it is private (__maybe_split_fresh_folio). What a fault did map:
    /// <see cref="GuestMappingInspection.LastFault"/>. The guest's own page tables are not considered. 0, ENOENT (no
    /// memslot there), EBADF or EINVAL (not a VM fd). Slots without guest_memfd answer 4 KiB (host THP is not modelled).
    /// </summary>
    public static long MappingLevel(EmulatedKernel kernel, KernelFd vmFd, ulong gpa, out GuestMappingLevel level)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(vmFd);
        int shift = EmulatorConfig.PageShift;
        level = new GuestMappingLevel(shift, 0);
        lock (kernel.SyncRoot)
        {
            var file = kernel.Fget((uint)vmFd.Number);
            if (file is null) return Err.EBADF;
            if (file is not KvmVmFile vmFile) return Err.EINVAL;
            var kvm = vmFile.Kvm;
            ulong gfn = gpa >> shift;
            var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, gfn);
            if (slot is null) return Err.ENOENT;
            bool isPrivate = GuestMemoryPath.MemIsPrivate(kvm, gfn);
            // __kvm_mmu_faultin_pfn: "if (fault->is_private || kvm_memslot_is_gmem_only(fault->slot))" → gmem.
            bool fromGmem = slot.HasGmem && (isPrivate || slot.GmemOnly);
            int gmemOrder = 0;
            if (fromGmem && slot.GmemFile?.GmemInode.Hugetlb is { } huge)
            {
                ulong index = gfn - slot.BaseGfn + slot.GmemPgoff;
                ulong h = index >> huge.Order;
                bool whole = huge.IsWhole(h) || (!huge.IsAllocated(h) && huge.AllPrivate(h));
                gmemOrder = whole ? MmuMappingLevel.CongruentOrder(gfn, index, huge.Order) : 0;
            }
            int l = MmuMappingLevel.ForFault(kvm, slot, gfn, isPrivate, fromGmem, gmemOrder);
            level = new GuestMappingLevel(MmuMappingLevel.PageShift(l), gmemOrder);
            return 0;
        }
    }
}

/// <summary>
/// One host hstate's pool (nr_hugepages of one size) as guest_memfd subpools use it: reservations are taken at
/// creation and returned at release; allocated pages are a subset of the reservations.
/// </summary>
public sealed class HugetlbPool
{
    internal HugetlbPool(int order, long total)
    {
        Order = order;
        Total = total;
    }

    /// <summary>Page order of the pool's pages (9 = 2 MiB, 18 = 1 GiB with 4 KiB base pages).</summary>
    public int Order { get; }

    /// <summary>nr_hugepages of this size.</summary>
    public long Total { get; }

    /// <summary>Pages reserved by live guest_memfd subpools (resv_huge_pages).</summary>
    public long Reserved { get; private set; }

    /// <summary>Pages currently allocated as folios of some guest_memfd (a subset of the reservations).</summary>
    public long Allocated { get; private set; }

    /// <summary>Pages neither reserved nor allocated (what a new guest_memfd can still reserve).</summary>
    public long Free => Total - Reserved;

    internal bool TryReserve(long pages)
    {
        if (pages < 0 || pages > Free) return false;
        Reserved += pages;
        return true;
    }

    internal void Unreserve(long pages) => Reserved -= pages;

    internal void NoteAllocated(long pages) => Allocated += pages;
}
