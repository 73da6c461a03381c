// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// A host mapping of a guest_memfd file. Every access is checked before memory is touched: out of the mapping →
/// <see cref="ArgumentOutOfRangeException"/>; beyond the file size or on a private page →
/// <see cref="GuestMemoryFaultException"/> (where the kernel would raise SIGBUS). Unmapped on Dispose.
/// </summary>
public sealed partial class GuestMapping : IDisposable
{
    private readonly MappedRegion _region;

    internal GuestMapping(GuestMemfd memfd, MappedRegion region, ulong fileOffset)
    {
        Memfd = memfd;
        _region = region;
        FileOffset = fileOffset;
    }

    /// <summary>
    /// The guest_memfd file this mapping shows; its size and shared/private state decide which accesses are allowed.
    /// </summary>
    public GuestMemfd Memfd { get; }

    /// <summary>The file offset that mapping offset 0 shows.</summary>
    public ulong FileOffset { get; }

    /// <summary>
    /// The mapping's length in bytes; mapping offset o shows file offset <see cref="FileOffset"/> + o. It may exceed
    /// the file size (accesses there are refused).
    /// </summary>
    public ulong Length => _region.Length;

    /// <summary>The mapping's address in this process (a memory slot's userspace_addr).</summary>
    public nint Address => _region.Address;

    /// <summary>Copies [offset, offset+destination.Length) of the mapping into <paramref name="destination"/>.</summary>
    public void Read(ulong offset, Span<byte> destination) => Access(offset, destination.Length).CopyTo(destination);

    /// <summary>Copies <paramref name="source"/> into the mapping at <paramref name="offset"/>.</summary>
    public void Write(ulong offset, ReadOnlySpan<byte> source) => source.CopyTo(Access(offset, source.Length));

    /// <summary>Sets [offset, offset+length) to <paramref name="value"/>; nothing is written when any of it fails.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the mapping.</exception>
    /// <exception cref="GuestMemoryFaultException">The range reaches beyond the file size or touches a private
    /// page.</exception>
    public void Fill(ulong offset, ulong length, byte value)
    {
        // The whole range is checked first: a fault in a later span must not leave the earlier ones written.
        if (offset > Length || length > Length - offset) ThrowOutOfRange(offset, length);
        if (Fault(offset, length) is GuestMemoryFault fault) ThrowFault(fault, offset, length);
        while (length > 0)
        {
            int chunk = (int)Math.Min(length, 1UL << 30);
            _region.GetSpan(offset, chunk).Fill(value);   // checked above, as a whole
            offset += (ulong)chunk;
            length -= (ulong)chunk;
        }
    }

    /// <summary>Reads an unmanaged value (host byte order) at byte <paramref name="offset"/> of the mapping.</summary>
    /// <exception cref="ArgumentOutOfRangeException">[offset, offset+sizeof(T)) is outside the mapping.</exception>
    /// <exception cref="GuestMemoryFaultException">The range reaches beyond the file size or touches a private
    /// page.</exception>
    public T Read<T>(ulong offset) where T : unmanaged => MemoryMarshal.Read<T>(Access(offset, Unsafe.SizeOf<T>()));

    /// <summary>Writes an unmanaged value (host byte order) at byte <paramref name="offset"/> of the mapping.</summary>
    /// <exception cref="ArgumentOutOfRangeException">[offset, offset+sizeof(T)) is outside the mapping.</exception>
    /// <exception cref="GuestMemoryFaultException">The range reaches beyond the file size or touches a private
    /// page.</exception>
    public void Write<T>(ulong offset, T value) where T : unmanaged => MemoryMarshal.Write(Access(offset, Unsafe.SizeOf<T>()), in value);

    /// <summary>
    /// A span over [offset, offset+length) after the fault checks. It is valid until this mapping is disposed or
    /// the pages are converted to private; do not keep it beyond the current operation.
    /// </summary>
    public Span<byte> GetSpan(ulong offset, int length) => Access(offset, length);

