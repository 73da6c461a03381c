// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Memory;

/// <summary>
/// A managed array the GC never moves (pinned object heap), for ioctl structs that carry a user pointer the kernel
/// copies to or from (e.g. kvm_dirty_log.dirty_bitmap).
/// </summary>
public sealed class PinnedArray<T> where T : unmanaged
{
    public PinnedArray(int length)
    {
        Items = GC.AllocateArray<T>(length, pinned: true);
        // SAFETY: the array lives on the pinned object heap, so its address stays valid for the array's lifetime;
        // callers keep this object reachable until the ioctl that uses the address has returned.
        Address = length == 0 ? 0 : (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(Items, 0);
    }

    public T[] Items { get; }

    /// <summary>The address of element 0 (0 for an empty array).</summary>
    public ulong Address { get; }
}
