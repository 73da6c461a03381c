// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// The userfault bitmap of a memory slot — PROPOSAL: "[PATCH v3 04/15] KVM: Add common infrastructure for KVM
/// Userfaults" (unmerged). One bit per page of the slot (bit 0 = the slot's first page), as an array of 64-bit longs in
/// page-aligned anonymous memory this object owns and unmaps on Dispose. While a slot has KVM_MEM_USERFAULT
/// (<see cref="MemorySlot.EnableUserfault"/>), a vCPU access to a page whose bit is set exits with
/// <see cref="VcpuExit.MemoryFaultIsUserfault"/>. A slot keeps the memory mapped while the kernel may read it, even
/// after this object is disposed. Bits are changed atomically; <see cref="Clear(ulong)"/> is a full barrier, so the
/// page contents the VMM wrote before it are visible to the vCPU that sees the cleared bit (the store-release
/// Documentation/virt/kvm/api.rst asks for in [PATCH v3 15/15]).
/// </summary>
public sealed class UserfaultBitmap : IDisposable
{
    private readonly HostMapping _memory;
    // Set by Dispose: the mapping itself may stay until a slot lets go of it (its SafeHandle reference count).
    private bool _disposed;

    private UserfaultBitmap(HostMapping memory, ulong pageCount)
    {
        _memory = memory;
        PageCount = pageCount;
    }

    /// <summary>
    /// Allocates a bitmap for <paramref name="pageCount"/> pages, every bit clear or, with <paramref name="allSet"/>,
    /// every bit of those pages set (the bits beyond <paramref name="pageCount"/> in the last long stay clear).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="pageCount"/> is 0 or above 2^31 - 1 (KVM_MEM_MAX_NR_PAGES).</exception>
    /// <exception cref="KvmException">mmap failed.</exception>
    public static UserfaultBitmap Create(ulong pageCount, bool allSet = false)
    {
        if (pageCount == 0 || pageCount > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, "a slot has 1 to 2^31 - 1 pages (KVM_MEM_MAX_NR_PAGES)");
        ulong longs = (pageCount + 63) / 64;
        ulong page = (ulong)Environment.SystemPageSize;
        ulong bytes = (longs * sizeof(ulong) + page - 1) / page * page;
        long rc = HostMapping.MapAnonymous(bytes, out var memory);
        if (rc < 0) KvmCall.ThrowKvm(rc, "mmap", $"userfault bitmap of {pageCount} pages ({bytes} bytes, MAP_PRIVATE|MAP_ANONYMOUS)");
        var bitmap = new UserfaultBitmap(memory!, pageCount);
        if (allSet) bitmap.SetRange(0, pageCount);
        return bitmap;
    }

    /// <summary>A bitmap for a slot of <paramref name="slotSize"/> bytes (a whole number of pages).</summary>
    public static UserfaultBitmap ForSlotSize(ulong slotSize, bool allSet = false)
    {
        ulong page = (ulong)Environment.SystemPageSize;
        if (slotSize == 0 || slotSize % page != 0)
            throw new ArgumentOutOfRangeException(nameof(slotSize), slotSize, $"a slot size is a non-zero multiple of {page}");
        return Create(slotSize / page, allSet);
    }

    /// <summary>How many pages the bitmap describes.</summary>
    public ulong PageCount { get; }

    /// <summary>The address passed as kvm_userspace_memory_region2.userfault_bitmap.</summary>
    public ulong Address
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return (ulong)_memory.Address;
        }
    }

    /// <summary>The bytes KVM may read: DIV_ROUND_UP(pages, 64) longs (what kvm_set_memory_region checks with access_ok).</summary>
    public ulong ByteLength => (PageCount + 63) / 64 * sizeof(ulong);

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>The mapping a slot references while the kernel may read it.</summary>
    internal HostMapping Memory => _memory;

    /// <summary>Whether the bit of <paramref name="page"/> is set (the vCPU exits on its next fault there).</summary>
    public bool IsSet(ulong page)
    {
        ref ulong word = ref Word(page);
        return (Volatile.Read(ref word) & Bit(page)) != 0;
    }

    /// <summary>Sets the bit of <paramref name="page"/>. Returns whether it was clear before.</summary>
    public bool Set(ulong page)
    {
        ulong bit = Bit(page);
        return (Interlocked.Or(ref Word(page), bit) & bit) == 0;
    }

    /// <summary>
    /// Clears the bit of <paramref name="page"/> (an atomic, fully fenced and-not: the VMM's writes to the page happen
    /// before it). Returns whether it was set before.
    /// </summary>
    public bool Clear(ulong page)
    {
        ulong bit = Bit(page);
        return (Interlocked.And(ref Word(page), ~bit) & bit) != 0;
    }

    /// <summary>Sets the bits of pages [<paramref name="first"/>, +<paramref name="count"/>).</summary>
    public void SetRange(ulong first, ulong count) => ForRange(first, count, set: true);

    /// <summary>Clears the bits of pages [<paramref name="first"/>, +<paramref name="count"/>).</summary>
    public void ClearRange(ulong first, ulong count) => ForRange(first, count, set: false);

    /// <summary>Sets every page's bit.</summary>
    public void SetAll() => ForRange(0, PageCount, set: true);

    /// <summary>Clears every page's bit.</summary>
    public void ClearAll() => ForRange(0, PageCount, set: false);

    /// <summary>How many pages have their bit set.</summary>
    public ulong CountSet()
    {
        ulong n = 0;
        foreach (ulong w in Words()) n += (ulong)System.Numerics.BitOperations.PopCount(w);
        return n;
    }

    /// <summary>Unmaps the bitmap (deferred while a slot still uses it).</summary>
    public void Dispose()
    {
        _disposed = true;
        _memory.Dispose();
    }

    private void ForRange(ulong first, ulong count, bool set)
    {
        if (first > PageCount || count > PageCount - first)
            throw new ArgumentOutOfRangeException(nameof(count), $"pages [{first}, +{count}) are outside the {PageCount}-page bitmap");
        var words = Words();
        ulong page = first, end = first + count;
        while (page < end)
        {
            int index = (int)(page / 64);
            int shift = (int)(page % 64);
            ulong n = Math.Min(64 - (ulong)shift, end - page);
            ulong mask = (n == 64 ? ulong.MaxValue : ((1UL << (int)n) - 1)) << shift;
            if (set) Interlocked.Or(ref words[index], mask);
            else Interlocked.And(ref words[index], ~mask);
            page += n;
        }
    }

    private Span<ulong> Words()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return MemoryMarshal.Cast<byte, ulong>(_memory.GetSpan(0, (int)ByteLength));
    }

    private ref ulong Word(ulong page)
    {
        if (page >= PageCount)
            throw new ArgumentOutOfRangeException(nameof(page), page, $"the bitmap has {PageCount} pages");
        return ref Words()[(int)(page / 64)];
    }

    private static ulong Bit(ulong page) => 1UL << (int)(page % 64);
}
