// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Conformance;

/// <summary>
/// The selftests' kvm_mbind / kvm_get_mempolicy / kvm_move_pages (tools/testing/selftests/kvm/include/numaif.h) on
/// the kernel under test: raw boundary calls whose user buffers are pinned arrays, the result returned as is.
/// </summary>
internal static class NumaCalls
{
    /// <summary>mbind(addr, len, mode, &amp;mask, maxnode, flags); a null <paramref name="mask"/> passes NULL.</summary>
    public static long Mbind(IKernel k, nint address, ulong length, int mode, ulong? mask, ulong maxnode, uint flags = 0)
    {
        var buffer = new PinnedArray<ulong>(1);
        buffer.Span[0] = mask ?? 0;
        long rc = k.Mbind(address, length, mode, mask is null ? 0 : buffer.Address, maxnode, flags);
        GC.KeepAlive(buffer);
        return rc;
    }

    /// <summary>get_mempolicy(&amp;policy, &amp;mask, maxnode, addr, flags) with a one-long mask (preset to <paramref name="mask"/>).</summary>
    public static long GetMempolicy(IKernel k, nint address, ulong flags, out int policy, ref ulong mask, ulong maxnode = 64)
    {
        var p = new PinnedArray<int>(1);
        var m = new PinnedArray<ulong>(1);
        p.Span[0] = -1;
        m.Span[0] = mask;
        long rc = k.GetMempolicy(p.Address, m.Address, maxnode, address, flags);
        policy = p.Span[0];
        mask = m.Span[0];
        return rc;
    }

    /// <summary>move_pages(0, n, pages, NULL, status, 0): the status of each page (preset to int.MinValue).</summary>
    public static long MovePages(IKernel k, IReadOnlyList<nint> pages, out int[] status, int flags = 0, int pid = 0)
    {
        var p = new PinnedArray<ulong>(pages.Count);
        var s = new PinnedArray<int>(pages.Count);
        for (int i = 0; i < pages.Count; i++)
        {
            p.Span[i] = (ulong)pages[i];
            s.Span[i] = int.MinValue;
        }
        long rc = k.MovePages(pid, (ulong)pages.Count, p.Address, s.Address, flags);
        GC.KeepAlive(p);
        status = s.Span.ToArray();
        return rc;
    }

    /// <summary>The selftests' is_multi_numa_node_system(), asked of the kernel under test (MPOL_F_MEMS_ALLOWED).</summary>
    public static IReadOnlyList<int> Nodes(IKernel k) => NumaNodes.Allowed(k);

    /// <summary>Skips the case on a single-node kernel, as the selftest returns early there.</summary>
    public static void RequireMultiNumaNode(IKernel k)
    {
        var nodes = Nodes(k);
        if (nodes.Count < 2)
            CaseContext.Skip($"one NUMA node (allowed nodes [{string.Join(", ", nodes)}]): the selftest returns early when !is_multi_numa_node_system()");
    }

    /// <summary>Mode bits as the uAPI spells them, for messages.</summary>
    public static string Mode(int mode) => Mempolicy.ModeName(mode & ~Mempolicy.MPOL_MODE_FLAGS) + ((mode & Mempolicy.MPOL_MODE_FLAGS) != 0 ? $"|0x{mode & Mempolicy.MPOL_MODE_FLAGS:X}" : "");
}
