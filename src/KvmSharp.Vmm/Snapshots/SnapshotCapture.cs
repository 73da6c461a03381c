// SPDX-License-Identifier: MIT
using System.Buffers;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Snapshots;

/// <summary>Copies the pages of guest memory that are not all zero.</summary>
internal static class SnapshotCapture
{
    // Read through one checked span per 256 KiB rather than per page: the check is per access.
    private const int ChunkPages = 64;

    /// <summary>
    /// Every page of <paramref name="memory"/> that holds a non-zero byte, read through GuestMemory's checked spans (a
    /// private page would throw there, never SIGBUS; the caller refuses private memory before). A guest_memfd page
    /// without a folio (mincore, <see cref="GuestMapping.GetResidentPages"/>) reads as zero and is skipped unread:
    /// reading it would allocate it. Host memory is read whole: an anonymous page that was swapped out is not resident
    /// yet holds data.
    /// </summary>
    public static PageSet Capture(GuestMemory memory)
    {
        int pageSize = (int)Layout.PageSize;
        var pages = new List<ulong>();
        var contents = new ArrayBufferWriter<byte>();
        ulong chunkBytes = (ulong)(ChunkPages * pageSize);
        Span<bool> resident = stackalloc bool[ChunkPages];
        for (ulong gpa = 0; gpa < memory.Size; gpa += chunkBytes)
        {
            int length = (int)Math.Min(chunkBytes, memory.Size - gpa);
            int chunkPages = length / pageSize;
            if (memory.Mapping is GuestMapping mapping) mapping.GetResidentPages(gpa, (ulong)length, resident);
            else resident.Fill(true);
            if (!resident[..chunkPages].Contains(true)) continue;
            ReadOnlySpan<byte> chunk = memory.GetReadOnlySpan(gpa, length);
            for (int offset = 0; offset < length; offset += pageSize)
            {
                if (!resident[offset / pageSize]) continue;
                ReadOnlySpan<byte> page = chunk.Slice(offset, pageSize);
                if (!page.ContainsAnyExcept((byte)0)) continue;
                pages.Add((gpa + (ulong)offset) / (ulong)pageSize);
                contents.Write(page);
            }
        }
        return new PageSet(pageSize, [.. pages], contents.WrittenSpan.ToArray());
    }
}
