// SPDX-License-Identifier: MIT
using System.Collections;
using System.Numerics;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// The pages of a memory slot that the guest wrote, one bit per page as KVM_GET_DIRTY_LOG returns them (bit i of
/// word i/64 is the slot's page i). Only guest writes are logged: the host's own writes through userspace_addr are
/// not. Page indices are relative to the slot; <see cref="GuestPhysicalAddressOf"/> turns one into a GPA.
/// </summary>
/// <remarks>
/// <para>
/// A log is either a snapshot (<see cref="MemorySlot.GetDirtyLog()"/>, a new bitmap per call) or a reusable buffer:
/// <see cref="MemorySlot.AllocateDirtyLog"/> allocates one empty log for the slot, and
/// <see cref="MemorySlot.GetDirtyLog(DirtyPageLog)"/> overwrites it with the kernel's current log, allocating
/// nothing. That is the shape of a VMM that polls a large slot in a loop (live migration: 1 GiB is 262 144 pages, a
/// 32 KiB bitmap per poll):
/// </para>
/// <code>
/// var log = slot.AllocateDirtyLog();           // once: one pinned bitmap for the slot
/// while (copying)
/// {
///     slot.GetDirtyLog(log);                   // KVM_GET_DIRTY_LOG into log's bitmap
///     slot.ClearDirtyLog(log);                 // manual protect: KVM_CLEAR_DIRTY_LOG straight from log's bitmap
///     foreach (ulong page in log.DirtyPages)   // a struct enumerator: no allocation either
///         Send(page);
/// }
/// </code>
/// <para>
/// With manual protect, clear before copying: a page the guest writes after its bit was cleared is logged again,
/// while a write between the copy and a later clear would be lost.
/// </para>
/// <para>
/// The bitmap lives on the pinned object heap, so the kernel writes it in place, and starts on a 64-byte boundary
/// (<see cref="BitmapAlignment"/>): at some page offsets the kernel's copy of a large bitmap is ten times slower
/// (see <see cref="PinnedArray{T}"/>). A log is not synchronized: refill it from one thread at a time, and not while
/// something is enumerating it (everything here reads the bitmap as it is at that moment).
/// </para>
/// </remarks>
public sealed class DirtyPageLog
{
    /// <summary>The bitmap's alignment in bytes (also of the SDK's KVM_CLEAR_DIRTY_LOG masks).</summary>
    internal const int BitmapAlignment = 64;

    private readonly PinnedArray<ulong> _bitmap;

    internal DirtyPageLog(MemorySlot slot, ulong pageCount)
    {
        Slot = slot;
        PageCount = pageCount;
        _bitmap = new PinnedArray<ulong>(checked((int)((pageCount + 63) / 64)), BitmapAlignment);
    }

    /// <summary>The slot this log belongs to: only that slot reads into it or clears from it.</summary>
    public MemorySlot Slot { get; }

    /// <summary>Pages in the slot (the bitmap's meaningful bits).</summary>
    public ulong PageCount { get; }

    /// <summary>The raw bitmap words (the last one may carry unused high bits, always clear).</summary>
    public ReadOnlySpan<ulong> Words => _bitmap.Span;

    /// <summary>The bitmap's address, for the kvm_dirty_log / kvm_clear_dirty_log user pointer (0 for an empty slot).</summary>
    internal ulong BitmapAddress => _bitmap.Address;

    /// <summary>The bitmap itself: the caller keeps this reachable until the ioctl using <see cref="BitmapAddress"/> returns.</summary>
    internal PinnedArray<ulong> Bitmap => _bitmap;

    /// <summary>Whether the guest wrote slot page <paramref name="page"/>.</summary>
    public bool IsDirty(ulong page)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(page, PageCount);
        return (_bitmap.Span[(int)(page / 64)] & (1UL << (int)(page % 64))) != 0;
    }

    /// <summary>How many pages are dirty.</summary>
    public ulong Count
    {
        get
        {
            ulong n = 0;
            foreach (ulong w in _bitmap.Span) n += (ulong)BitOperations.PopCount(w);
            return n;
        }
    }

    /// <summary>
    /// The dirty pages' indices within the slot, ascending. <c>foreach</c> over it allocates nothing (a struct
    /// enumerator); it is also an <see cref="IEnumerable{T}"/> for LINQ (which boxes it).
    /// </summary>
    public DirtyPageIndices DirtyPages => new(_bitmap.Items, _bitmap.Offset, _bitmap.Length);

    /// <summary>The guest physical address of slot page <paramref name="page"/>.</summary>
    public ulong GuestPhysicalAddressOf(ulong page)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(page, PageCount);
        return Slot.GuestPhysicalAddress + page * (ulong)Environment.SystemPageSize;
    }
}

/// <summary>
/// The set bits of a dirty log's bitmap as page indices, ascending (<see cref="DirtyPageLog.DirtyPages"/>). Each
/// word is read when the enumerator reaches it.
/// </summary>
public readonly struct DirtyPageIndices : IEnumerable<ulong>
{
    private readonly ulong[] _array;
    private readonly int _start;
    private readonly int _count;

    /// <summary>The bitmap is <paramref name="count"/> words of <paramref name="array"/> from <paramref name="start"/>.</summary>
    internal DirtyPageIndices(ulong[] array, int start, int count)
    {
        _array = array;
        _start = start;
        _count = count;
    }

    /// <summary>The allocation-free enumerator <c>foreach</c> uses.</summary>
    public Enumerator GetEnumerator() => new(_array, _start, _count);

    IEnumerator<ulong> IEnumerable<ulong>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Walks the bitmap word by word, one set bit at a time (trailing-zero count, then clear that bit).</summary>
    public struct Enumerator : IEnumerator<ulong>
    {
        private readonly ulong[] _array;
        private readonly int _start;
        private readonly int _count;
        private int _index;
        private ulong _word;

        internal Enumerator(ulong[]? array, int start, int count)
        {
            _array = array ?? [];
            _start = start;
            _count = array is null ? 0 : count;
            _index = -1;
            _word = 0;
            Current = 0;
        }

        /// <summary>The current dirty page's index within the slot.</summary>
        public ulong Current { get; private set; }

        readonly object IEnumerator.Current => Current;

        /// <summary>Advances to the next set bit; false once the bitmap is exhausted.</summary>
        public bool MoveNext()
        {
            while (_word == 0)
            {
                if (++_index >= _count)
                {
                    _index = _count;
                    return false;
                }
                _word = _array[_start + _index];
            }
            Current = (ulong)_index * 64 + (ulong)BitOperations.TrailingZeroCount(_word);
            _word &= _word - 1;
            return true;
        }

        /// <summary>Restarts the walk from the first word of the bitmap.</summary>
        public void Reset()
        {
            _index = -1;
            _word = 0;
            Current = 0;
        }

        /// <summary>Does nothing: the enumerator holds no resources.</summary>
        public readonly void Dispose()
        {
        }
    }
}
