// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp;

/// <summary>
/// The pages of a memory slot that the guest wrote, one bit per page as KVM_GET_DIRTY_LOG returns them (bit i of
/// word i/64 is the slot's page i). Only guest writes are logged: the host's own writes through userspace_addr are
/// not. Page indices are relative to the slot; <see cref="GuestPhysicalAddressOf"/> turns one into a GPA.
/// </summary>
public sealed class DirtyPageLog
{
    private readonly ulong[] _words;

    internal DirtyPageLog(MemorySlot slot, ulong pageCount, ulong[] words)
    {
        Slot = slot;
        PageCount = pageCount;
        _words = words;
    }

    /// <summary>The slot this log was read from.</summary>
    public MemorySlot Slot { get; }

    /// <summary>Pages in the slot (the bitmap's meaningful bits).</summary>
    public ulong PageCount { get; }

    /// <summary>The raw bitmap words (the last one may carry unused high bits, always clear).</summary>
    public ReadOnlySpan<ulong> Words => _words;

    /// <summary>Whether the guest wrote slot page <paramref name="page"/>.</summary>
    public bool IsDirty(ulong page)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(page, PageCount);
        return (_words[page / 64] & (1UL << (int)(page % 64))) != 0;
    }

    /// <summary>How many pages are dirty.</summary>
    public ulong Count
    {
        get
        {
            ulong n = 0;
            foreach (ulong w in _words) n += (ulong)BitOperations.PopCount(w);
            return n;
        }
    }

    /// <summary>The dirty pages' indices within the slot, ascending.</summary>
    public IEnumerable<ulong> DirtyPages
    {
        get
        {
            for (int i = 0; i < _words.Length; i++)
            {
                ulong w = _words[i];
                while (w != 0)
                {
                    int bit = BitOperations.TrailingZeroCount(w);
                    yield return (ulong)i * 64 + (ulong)bit;
                    w &= w - 1;
                }
            }
        }
    }

    /// <summary>The guest physical address of slot page <paramref name="page"/>.</summary>
    public ulong GuestPhysicalAddressOf(ulong page)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(page, PageCount);
        return Slot.GuestPhysicalAddress + page * (ulong)Environment.SystemPageSize;
    }
}
