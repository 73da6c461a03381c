// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;

namespace KvmSharp.Benchmarks;

/// <summary>
/// One byte store per 4 KiB page through the SDK, as the C reference does it: the value depends on the page so
/// nothing is dead code, and the sum of stored values is returned.
/// </summary>
internal static class PageTouch
{
    private const ulong Page = 4096;
    private const int Chunk = 1 << 20;

    /// <summary>Every store through the checked accessor <see cref="GuestMapping.Write{T}"/>.</summary>
    // Inlined so each benchmark's loop is compiled in place, as it was before the loops were shared.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Checked(GuestMapping map, ulong bytes)
    {
        long sum = 0;
        for (ulong off = 0; off < bytes; off += Page)
        {
            byte v = (byte)((off >> 12) | 1);
            map.Write(off, v);
            sum += v;
        }
        return sum;
    }

    /// <summary>One <see cref="GuestMapping.GetSpan"/> per 1 MiB chunk, then plain stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Spans(GuestMapping map, ulong bytes)
    {
        long sum = 0;
        for (ulong chunk = 0; chunk < bytes; chunk += Chunk)
        {
            Span<byte> span = map.GetSpan(chunk, Chunk);
            for (int i = 0; i < span.Length; i += (int)Page)
            {
                byte v = (byte)(((chunk + (ulong)i) >> 12) | 1);
                span[i] = v;
                sum += v;
            }
        }
        return sum;
    }
}
