// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// The NUMA syscalls for a range of this process's memory (a guest_memfd mapping, anonymous memory): the node masks,
/// policies and page lists are built in pinned arrays whose addresses the kernel reads and writes.
/// </summary>
internal static class MemoryPolicyCalls
{
    // A mask of 4096 nodes (64 longs) holds any nr_node_ids (MAX_NUMNODES is at most 1 << 10 on x86_64 and arm64).
    private const int MaskWords = 64;
    private const ulong MaskMaxNode = MaskWords * 64 + 1;

    public static void Set(IKernel kernel, nint address, ulong length, NumaPolicy policy, IReadOnlyList<int> nodes, NumaPolicyFlags flags, string what)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        int highest = -1;
        foreach (int node in nodes)
        {
            if (node < 0 || node >= MaskWords * 64)
                throw new ArgumentOutOfRangeException(nameof(nodes), node, $"node numbers are 0 … {MaskWords * 64 - 1}");
            highest = Math.Max(highest, node);
        }
        // get_nodes() uses maxnode - 1 bits: one more than the highest node's bit count.
        var mask = new PinnedArray<ulong>(highest / 64 + 1);
        foreach (int node in nodes) mask.Span[node / 64] |= 1UL << (node % 64);
        ulong maxnode = highest < 0 ? 0 : (ulong)highest + 2;
        long rc = kernel.Mbind(address, length, (int)policy | (int)flags, highest < 0 ? 0 : mask.Address, maxnode, 0);
        GC.KeepAlive(mask);
        KvmCall.Check(rc, "mbind", $"{Mempolicy.ModeName((int)policy)} nodes [{string.Join(", ", nodes)}] on {what}");
    }

    public static MemoryPolicy Get(IKernel kernel, nint address, string what)
    {
        var policy = new PinnedArray<int>(1);
        var mask = new PinnedArray<ulong>(MaskWords);
        long rc = kernel.GetMempolicy(policy.Address, mask.Address, MaskMaxNode, address, Mempolicy.MPOL_F_ADDR);
        KvmCall.Check(rc, "get_mempolicy", $"MPOL_F_ADDR of {what}");
        int value = policy.Span[0];
        return new MemoryPolicy((NumaPolicy)(value & ~Mempolicy.MPOL_MODE_FLAGS), (NumaPolicyFlags)(value & Mempolicy.MPOL_MODE_FLAGS), Nodes(mask.Span));
    }

    public static void GetPageNodes(IKernel kernel, nint address, ulong length, Span<int> nodes, string what)
    {
        ulong page = (ulong)Environment.SystemPageSize;
        ulong count = (length + page - 1) / page;
        if ((ulong)nodes.Length < count) throw new ArgumentException($"{nodes.Length} entries for {count} pages", nameof(nodes));
        var pages = new PinnedArray<ulong>((int)count);
        var status = new PinnedArray<int>((int)count);
        for (int i = 0; i < (int)count; i++) pages.Span[i] = (ulong)address + (ulong)i * page;
        long rc = kernel.MovePages(0, count, pages.Address, status.Address, 0);
        GC.KeepAlive(pages);
        KvmCall.Check(rc, "move_pages", $"{count} pages of {what}");
        // -ENOENT: no page there yet; -EFAULT: the shared zero page (read, never written). Neither has a node of its own.
        for (int i = 0; i < (int)count; i++) nodes[i] = status.Span[i] >= 0 ? status.Span[i] : -1;
    }

    /// <summary>get_mempolicy(MPOL_F_MEMS_ALLOWED): the nodes this task may allocate on.</summary>
    public static IReadOnlyList<int> Allowed(IKernel kernel)
    {
        var mask = new PinnedArray<ulong>(MaskWords);
        long rc = kernel.GetMempolicy(0, mask.Address, MaskMaxNode, 0, Mempolicy.MPOL_F_MEMS_ALLOWED);
        KvmCall.Check(rc, "get_mempolicy", "MPOL_F_MEMS_ALLOWED");
        return Nodes(mask.Span);
    }

    private static int[] Nodes(ReadOnlySpan<ulong> words)
    {
        var nodes = new List<int>();
        for (int i = 0; i < words.Length * 64; i++)
        {
            if ((words[i / 64] & (1UL << (i % 64))) != 0) nodes.Add(i);
        }
        return [.. nodes];
    }
}
