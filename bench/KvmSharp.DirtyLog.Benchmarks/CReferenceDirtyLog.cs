// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.DirtyLog.Benchmarks;

/// <summary>
/// The C reference (../c-reference-dirtylog/dirtylog_ref.c, built into libdirtylogref.so next to this assembly),
/// called in-process. One VM at a time (static state on the C side). Functions return 0 on success, -errno on a
/// failed syscall, or -100000 - exit_reason when KVM_RUN did not end in the guest's HLT.
/// </summary>
internal static unsafe partial class CReferenceDirtyLog
{
    private const string Library = "dirtylogref";

    static CReferenceDirtyLog() => NativeReference.ResolveNextToAssembly(typeof(CReferenceDirtyLog).Assembly, Library);

    [LibraryImport(Library, EntryPoint = "dl_ref_open")]
    private static partial long Open(ulong memorySize, int manualProtect, byte* code, ulong codeLength, ulong codeGpa);

    /// <summary>
    /// The VM of <see cref="DirtyLogVm"/>, with raw ioctls: KVM_CREATE_VM, [MANUAL_DIRTY_LOG_PROTECT2], anonymous
    /// memory with <paramref name="code"/> at <paramref name="codeGpa"/>, one logging slot at GPA 0, a real-mode vCPU.
    /// </summary>
    internal static void Open(ulong memorySize, bool manualProtect, ReadOnlySpan<byte> code, ulong codeGpa)
    {
        // SAFETY: code is pinned for the call; the C side copies exactly codeLength bytes into guest memory and
        // keeps no pointer to it.
        fixed (byte* p = code)
            Check(Open(memorySize, manualProtect ? 1 : 0, p, (ulong)code.Length, codeGpa), "dl_ref_open");
    }

    [LibraryImport(Library, EntryPoint = "dl_ref_close")]
    internal static partial void Close();

    /// <summary>KVM_GET_DIRTY_LOG of the whole slot into the C side's one bitmap.</summary>
    [LibraryImport(Library, EntryPoint = "dl_ref_get")]
    internal static partial long Get();

    [LibraryImport(Library, EntryPoint = "dl_ref_get_to")]
    private static partial long GetTo(ulong* bitmap);

    /// <summary>
    /// Probe only: KVM_GET_DIRTY_LOG of the C side's slot into <paramref name="bitmap"/> (e.g. the words of an SDK
    /// <see cref="DirtyPageLog"/>), to tell the cost of the buffer from the cost of the caller.
    /// </summary>
    internal static long GetTo(ReadOnlySpan<ulong> bitmap)
    {
        if ((ulong)bitmap.Length * 64 * (ulong)Environment.SystemPageSize < DirtyLogVm.MemorySize)
            throw new ArgumentException("the bitmap is smaller than the slot's", nameof(bitmap));
        // SAFETY: the span is a DirtyPageLog's bitmap on the pinned object heap (and pinned here anyway) with at
        // least one bit per page of the C side's slot, which is all the kernel writes; nothing keeps the pointer.
        fixed (ulong* p = bitmap)
            return GetTo(p);
    }

    /// <summary>KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG of the pages it reported.</summary>
    [LibraryImport(Library, EntryPoint = "dl_ref_get_clear")]
    internal static partial long GetClear();

    /// <summary>One KVM_RUN to the guest's next HLT.</summary>
    [LibraryImport(Library, EntryPoint = "dl_ref_run")]
    internal static partial long Run();

    /// <summary>KVM_RUN (the guest writes its pages), KVM_GET_DIRTY_LOG and, with clear != 0, KVM_CLEAR_DIRTY_LOG.</summary>
    [LibraryImport(Library, EntryPoint = "dl_ref_round")]
    internal static partial long Round(int clear);

    /// <summary>Dirty pages in the bitmap as the last GET left it.</summary>
    [LibraryImport(Library, EntryPoint = "dl_ref_count")]
    internal static partial long Count();

    [LibraryImport(Library, EntryPoint = "dl_ref_open_ring")]
    private static partial long OpenRing(ulong memorySize, uint ringBytes, byte* code, ulong codeLength, ulong codeGpa);

    /// <summary>The VM of <see cref="DirtyRingVm"/>: as <see cref="Open(ulong, bool, ReadOnlySpan{byte}, ulong)"/>, with an ACQ_REL dirty ring instead of manual protect.</summary>
    internal static void OpenRing(ulong memorySize, uint ringBytes, ReadOnlySpan<byte> code, ulong codeGpa)
    {
        // SAFETY: as in Open: code is pinned for the call and copied, never kept.
        fixed (byte* p = code)
            Check(OpenRing(memorySize, ringBytes, p, (ulong)code.Length, codeGpa), "dl_ref_open_ring");
    }

    /// <summary>Harvests the ring (acquire flags, copy slot and offset, release RESET); the count.</summary>
    [LibraryImport(Library, EntryPoint = "dl_ref_ring_harvest")]
    internal static partial long RingHarvest();

    /// <summary>Harvest, then KVM_RESET_DIRTY_RINGS; the count (or -EPROTO when the reset freed another number).</summary>
    [LibraryImport(Library, EntryPoint = "dl_ref_ring_poll")]
    internal static partial long RingPoll();

    /// <summary>KVM_RUN to the guest's HLT, harvest, reset; the harvested count.</summary>
    [LibraryImport(Library, EntryPoint = "dl_ref_ring_round")]
    internal static partial long RingRound();

    /// <summary>The page offset of entry <paramref name="index"/> of the last harvest.</summary>
    [LibraryImport(Library, EntryPoint = "dl_ref_ring_offset")]
    internal static partial long RingOffset(long index);

    internal static long Check(long rc, string what) =>
        rc >= 0 ? rc : throw new InvalidOperationException($"C reference {what} failed: {rc}");
}
