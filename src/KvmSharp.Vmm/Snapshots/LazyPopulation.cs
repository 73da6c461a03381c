// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Snapshots;

/// <summary>
/// A snapshot restored lazily into a guest_memfd (Firecracker's scheme for gmem snapshots, firecracker-microvm/firecracker
/// #5261): the memory was punched, every page the snapshot holds is marked in a userfault bitmap of the slot
/// (KVM_MEM_USERFAULT, "[PATCH v3 00/15] KVM: Introduce KVM Userfault"), and a page is written by write(2)
/// (GUEST_MEMFD_FLAG_WRITE, "[PATCH v7 1/2]") on its first KVM userfault exit or host access, then its bit cleared.
/// Zero pages are not marked: the punched file gives the guest zeros on its own. Once every marked page is written the
/// flag is turned off, so the slot faults as usual again. One lock serialises the run loop's exits and host accesses
/// from other threads, so a page is written once (with NO_DIRECT_MAP a second write(2) of a page would be EEXIST);
/// after Dispose every method is a no-op.
/// </summary>
internal sealed class LazyPopulation : IDisposable
{
    private readonly GuestMemfd _memfd;
    private readonly MemorySlot _slot;
    private readonly PageSet _pages;
    private readonly UserfaultBitmap _bitmap;
    private readonly ulong _pageSize;
    private readonly Lock _lock = new();
    private long _remaining;
    private bool _disposed;

    private LazyPopulation(GuestMemfd memfd, MemorySlot slot, PageSet pages, UserfaultBitmap bitmap)
    {
        _memfd = memfd;
        _slot = slot;
        _pages = pages;
        _bitmap = bitmap;
        _pageSize = (ulong)pages.PageSize;
        _remaining = pages.Count;
    }

    /// <summary>
    /// Marks the pages of <paramref name="pages"/> (page numbers of the slot, which starts at GPA 0) and turns
    /// KVM_MEM_USERFAULT on for <paramref name="slot"/>. Null when there is nothing to mark (an empty snapshot).
    /// </summary>
    public static LazyPopulation? Start(GuestMemfd memfd, MemorySlot slot, PageSet pages)
    {
        if (pages.Count == 0) return null;
        var bitmap = UserfaultBitmap.ForSlotSize(slot.Size);
        try
        {
            int i = 0;
            while (i < pages.Count)
            {
                int end = i + 1;
                while (end < pages.Count && pages.Pages[end] == pages.Pages[end - 1] + 1) end++;
                bitmap.SetRange(pages.Pages[i], (ulong)(end - i));
                i = end;
            }
            slot.EnableUserfault(bitmap);
            return new LazyPopulation(memfd, slot, pages, bitmap);
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
    }

    /// <summary>Pages still to be written.</summary>
    public long Remaining => _remaining;

    /// <summary>Pages written so far.</summary>
    public long Populated => _pages.Count - _remaining;

    /// <summary>
    /// A KVM userfault exit for [<paramref name="gpa"/>, +<paramref name="size"/>): writes its marked pages. False when
    /// no page of the range is marked (the exit is not ours to serve).
    /// </summary>
    public bool Serve(ulong gpa, ulong size)
    {
        lock (_lock)
        {
            if (_disposed || size == 0 || gpa / _pageSize >= _bitmap.PageCount) return false;
            ulong last = Math.Min((gpa + size - 1) / _pageSize, _bitmap.PageCount - 1);
            bool served = false;
            for (ulong page = gpa / _pageSize; page <= last; page++) served |= Populate(page);
            return served;
        }
    }

    /// <summary>Before a host access to [<paramref name="gpa"/>, +<paramref name="length"/>): writes its marked pages.</summary>
    public void EnsurePopulated(ulong gpa, ulong length)
    {
        lock (_lock)
        {
            if (_disposed || length == 0 || _remaining == 0) return;
            ulong first = gpa / _pageSize;
            if (first >= _bitmap.PageCount) return;
            ulong last = Math.Min((gpa + length - 1) / _pageSize, _bitmap.PageCount - 1);
            for (ulong page = first; page <= last; page++) Populate(page);
        }
    }

    /// <summary>Writes every page still marked (before the memory is captured or left as it is).</summary>
    public void PopulateAll()
    {
        lock (_lock)
        {
            if (_disposed) return;
            for (int i = 0; i < _pages.Count && _remaining > 0; i++) Populate(_pages.Pages[i]);
        }
    }

    /// <summary>Turns KVM_MEM_USERFAULT off (if the slot still exists) and frees the bitmap.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            if (_slot.Userfault is not null) _slot.DisableUserfault();
            _bitmap.Dispose();
        }
    }

    private bool Populate(ulong page)
    {
        if (!_bitmap.IsSet(page)) return false;
        int index = _pages.IndexOf(page);
        if (index >= 0) _memfd.WriteAll(checked((long)(page * _pageSize)), _pages.Page(index));
        // After the write: a vCPU that sees the bit clear must see the bytes (UserfaultBitmap.Clear is a full barrier).
        _bitmap.Clear(page);
        if (--_remaining == 0 && _slot.Userfault is not null) _slot.DisableUserfault();
        return true;
    }
}
