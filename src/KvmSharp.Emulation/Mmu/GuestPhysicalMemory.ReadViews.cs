// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Mmu;

/// <summary>
/// Read views of cached pages, for the interpreter's hot path (X86Emulator.WalkReuse.cs): a view is the
/// <see cref="CachedPage"/> a <see cref="Read"/> of that GFN would copy from, kept across instructions while it stays
/// the same one. The cache only loses entries all at once (<see cref="DropStale"/> when kvm->mmu_invalidate_seq moved,
/// or <see cref="Dispose"/>), and an entry is only ever replaced by one for the same memory (a read-only entry by a
/// writable one after a write fault in the same epoch). So while the epoch the view was taken in is still current,
/// reading through the view is exactly what <see cref="Read"/> does for a cached page: a copy, no fault-in, no side
/// effect. A page that is not cached (process_vm_readv memory, not yet faulted in) has no view.
/// </summary>
internal sealed partial class GuestPhysicalMemory
{
    /// <summary>A cached page and the invalidation epoch it was taken in (<see cref="IsCurrent"/>).</summary>
    internal readonly struct ReadView
    {
        private readonly HostMapping? _mapping;
        private readonly ulong _offset;
        private readonly nint _address;

        internal ReadView(HostMapping? mapping, ulong offset, nint address, long seq, ulong gfn)
        {
            Gfn = gfn;
            IsView = true;
            _mapping = mapping;
            _offset = offset;
            _address = address;
            Seq = seq;
        }

        /// <summary>False for <c>default</c>: no page.</summary>
        public bool IsView { get; }

        /// <summary>The (host-page-sized) frame number of the GPA the view was taken for, as the cache keys it.</summary>
        public ulong Gfn { get; }

        /// <summary>The kvm->mmu_invalidate_seq the view was taken at.</summary>
        public long Seq { get; }

        /// <summary>The page's bytes [offsetInPage, +length) (the range stays in the page).</summary>
        internal Span<byte> Span(ulong offsetInPage, int length) => _mapping is not null
            ? _mapping.GetSpan(_offset + offsetInPage, length)
            : HostMemory.UnownedSpan(_address + (nint)offsetInPage, length); // as CachedPage.Span
    }

    /// <summary>
    /// The view <see cref="Read"/> of <paramref name="gpa"/> would use right now without faulting (the same GPA, C-bit or
    /// shared bit included), or false when the page is not cached. Drops stale entries first, as every access does.
    /// </summary>
    public bool TryGetReadView(ulong gpa, out ReadView view)
    {
        DropStale();
        if (_pages.TryGetValue(gpa >> PageShift, out var page))
        {
            view = new ReadView(page.Mapping, page.Offset, page.Address, _seq, gpa >> PageShift);
            return true;
        }
        view = default;
        return false;
    }

    /// <summary>
    /// True while <paramref name="view"/> is still what <see cref="Read"/> would copy from: its epoch is the current
    /// kvm->mmu_invalidate_seq and the cache was not cleared since (mmu_invalidate_seq only grows; Dispose empties it).
    /// </summary>
    public bool IsCurrent(in ReadView view) =>
        view.IsView && view.Seq == _seq && _seq == _kvm.MmuInvalidateSeq && _pages.Count > 0;

    /// <summary>
    /// The little-endian quadword at <paramref name="gpa"/> (8-byte aligned, in the view's page) of a current view: what
    /// <see cref="Read"/> of those 8 bytes returns (a page-table entry).
    /// </summary>
    public static ulong ReadUInt64(in ReadView view, ulong gpa) =>
        BinaryPrimitives.ReadUInt64LittleEndian(view.Span(gpa & PageMask, 8));

    /// <summary>
    /// <see cref="Read"/> of <paramref name="data"/>.Length bytes at <paramref name="gpa"/> (in one page) through
    /// <paramref name="view"/> when the view is current and covers that page; false (nothing read) otherwise.
    /// </summary>
    public bool TryReadThrough(in ReadView view, ulong gpa, Span<byte> data)
    {
        if (view.Gfn != gpa >> PageShift || !IsCurrent(view)) return false;
        view.Span(gpa & PageMask, data.Length).CopyTo(data);
        return true;
    }
}
