// SPDX-License-Identifier: MIT
namespace KvmSharp;

public sealed partial class AnonymousMemory
{
    /// <summary>
    /// Sets the NUMA policy of [<paramref name="offset"/>, +<paramref name="length"/>) of this memory (mbind(2);
    /// page-aligned offset, length rounded up to whole pages): pages faulted in later are placed by it — what QEMU does
    /// with a memory backend's host-nodes/policy. Pages that exist stay where they are.
    /// </summary>
    /// <param name="offset">Offset of the first page.</param>
    /// <param name="length">Bytes from <paramref name="offset"/>.</param>
    /// <param name="policy">The mode.</param>
    /// <param name="nodes">The host nodes (none for Default and Local).</param>
    /// <param name="flags">Mode flags.</param>
    /// <exception cref="ObjectDisposedException">This memory was disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside this memory.</exception>
    /// <exception cref="Kernel.KvmException">The kernel refused: EINVAL for a mode with nodes it cannot take or nodes the task
    /// may not use.</exception>
    public void SetMemoryPolicy(ulong offset, ulong length, NumaPolicy policy, IReadOnlyList<int> nodes, NumaPolicyFlags flags = NumaPolicyFlags.None)
    {
        CheckPages(offset, length);
        MemoryPolicyCalls.Set(Kernel, Address + (nint)offset, length, policy, nodes, flags, Describe(offset));
    }

    /// <summary>The NUMA policy of the page at <paramref name="offset"/> (get_mempolicy(2) with MPOL_F_ADDR).</summary>
    /// <param name="offset">An offset into this memory.</param>
    /// <exception cref="ObjectDisposedException">This memory was disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is beyond this memory.</exception>
    /// <exception cref="Kernel.KvmException">The kernel refused.</exception>
    public MemoryPolicy GetMemoryPolicy(ulong offset)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset >= Length) throw new ArgumentOutOfRangeException(nameof(offset), $"0x{offset:X} is beyond the 0x{Length:X}-byte memory");
        return MemoryPolicyCalls.Get(Kernel, Address + (nint)offset, Describe(offset));
    }

    /// <summary>
    /// The host node of each page of [<paramref name="offset"/>, +<paramref name="length"/>) (move_pages(2) in query
    /// mode): -1 for a page never written (not allocated, or the shared zero page after a read). Nothing is faulted in.
    /// </summary>
    /// <param name="offset">Offset of the first page.</param>
    /// <param name="length">Bytes from <paramref name="offset"/>.</param>
    /// <param name="nodes">One entry per page.</param>
    /// <exception cref="ObjectDisposedException">This memory was disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside this memory.</exception>
    /// <exception cref="ArgumentException"><paramref name="nodes"/> is shorter than the range's page count.</exception>
    /// <exception cref="Kernel.KvmException">The kernel refused.</exception>
    public void GetPageNodes(ulong offset, ulong length, Span<int> nodes)
    {
        CheckPages(offset, length);
        MemoryPolicyCalls.GetPageNodes(Kernel, Address + (nint)offset, length, nodes, Describe(offset));
    }

    private void CheckPages(ulong offset, ulong length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset % (ulong)Environment.SystemPageSize != 0 || offset > Length || length > Length - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[0x{offset:X}, +0x{length:X}) is not a page-aligned range of the 0x{Length:X}-byte memory");
    }

    private string Describe(ulong offset) => $"anonymous memory at offset 0x{offset:X}";
}