    /// <summary>
    /// Which pages of [<paramref name="offset"/>, +<paramref name="length"/>) have memory in the guest_memfd (mincore(2):
    /// a folio in the file's page cache, whether or not this mapping touched it): <paramref name="resident"/>[i] is
    /// true for page i. A page that is not resident reads as zero and costs nothing until touched, so a copier can
    /// skip it instead of allocating it by reading. Nothing is faulted in; private pages are answered too.
    /// </summary>
    public void GetResidentPages(ulong offset, ulong length, Span<bool> resident)
    {
        ulong page = (ulong)GuestMemfd.PageSize;
        if (offset % page != 0 || offset > Length || length > Length - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[0x{offset:X}, +0x{length:X}) is not a page-aligned range of the 0x{Length:X}-byte mapping");
        ulong pages = (length + page - 1) / page;
        if ((ulong)resident.Length < pages)
            throw new ArgumentException($"{resident.Length} entries for {pages} pages", nameof(resident));
        byte[] vector = System.Buffers.ArrayPool<byte>.Shared.Rent((int)pages);
        try
        {
            long rc = _region.Mincore(offset, length, vector.AsSpan(0, (int)pages));
            KvmCall.Check(rc, "mincore", $"[0x{offset:X}, +0x{length:X}) of the guest_memfd mapping at file offset 0x{FileOffset:X}");
            for (int i = 0; i < (int)pages; i++) resident[i] = (vector[i] & 1) != 0;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(vector);
        }
    }

    /// <summary>True when an access to [offset, offset+length) would be allowed now.</summary>
    public bool CanAccess(ulong offset, ulong length) =>
        offset <= Length && length <= Length - offset && Fault(offset, length) is null;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Access(ulong offset, int length)
    {
        if (length < 0 || offset > Length || (ulong)length > Length - offset) ThrowOutOfRange(offset, length);
        if (length > 0 && Fault((ulong)offset, (ulong)length) is GuestMemoryFault fault) ThrowFault(fault, offset, (ulong)length);
        return _region.GetSpan(offset, length);
    }

    private GuestMemoryFault? Fault(ulong offset, ulong length)
    {
        if (length == 0) return null;
        ulong fileStart = FileOffset + offset;
        ulong page = (ulong)GuestMemfd.PageSize;
        // kvm_gmem_fault_user_mapping (virt/kvm/guest_memfd.c): a page at or beyond i_size → SIGBUS. Page
        // granularity: the last byte's page must start below the file size.
        ulong lastPageStart = (fileStart + length - 1) / page * page;
        if (lastPageStart >= Memfd.Size) return GuestMemoryFault.BeyondEndOfFile;
        // Same function: a private page (no INIT_SHARED, or converted by KVM_SET_MEMORY_ATTRIBUTES2) → SIGBUS.
        if (!Memfd.IsShared(fileStart, length)) return GuestMemoryFault.PrivatePage;
        return null;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowFault(GuestMemoryFault fault, ulong offset, ulong length)
    {
        ulong fileStart = FileOffset + offset;
        ulong first = fault == GuestMemoryFault.BeyondEndOfFile ? Math.Max(fileStart, Memfd.Size) : fileStart;
        throw new GuestMemoryFaultException(fault, first, length, Memfd.Size);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOutOfRange(ulong offset, int length) =>
        throw new ArgumentOutOfRangeException(nameof(offset), $"[0x{offset:X}, +{length}) is outside the 0x{Length:X}-byte mapping");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOutOfRange(ulong offset, ulong length) =>
        throw new ArgumentOutOfRangeException(nameof(offset), $"[0x{offset:X}, +{length}) is outside the 0x{Length:X}-byte mapping");

    /// <summary>
    /// Unmaps the mapping (munmap); spans obtained from <see cref="GetSpan"/> must no longer be used.
    /// </summary>
    public void Dispose() => _region.Dispose();
}
