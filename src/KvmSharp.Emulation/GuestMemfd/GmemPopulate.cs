// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>How the arch's post_populate fills one page.</summary>
internal enum PopulateFill
{
    /// <summary>Copy PAGE_SIZE bytes from the user source (TDH.MEM.PAGE.ADD / SNP LAUNCH_UPDATE with a buffer).</summary>
    CopySource,

    /// <summary>The firmware zero-fills the page (SNP KVM_SEV_SNP_PAGE_TYPE_ZERO).</summary>
    Zero,

    /// <summary>No source buffer, in-place conversion ([PATCH v8]): the page keeps what guest_memfd holds.</summary>
    InPlace,
}

/// <summary>
/// The arch's kvm_gmem_populate_cb (tdx_gmem_post_populate, sev_gmem_post_populate) reduced to what is observable:
/// 0 and how to fill the page, or -errno. <paramref name="src"/> is the page's user source address, 0 for NULL.
/// </summary>
internal delegate long PostPopulate(GmemInode inode, ulong index, ulong src, out PopulateFill fill);

/// <summary>
/// kvm_gmem_populate() (virt/kvm/guest_memfd.c, CONFIG_HAVE_KVM_ARCH_GMEM_POPULATE): fills private guest_memfd
/// pages with initial guest contents for the vendor launch ioctls, and marks them prepared (up to date). The caller
/// holds the kernel lock (kvm->slots_lock). Two generations:
/// <list type="bullet">
/// <item>6.18: per page, __kvm_gmem_get_pfn (file/binding checks), then "is_prepared → -EEXIST", then
/// kvm_range_has_memory_attributes(PRIVATE) else -EINVAL, then post_populate, which reads the source (copy_from_user
/// / get_user_pages_fast → -EFAULT).</item>
/// <item>v8 tree (newer populate rework, S1 + [PATCH v8]): the source page is pinned first
/// (get_user_pages_fast → -EFAULT), then __kvm_gmem_get_pfn, then the PRIVATE check (per-gmem attributes with
/// gmem_in_place_conversion), then post_populate; there is no generic "already prepared" check any more, the arch
/// decides (see the arch callbacks).</item>
/// </list>
/// Returns the number of pages populated, or -errno when the first page failed ("ret &amp;&amp; !i ? ret : i").
/// </summary>
internal static class GmemPopulate
{
    public static long Populate(Kvm kvm, ulong startGfn, ulong src, long npages, PostPopulate postPopulate)
    {
        // "if (WARN_ON_ONCE(npages <= 0)) return -EINVAL;" (callers never pass 0: SNP rejects len 0 first).
        if (npages <= 0) return Err.EINVAL;
        // slot = gfn_to_memslot(kvm, start_gfn); if (!kvm_slot_has_gmem(slot)) return -EINVAL;
        var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, startGfn);
        if (slot is null || !slot.HasGmem) return Err.EINVAL;
        // CLASS(gmem_get_file, file)(slot); if (!file) return -EFAULT;  (the gmem file was closed)
        var file = slot.GmemFile;
        if (file is null || file.Released) return Err.EFAULT;

        // npages = min_t(ulong, slot->npages - (start_gfn - slot->base_gfn), npages);
        ulong n = Math.Min(slot.NPages - (startGfn - slot.BaseGfn), (ulong)npages);
        bool v8 = kvm.Kernel.Config.Generation == KernelGeneration.InPlaceConversionV8;
        ulong page = (ulong)EmulatorConfig.PageSize;
        long ret = 0;
        ulong i;
        for (i = 0; i < n; i++)
        {
            ulong p = src == 0 ? 0 : src + i * page;
            ret = PopulateOne(kvm, slot, file, startGfn + i, p, v8, postPopulate);
            if (ret != 0) break;
        }
        return ret != 0 && i == 0 ? ret : (long)i;
    }

    private static long PopulateOne(Kvm kvm, KvmMemorySlot slot, GmemFile file, ulong gfn, ulong src, bool v8, PostPopulate postPopulate)
    {
        var config = kvm.Kernel.Config;
        byte[]? source = null;
        if (v8 && src != 0)
        {
            // Newer kvm_gmem_populate: get_user_pages_fast(uaddr, 1, 0, &src_page) before anything else.
            source = new byte[EmulatorConfig.PageSize];
            if (!UserMemory.CopyFromUser(config, src, source)) return Err.EFAULT;
        }

        // __kvm_gmem_get_pfn: file != slot->gmem.file → -EFAULT; xa_load(bindings, index) != slot → -EIO.
        if (slot.GmemFile != file || file.Released) return Err.EFAULT;
        ulong index = gfn - slot.BaseGfn + slot.GmemPgoff;
        if (file.BindingAt(index) != slot) return Err.EIO;
        var inode = file.GmemInode;

        // 6.18 kvm_gmem_populate: "if (is_prepared) { ...; ret = -EEXIST; break; }" (folio already up to date).
        if (!v8 && Prepared(inode, index)) return Err.EEXIST;

        // kvm_range_has_memory_attributes(kvm, gfn, gfn + 1, PRIVATE, PRIVATE) else -EINVAL; with v8's
        // gmem_in_place_conversion kvm_mem_is_private() consults the guest_memfd's own attributes.
        if (!GuestMemoryPath.MemIsPrivate(kvm, gfn)) return Err.EINVAL;

        long r = postPopulate(inode, index, src, out var fill);
        if (r != 0) return r;
        r = Fill(inode, index, src, source, fill, config);
        if (r == 0) inode.MarkPopulated(index);
        return r;
    }

    private static long Fill(GmemInode inode, ulong index, ulong src, byte[]? source, PopulateFill fill, EmulatorConfig config)
    {
        switch (fill)
        {
            case PopulateFill.CopySource:
                if (source is null)
                {
                    // 6.18 post_populate: copy_from_user(dst, src, PAGE_SIZE) / get_user_pages_fast → -EFAULT.
                    source = new byte[EmulatorConfig.PageSize];
                    if (!UserMemory.CopyFromUser(config, src, source)) return Err.EFAULT;
                }
                return inode.WritePage(index, source);
            case PopulateFill.Zero:
                return inode.WritePage(index, new byte[EmulatorConfig.PageSize]);
            default:
                // In place: the contents stay; a page never allocated reads as zero (shmem), and is now up to date.
                return inode.PrepareForGuest(index);
        }
    }

    /// <summary>
    /// The folio of page <paramref name="index"/> is up to date ("prepared", 6.18 __kvm_gmem_get_pfn's is_prepared =
    /// folio_test_uptodate): zeroed by a guest or host fault, or populated, and not punched out since. Per 4 KiB
    /// page, as the kernel's order-0 folios (GmemInode.GetPageState).
    /// </summary>
    public static bool Prepared(GmemInode inode, ulong index) => inode.GetPageState(index) == PageState.Uptodate;

    /// <summary>
    /// Page <paramref name="index"/> was filled by an earlier populate and not punched out since: the arch state of
    /// an added page (TDX S-EPT entry, SNP RMP entry assigned), which the v8-era post_populate callbacks refuse.
    /// </summary>
    public static bool Populated(GmemInode inode, ulong index) => inode.IsPopulated(index);
}
