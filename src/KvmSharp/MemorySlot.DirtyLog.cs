// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>Dirty page logging of a slot created with <see cref="MemorySlotFlags.LogDirtyPages"/>.</summary>
public sealed partial class MemorySlot
{
    /// <summary>All ones, one bit per page of the slot: the mask of <see cref="ClearDirtyLog(ulong, ulong)"/>, made once.</summary>
    private PinnedArray<ulong>? _allPages;

    private ulong PageCount => Size / (ulong)Environment.SystemPageSize;

    private int BitmapWords => (int)((PageCount + 63) / 64);

    /// <summary>
    /// KVM_GET_DIRTY_LOG: the pages the guest wrote since the last call, in a new log (a new bitmap per call: see
    /// <see cref="GetDirtyLog(DirtyPageLog)"/> for polling without allocating). Without manual protect (the default)
    /// the kernel clears the log as it reads it; with <see cref="Vm.EnableManualDirtyLogProtect"/> the bits stay
    /// until <see cref="ClearDirtyLog(DirtyPageLog)"/>. A slot without LOG_DIRTY_PAGES has no log (ENOENT).
    /// </summary>
    public DirtyPageLog GetDirtyLog()
    {
        ObjectDisposedException.ThrowIf(_deleted, this);
        var log = new DirtyPageLog(this, PageCount);
        GetDirtyLog(log);
        return log;
    }

    /// <summary>
    /// An empty log for this slot (one pinned bitmap of <see cref="Size"/> / page size bits), to be filled again and
    /// again by <see cref="GetDirtyLog(DirtyPageLog)"/>: the allocation-free way to poll a large slot.
    /// </summary>
    public DirtyPageLog AllocateDirtyLog()
    {
        ObjectDisposedException.ThrowIf(_deleted, this);
        return new DirtyPageLog(this, PageCount);
    }

    /// <summary>
    /// KVM_GET_DIRTY_LOG into <paramref name="into"/>, a log of this slot (<see cref="AllocateDirtyLog"/>, or one an
    /// earlier <see cref="GetDirtyLog()"/> returned): the kernel overwrites its whole bitmap in place, so afterwards
    /// it holds exactly the current log, and nothing is allocated. Same kernel semantics as
    /// <see cref="GetDirtyLog()"/>. A log of another slot is refused (<see cref="ArgumentException"/>) before the
    /// kernel is asked.
    /// </summary>
    public void GetDirtyLog(DirtyPageLog into)
    {
        ArgumentNullException.ThrowIfNull(into);
        ObjectDisposedException.ThrowIf(_deleted, this);
        CheckOwnLog(into, nameof(into));
        var log = new kvm_dirty_log { slot = Slot, dirty_bitmap = into.BitmapAddress };
        long rc = Vm.Kernel.Ioctl(Vm.Handle, KvmIoctls.KVM_GET_DIRTY_LOG, KvmCall.Bytes(ref log));
        GC.KeepAlive(into.Bitmap);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_GET_DIRTY_LOG", DirtyLogRequest(rc));
    }

    /// <summary>
    /// KVM_CLEAR_DIRTY_LOG for exactly the pages <paramref name="pages"/> reports dirty (manual protect). The kernel
    /// reads the log's own bitmap: nothing is copied or allocated. A log of another slot is refused
    /// (<see cref="ArgumentException"/>).
    /// </summary>
    public void ClearDirtyLog(DirtyPageLog pages)
    {
        ArgumentNullException.ThrowIfNull(pages);
        ObjectDisposedException.ThrowIf(_deleted, this);
        CheckOwnLog(pages, nameof(pages));
        ClearDirtyLog(0, PageCount, pages.Bitmap);
    }

    /// <summary>
    /// KVM_CLEAR_DIRTY_LOG for every page of [<paramref name="firstPage"/>, +<paramref name="pageCount"/>): the
    /// kernel wants <paramref name="firstPage"/> a multiple of 64 and <paramref name="pageCount"/> a multiple of 64
    /// unless the range runs to the slot's end (EINVAL otherwise). A range beyond the slot is refused
    /// (<see cref="ArgumentOutOfRangeException"/>) before the kernel is asked. The all-ones mask is made once per slot.
    /// </summary>
    public void ClearDirtyLog(ulong firstPage, ulong pageCount)
    {
        ObjectDisposedException.ThrowIf(_deleted, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(firstPage, PageCount);
        if (pageCount > PageCount - firstPage)
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, $"slot {Slot} has {PageCount} pages; the range starts at page {firstPage}");
        if (pageCount > uint.MaxValue) throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, "kvm_clear_dirty_log.num_pages is 32 bits");
        // (pageCount + 63) / 64 words at most: no more than the slot's bitmap has.
        ClearDirtyLog(firstPage, pageCount, _allPages ??= AllOnes(BitmapWords));
    }

    private static PinnedArray<ulong> AllOnes(int words)
    {
        var mask = new PinnedArray<ulong>(words, DirtyPageLog.BitmapAlignment);
        mask.Span.Fill(ulong.MaxValue);
        return mask;
    }

    /// <summary>KVM_CLEAR_DIRTY_LOG of the pages whose bits are set in <paramref name="mask"/> (bit 0 = <paramref name="firstPage"/>).</summary>
    private void ClearDirtyLog(ulong firstPage, ulong pageCount, PinnedArray<ulong> mask)
    {
        var log = new kvm_clear_dirty_log { slot = Slot, num_pages = (uint)pageCount, first_page = firstPage, dirty_bitmap = mask.Address };
        long rc = Vm.Kernel.Ioctl(Vm.Handle, KvmIoctls.KVM_CLEAR_DIRTY_LOG, KvmCall.Bytes(ref log));
        GC.KeepAlive(mask);
        if (KvmCall.IsError(rc))
            KvmCall.ThrowKvm(rc, "KVM_CLEAR_DIRTY_LOG", $"slot={Slot} first_page={firstPage} num_pages={pageCount} (slot has {PageCount} pages); " + DirtyLogRequest(rc));
    }

    private void CheckOwnLog(DirtyPageLog log, string paramName)
    {
        if (log.Slot != this)
        {
            throw new ArgumentException(
                $"the dirty log belongs to memory slot {log.Slot.Slot} ({log.PageCount} pages), not to slot {Slot} ({PageCount} pages): " +
                "allocate one per slot with AllocateDirtyLog()", paramName);
        }
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
