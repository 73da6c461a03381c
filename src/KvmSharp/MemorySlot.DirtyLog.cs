// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>Dirty page logging of a slot created with <see cref="MemorySlotFlags.LogDirtyPages"/>.</summary>
public sealed partial class MemorySlot
{
    private ulong PageCount => Size / (ulong)Environment.SystemPageSize;

    /// <summary>
    /// KVM_GET_DIRTY_LOG: the pages the guest wrote since the last call. Without manual protect (the default) the
    /// kernel clears the log as it reads it; with <see cref="Vm.EnableManualDirtyLogProtect"/> the bits stay until
    /// <see cref="ClearDirtyLog(DirtyPageLog)"/>. A slot without LOG_DIRTY_PAGES has no log (ENOENT).
    /// </summary>
    public DirtyPageLog GetDirtyLog()
    {
        ObjectDisposedException.ThrowIf(_deleted, this);
        var bitmap = new PinnedArray<ulong>((int)((PageCount + 63) / 64));
        var log = new kvm_dirty_log { slot = Slot, dirty_bitmap = bitmap.Address };
        long rc = Vm.Kernel.Ioctl(Vm.Handle, KvmIoctls.KVM_GET_DIRTY_LOG, KvmCall.Bytes(ref log));
        GC.KeepAlive(bitmap);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_GET_DIRTY_LOG", DirtyLogRequest(rc));
        return new DirtyPageLog(this, PageCount, bitmap.Items);
    }

    /// <summary>KVM_CLEAR_DIRTY_LOG for exactly the pages <paramref name="pages"/> reported dirty (manual protect).</summary>
    public void ClearDirtyLog(DirtyPageLog pages)
    {
        ArgumentNullException.ThrowIfNull(pages);
        if (pages.Slot != this) throw new ArgumentException("the log was read from another memory slot", nameof(pages));
        ClearDirtyLog(0, PageCount, pages.Words);
    }

    /// <summary>
    /// KVM_CLEAR_DIRTY_LOG for every page of [<paramref name="firstPage"/>, +<paramref name="pageCount"/>): the
    /// kernel wants <paramref name="firstPage"/> a multiple of 64 and <paramref name="pageCount"/> a multiple of 64
    /// unless the range runs to the slot's end (EINVAL otherwise).
    /// </summary>
    public void ClearDirtyLog(ulong firstPage, ulong pageCount)
    {
        var all = new ulong[(pageCount + 63) / 64];
        Array.Fill(all, ulong.MaxValue);
        ClearDirtyLog(firstPage, pageCount, all);
    }

    private void ClearDirtyLog(ulong firstPage, ulong pageCount, ReadOnlySpan<ulong> mask)
    {
        ObjectDisposedException.ThrowIf(_deleted, this);
        if (pageCount > uint.MaxValue) throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, "kvm_clear_dirty_log.num_pages is 32 bits");
        var bitmap = new PinnedArray<ulong>(mask.Length);
        mask.CopyTo(bitmap.Items);
        var log = new kvm_clear_dirty_log { slot = Slot, num_pages = (uint)pageCount, first_page = firstPage, dirty_bitmap = bitmap.Address };
        long rc = Vm.Kernel.Ioctl(Vm.Handle, KvmIoctls.KVM_CLEAR_DIRTY_LOG, KvmCall.Bytes(ref log));
        GC.KeepAlive(bitmap);
        if (KvmCall.IsError(rc))
            KvmCall.ThrowKvm(rc, "KVM_CLEAR_DIRTY_LOG", $"slot={Slot} first_page={firstPage} num_pages={pageCount} (slot has {PageCount} pages); " + DirtyLogRequest(rc));
    }

    /// <summary>
    /// Turns dirty logging on or off for this slot (a flags-only KVM_SET_USER_MEMORY_REGION2). Turning it on starts
    /// an empty log (all set with KVM_DIRTY_LOG_INITIALLY_SET); turning it off drops the log.
    /// </summary>
    public void SetDirtyLogging(bool enabled)
    {
        ObjectDisposedException.ThrowIf(_deleted, this);
        var region = _region;
        region.flags = enabled ? region.flags | KvmConstants.KVM_MEM_LOG_DIRTY_PAGES : region.flags & ~KvmConstants.KVM_MEM_LOG_DIRTY_PAGES;
        Set(region);
        _region = region;
    }

    private string DirtyLogRequest(long rc) => rc == -(long)Errno.ENOENT
        ? $"slot {Slot} does not log dirty pages (created without MemorySlotFlags.LogDirtyPages)"
        : $"slot={Slot}";
}
