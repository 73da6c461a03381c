// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Kernel.Mempolicy;

namespace KvmSharp.Emulation.Mm.Numa;

/// <summary>
/// move_pages(2) with nodes = NULL on the emulated task: mm/migrate.c kernel_move_pages → find_mm_struct →
/// do_pages_stat, 16 pointers at a time (DO_PAGES_STAT_CHUNK_NR), each answered by do_pages_stat_array. Caller holds
/// the kernel lock.
/// </summary>
internal static class MovePages
{
    private const int ChunkNr = 16;

    public static long Call(EmulatedKernel kernel, int pid, ulong count, ulong pages, ulong status, int flags)
    {
        if ((flags & ~(int)(MPOL_MF_MOVE | MPOL_MF_MOVE_ALL)) != 0) return Err.EINVAL;
        // MPOL_MF_MOVE_ALL needs CAP_SYS_NICE: the emulated task has it. Only this process exists here: any other pid
        // is "no such process" (find_task_by_vpid → NULL).
        if (pid != 0 && pid != Environment.ProcessId) return Err.ESRCH;
        var config = kernel.Config;
        Span<ulong> chunkPages = stackalloc ulong[ChunkNr];
        Span<int> chunkStatus = stackalloc int[ChunkNr];
        while (count != 0)
        {
            int n = (int)Math.Min(count, (ulong)ChunkNr);
            if (!UserMemory.CopyFromUser(config, pages, MemoryMarshal.AsBytes(chunkPages[..n]))) break;
            for (int i = 0; i < n; i++)
            {
                // do_pages_stat_array: vma_lookup (EFAULT without one), then the page's node or -errno.
                ulong address = chunkPages[i];
                var area = NumaArea.Lookup(kernel, address);
                chunkStatus[i] = area is null ? (int)Err.EFAULT : PageNodes.Status(kernel, area.Value, address);
            }
            if (!UserMemory.CopyToUser(config, status, MemoryMarshal.AsBytes(chunkStatus[..n]))) break;
            pages += (ulong)n * 8;
            status += (ulong)n * 4;
            count -= (ulong)n;
        }
        return count != 0 ? Err.EFAULT : 0;
    }
}
