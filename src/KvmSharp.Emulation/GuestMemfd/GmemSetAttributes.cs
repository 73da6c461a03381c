// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>
/// KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd fd: kvm_gmem_set_attributes / __kvm_gmem_set_attributes of
/// "guest_memfd: In-place conversion support" [PATCH v8 13-14/46] (unmerged).
/// </summary>
internal static class GmemSetAttributes
{
    public static long Ioctl(GmemFile f, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_memory_attributes2 attrs)) return Err.EFAULT;
        if (attrs.flags != 0) return Err.EINVAL;
        // Every reserved word must be zero (error_offset, an output, is not checked in v8).
        for (int i = 0; i < 11; i++)
        {
            if (attrs.reserved[i] != 0) return Err.EINVAL;
        }
        // Only VMs with private memory have anything to convert.
        if (!f.Kvm.Arch.HasPrivateMem(f.Kvm)) return Err.EINVAL;
        if ((attrs.attributes & ~KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0) return Err.EINVAL;
        if (attrs.size == 0 || attrs.offset + attrs.size < attrs.offset) return Err.EINVAL;
        ulong pageMask = (ulong)EmulatorConfig.PageSize - 1;
        if ((attrs.offset & pageMask) != 0 || (attrs.size & pageMask) != 0) return Err.EINVAL;
        ulong iSize = (ulong)f.GmemInode.Size;
        if (attrs.offset >= iSize || attrs.offset + attrs.size > iSize) return Err.EINVAL;

        int shift = EmulatorConfig.PageShift;
        long r = Set(f, attrs.offset >> shift, attrs.size >> shift, attrs.attributes, out ulong errIndex);
        if (r != 0)
        {
            // On failure only: error_offset = err_index << PAGE_SHIFT, copied back (EFAULT if that fails).
            attrs.error_offset = errIndex << shift;
            if (!arg.CopyToUser(attrs)) return Err.EFAULT;
        }
        return r;
    }

    /// <summary>
    /// __kvm_gmem_set_attributes under the invalidate lock: all-or-nothing. Returns 0 or -errno with the page that
    /// stopped it in <paramref name="errIndex"/>.
    /// </summary>
    private static long Set(GmemFile f, ulong start, ulong nrPages, ulong attributes, out ulong errIndex)
    {
        errIndex = start;
        var inode = f.GmemInode;
        ulong end = start + nrPages;
        // Range already entirely equal to the request → 0, no side effects.
        if (inode.Attributes.AllEqual(start, end, attributes)) return 0;

        bool toPrivate = (attributes & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0;
        if (toPrivate)
        {
            // unmap_mapping_pages(): host PTEs are zapped in every process before the safety check.
            f.Kvm.Kernel.UnmapMappingPages(f, start, end);
            // Safety check: a present folio with more references than the page cache's (a GUP long-term pin)
            // cannot become private → EAGAIN at max(start, folio->index); nothing changes.
            if (inode.FirstPinned(start, end) is ulong pinned)
            {
                errIndex = Math.Max(start, pinned);
                return Err.EAGAIN;
            }
        }
        // Point of no return: invalidate KVM mappings, (to shared) the arch invalidate hook, store, end.
        f.InvalidateGuestRange(start, end);
        inode.SetAttributes(start, end, attributes);
        f.Kvm.Kernel.ProtectHostMappings(f, start, end);
        return 0;
    }
}
