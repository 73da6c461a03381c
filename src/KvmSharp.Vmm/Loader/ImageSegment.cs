// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Loader;

/// <summary>A range of guest memory an image fills: <see cref="Data"/> at <see cref="Address"/>, then zeros up to <see cref="MemorySize"/>.</summary>
public sealed record ImageSegment(ulong Address, ReadOnlyMemory<byte> Data, ulong MemorySize)
{
    /// <summary>
    /// One past the last guest address the segment fills (<see cref="Address"/> + <see cref="MemorySize"/>).
    /// </summary>
    public ulong End => Address + MemorySize;
}
