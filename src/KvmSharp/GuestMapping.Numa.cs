// SPDX-License-Identifier: MIT
namespace KvmSharp;

public sealed partial class GuestMapping
{
    /// <summary>
    /// Sets the NUMA policy of the whole mapping (mbind(2)). On guest_memfd (Linux 6.19+) the policy belongs to the
    /// file range this mapping shows: every page allocated there later — by <see cref="GuestMemfd.Allocate(long, long)"/>, a host
    /// access or the guest — is placed by it, whichever mapping or memslot touches it. Pages that exist keep their
    /// node (guest_memfd memory is never migrated): set the policy before populating, or punch the range first.
    /// </summary>
    /// <param name="policy">The mode.</param>
    /// <param name="nodes">The host nodes (none for Default and Local).</param>
    /// <param name="flags">Mode flags.</param>
    /// <exception cref="Kernel.KvmException">The kernel refused: EINVAL for a mode with nodes it cannot take or nodes the
    /// task may not use, EFAULT when the mapping is gone.</exception>
    public void SetMemoryPolicy(NumaPolicy policy, IReadOnlyList<int> nodes, NumaPolicyFlags flags = NumaPolicyFlags.None) =>
        SetMemoryPolicy(0, Length, policy, nodes, flags);

    /// <summary>
    /// Sets the NUMA policy of the pages of [<paramref name="offset"/>, +<paramref name="length"/>) of this mapping
    /// (page-aligned offset; the length is rounded up to whole pages). See <see cref="SetMemoryPolicy(NumaPolicy, IReadOnlyList{int}, NumaPolicyFlags)"/>.
    /// </summary>
    /// <param name="offset">Mapping offset of the first page.</param>
    /// <param name="length">Bytes from <paramref name="offset"/>.</param>
    /// <param name="policy">The mode.</param>
    /// <param name="nodes">The host nodes (none for Default and Local).</param>
    /// <param name="flags">Mode flags.</param>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the mapping.</exception>
    /// <exception cref="Kernel.KvmException">The kernel refused (see the other overload).</exception>
    public void SetMemoryPolicy(ulong offset, ulong length, NumaPolicy policy, IReadOnlyList<int> nodes, NumaPolicyFlags flags = NumaPolicyFlags.None)
    {
        CheckRange(offset, length);
        MemoryPolicyCalls.Set(Memfd.Vm.Kernel, _region.Address + (nint)offset, length, policy, nodes, flags, Describe(offset));
    }

    /// <summary>
    /// The NUMA policy in force at <paramref name="offset"/> (get_mempolicy(2) with MPOL_F_ADDR): on guest_memfd
    /// (6.19+) the file's policy for that page, whichever mapping set it; <see cref="NumaPolicy.Default"/> when none.
    /// </summary>
    /// <param name="offset">A mapping offset.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is beyond the mapping.</exception>
    /// <exception cref="Kernel.KvmException">The kernel refused.</exception>
    public MemoryPolicy GetMemoryPolicy(ulong offset)
    {
        ObjectDisposedException.ThrowIf(_region.IsClosed, this);
        if (offset >= Length) throw new ArgumentOutOfRangeException(nameof(offset), $"0x{offset:X} is beyond the 0x{Length:X}-byte mapping");
        return MemoryPolicyCalls.Get(Memfd.Vm.Kernel, _region.Address + (nint)offset, Describe(offset));
    }

    /// <summary>
    /// The host node of each page of [<paramref name="offset"/>, +<paramref name="length"/>) as this mapping maps it
    /// (move_pages(2) in query mode): <paramref name="nodes"/>[i] for page i, -1 where this mapping has no page yet
    /// (not touched through it, or punched out since). Nothing is faulted in.
    /// </summary>
    /// <param name="offset">Mapping offset of the first page.</param>
    /// <param name="length">Bytes from <paramref name="offset"/>.</param>
    /// <param name="nodes">One entry per page.</param>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the mapping.</exception>
    /// <exception cref="ArgumentException"><paramref name="nodes"/> is shorter than the range's page count.</exception>
    /// <exception cref="Kernel.KvmException">The kernel refused.</exception>
    public void GetPageNodes(ulong offset, ulong length, Span<int> nodes)
    {
        CheckRange(offset, length);
        MemoryPolicyCalls.GetPageNodes(Memfd.Vm.Kernel, _region.Address + (nint)offset, length, nodes, Describe(offset));
    }

    private void CheckRange(ulong offset, ulong length)
    {
        ObjectDisposedException.ThrowIf(_region.IsClosed, this);
        if (offset % (ulong)GuestMemfd.PageSize != 0 || offset > Length || length > Length - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[0x{offset:X}, +0x{length:X}) is not a page-aligned range of the 0x{Length:X}-byte mapping");
    }

    private string Describe(ulong offset) => $"the guest_memfd mapping at file offset 0x{FileOffset + offset:X}";
}
