// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;
using static KvmSharp.Kernel.Mempolicy;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The NUMA boundary itself (mbind, get_mempolicy, move_pages in query mode) on ordinary anonymous memory mapped
/// through the kernel under test: the argument checks of mm/mempolicy.c and mm/migrate.c in their order, the default
/// policy of a new mapping, and which pages have a node. They run on the real kernel, so the emulator's checks are
/// held to it; expectations about nodes are computed from the kernel's own allowed nodes, not assumed to be [0].
/// </summary>
public static class MempolicyRules
{
    private static int Ps => PageSize;

    [ConformanceCase("mm/mempolicy.c kernel_mbind → sanitize_mpol_flags, do_mbind: a mode of MPOL_MAX or more, STATIC|RELATIVE, NUMA_BALANCING outside BIND/PREFERRED_MANY, flags outside MPOL_MF_VALID, an unaligned start or a wrapping end are EINVAL; a zero (or PAGE_ALIGN-wrapped) length is 0")]
    public static void mbind_rejects_bad_modes_and_flags(CaseContext ctx)
    {
        var k = ctx.Kernel;
        using var mem = Anonymous(k, 4);
        nint a = mem.Address;
        ulong node = (ulong)1 << NumaCalls.Nodes(k)[0];
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, (ulong)Ps, 999, node, 64), "mode 999");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, (ulong)Ps, MPOL_MAX, node, 64), "MPOL_MAX");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, (ulong)Ps, 0x10000 | MPOL_BIND, node, 64), "a mode bit above the mode flags");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, (ulong)Ps, -1, node, 64), "mode -1");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, (ulong)Ps, MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES, node, 64), "STATIC|RELATIVE");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, (ulong)Ps, MPOL_INTERLEAVE | MPOL_F_NUMA_BALANCING, node, 64), "INTERLEAVE|NUMA_BALANCING");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, (ulong)Ps, MPOL_PREFERRED | MPOL_F_NUMA_BALANCING, node, 64), "PREFERRED|NUMA_BALANCING");
        Assert.Equal(0, NumaCalls.Mbind(k, a, (ulong)Ps, MPOL_BIND | MPOL_F_NUMA_BALANCING, node, 64));
        Assert.Equal(0, NumaCalls.Mbind(k, a, (ulong)Ps, MPOL_PREFERRED_MANY | MPOL_F_NUMA_BALANCING, node, 64));
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, (ulong)Ps, MPOL_BIND, node, 64, MPOL_MF_LAZY), "MPOL_MF_LAZY");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a + 1, (ulong)Ps, MPOL_BIND, node, 64), "unaligned start");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, (ulong)-Ps, MPOL_BIND, node, 64), "start + len wraps");
        Assert.Equal(0, NumaCalls.Mbind(k, a, 0, MPOL_BIND, node, 64));
        // PAGE_ALIGN(ULONG_MAX) is 0: end == start, success without looking at the range.
        Assert.Equal(0, NumaCalls.Mbind(k, a, ulong.MaxValue, MPOL_BIND, node, 64));
        // The mode is checked before the node mask is read: a bad mask pointer with a bad mode is still EINVAL.
        AssertErrno(Errno.EINVAL, k.Mbind(a, (ulong)Ps, 999, 8, 64, 0), "bad mode, bad mask pointer");
        AssertErrno(Errno.EFAULT, k.Mbind(a, (ulong)Ps, MPOL_BIND, 8, 64, 0), "bad mask pointer");
        // get_nodes runs before do_mbind's checks: a bad mask pointer beats a zero length.
        AssertErrno(Errno.EFAULT, k.Mbind(a, 0, MPOL_BIND, 8, 64, 0), "bad mask pointer, zero length");
        // The failed calls changed nothing: the page keeps the last policy set.
        ulong mask = 0;
        Assert.Equal(0, NumaCalls.GetMempolicy(k, a, MPOL_F_ADDR, out int policy, ref mask));
        Assert.Equal((MPOL_PREFERRED_MANY | MPOL_F_NUMA_BALANCING, node), (policy, mask));
        AssertDefault(k, a + Ps);
    }

    [ConformanceCase("mm/mempolicy.c get_nodes, mpol_new, mpol_set_nodemask: maxnode counts one bit more than it uses; DEFAULT and LOCAL take no nodes, PREFERRED with none is LOCAL, other modes need one; nodes the task may not use (not in cpuset ∩ N_MEMORY) or at or above MAX_NUMNODES are EINVAL unless another node remains (PREFERRED keeps the first)")]
    public static void mbind_node_mask_rules(CaseContext ctx)
    {
        var k = ctx.Kernel;
        var nodes = NumaCalls.Nodes(k);
        int first = nodes[0];
        int absent = nodes[^1] + 1;
        ulong one = 1UL << first;
        using var mem = Anonymous(k, 2);
        nint a = mem.Address;
        ulong ps = (ulong)Ps;
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, ps, MPOL_DEFAULT, one, 64), "DEFAULT with a node");
        Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_DEFAULT, null, 0));
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, ps, MPOL_LOCAL, one, 64), "LOCAL with a node");
        Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_LOCAL, 0, 64));
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, ps, MPOL_INTERLEAVE, 0, 64), "INTERLEAVE without nodes");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, ps, MPOL_BIND, null, 64), "BIND with a NULL mask");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, ps, MPOL_PREFERRED | MPOL_F_STATIC_NODES, 0, 64), "PREFERRED|STATIC without nodes");
        Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_PREFERRED, 0, 64));
        ulong mask = ulong.MaxValue;
        Assert.Equal(0, NumaCalls.GetMempolicy(k, a, MPOL_F_ADDR, out int policy, ref mask));
        Assert.Equal((MPOL_LOCAL, 0UL), (policy, mask));
        if (absent < 64)
        {
            AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, ps, MPOL_BIND, 1UL << absent, 64), $"BIND to node {absent}, which has no memory");
            // maxnode - 1 bits: maxnode = absent + 1 still reads the absent node's bit, maxnode = absent does not.
            Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_BIND, one | (1UL << absent), 64));
            AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, ps, MPOL_BIND, 1UL << absent, (ulong)absent + 2), "BIND, node bit inside maxnode - 1");
            Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_PREFERRED, one | (1UL << absent), 64));
        }
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, ps, MPOL_BIND, one, (ulong)first + 1), "maxnode leaving out the node's bit");
        Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_BIND, one, (ulong)first + 2));
        mask = 0;
        Assert.Equal(0, NumaCalls.GetMempolicy(k, a, MPOL_F_ADDR, out policy, ref mask));
        Assert.Equal((MPOL_BIND, one), (policy, mask));
        // More than a page of bits is EINVAL before the mask is read (a NULL mask is no mask at all).
        AssertErrno(Errno.EINVAL, k.Mbind(a, ps, MPOL_BIND, 8, (ulong)Ps * 8 + 2, 0), "maxnode beyond a page of bits");
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, ps, MPOL_BIND, null, (ulong)Ps * 8 + 2), "NULL mask, maxnode beyond a page");
        // A node at or above MAX_NUMNODES: PREFERRED would keep node `first`, but get_nodes refuses the bit. 4096
        // bits cover any MAX_NUMNODES up to 4096 (this host: 1024).
        var big = new PinnedArray<ulong>(65);
        big.Span[0] = one;
        big.Span[64] = 1;
        AssertErrno(Errno.EINVAL, k.Mbind(a, ps, MPOL_PREFERRED, big.Address, 64 * 64 + 2, 0), "node 4096");
        GC.KeepAlive(big);
    }

    [ConformanceCase("mm/mempolicy.c MPOL_F_RELATIVE_NODES (mpol_relative_nodemask folds user nodes onto the allowed ones) and MPOL_F_NUMA_BALANCING: get_mempolicy reports the mode with its mode flags and the user's own mask; STATIC nodes outside the allowed ones are EINVAL")]
    public static void mempolicy_mode_flags_are_reported(CaseContext ctx)
    {
        var k = ctx.Kernel;
        var nodes = NumaCalls.Nodes(k);
        using var mem = Anonymous(k, 1);
        nint a = mem.Address;
        ulong ps = (ulong)Ps;
        int absent = nodes[^1] + 1;
        // Node `absent` relative to the allowed nodes is allowed[absent % count].
        Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_BIND | MPOL_F_RELATIVE_NODES, 1UL << absent, 64));
        ulong mask = 0;
        Assert.Equal(0, NumaCalls.GetMempolicy(k, a, MPOL_F_ADDR, out int policy, ref mask));
        Assert.Equal((MPOL_BIND | MPOL_F_RELATIVE_NODES, 1UL << absent), (policy, mask));
        AssertErrno(Errno.EINVAL, NumaCalls.Mbind(k, a, ps, MPOL_BIND | MPOL_F_STATIC_NODES, 1UL << absent, 64), "STATIC to a node without memory");
        Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_BIND | MPOL_F_NUMA_BALANCING, 1UL << nodes[0], 64));
        Assert.Equal(0, NumaCalls.GetMempolicy(k, a, MPOL_F_ADDR, out policy, ref mask));
        Assert.Equal((MPOL_BIND | MPOL_F_NUMA_BALANCING, 1UL << nodes[0]), (policy, mask));
    }

    [ConformanceCase("mm/mempolicy.c kernel_get_mempolicy, do_get_mempolicy, copy_nodes_to_user: a new mapping has MPOL_DEFAULT and no nodes; flags outside NODE|ADDR|MEMS_ALLOWED, an address without MPOL_F_ADDR, MEMS_ALLOWED with NODE or ADDR, MPOL_F_NODE without an interleaving task policy, a mask shorter than nr_node_ids and more than a page of mask are EINVAL; no VMA at the address or an unwritable pointer is EFAULT")]
    public static void get_mempolicy_rules(CaseContext ctx)
    {
        var k = ctx.Kernel;
        var nodes = NumaCalls.Nodes(k);
        using var mem = new Pages(k, 2);
        nint a = mem.Address;
        nint hole = mem.Unmap(1);
        AssertDefault(k, a);
        ulong mask = 0;
        AssertErrno(Errno.EINVAL, NumaCalls.GetMempolicy(k, a, 8, out _, ref mask), "flags 8");
        AssertErrno(Errno.EINVAL, NumaCalls.GetMempolicy(k, a, 0, out _, ref mask), "an address without MPOL_F_ADDR");
        AssertErrno(Errno.EINVAL, NumaCalls.GetMempolicy(k, 0, MPOL_F_MEMS_ALLOWED | MPOL_F_NODE, out _, ref mask), "MEMS_ALLOWED|NODE");
        AssertErrno(Errno.EINVAL, NumaCalls.GetMempolicy(k, a, MPOL_F_MEMS_ALLOWED | MPOL_F_ADDR, out _, ref mask), "MEMS_ALLOWED|ADDR");
        AssertErrno(Errno.EINVAL, NumaCalls.GetMempolicy(k, 0, MPOL_F_NODE, out _, ref mask), "MPOL_F_NODE of a default task policy");
        AssertErrno(Errno.EINVAL, NumaCalls.GetMempolicy(k, a, MPOL_F_ADDR, out _, ref mask, maxnode: 0), "maxnode 0 with a mask");
        // copy_nodes_to_user: ALIGN(maxnode - 1, 64) / 8 bytes; more than a page is EINVAL (with the mask cleared
        // beyond nr_node_ids otherwise, which a one-long buffer cannot take: not tried).
        AssertErrno(Errno.EINVAL, k.GetMempolicy(0, 8, (ulong)Ps * 8 + 65, a, MPOL_F_ADDR), "a mask of more than a page");
        // The task policy (no MPOL_F_ADDR, address 0): MPOL_DEFAULT.
        mask = ulong.MaxValue;
        Assert.Equal(0, NumaCalls.GetMempolicy(k, 0, 0, out int policy, ref mask));
        Assert.Equal((MPOL_DEFAULT, 0UL), (policy, mask));
        // MEMS_ALLOWED: policy 0 and the allowed nodes (what NumaNodes.Allowed read).
        mask = 0;
        Assert.Equal(0, NumaCalls.GetMempolicy(k, 0, MPOL_F_MEMS_ALLOWED, out policy, ref mask));
        Assert.Equal(0, policy);
        Assert.Equal(nodes.Where(n => n < 64).Aggregate(0UL, (m, n) => m | (1UL << n)), mask);
        // NULL policy and mask pointers: nothing written, success.
        Assert.Equal(0, k.GetMempolicy(0, 0, 0, a, MPOL_F_ADDR));
        AssertErrno(Errno.EFAULT, k.GetMempolicy(8, 0, 0, a, MPOL_F_ADDR), "unwritable policy pointer");
        AssertErrno(Errno.EFAULT, k.GetMempolicy(0, 8, 64, a, MPOL_F_ADDR), "unwritable mask pointer");
        AssertErrno(Errno.EFAULT, NumaCalls.GetMempolicy(k, hole, MPOL_F_ADDR, out _, ref mask), "no VMA at the address");
        // MPOL_F_NODE|MPOL_F_ADDR: the node of the page, faulted in for reading when it was not there.
        Assert.Equal(0, NumaCalls.GetMempolicy(k, a + 5, MPOL_F_NODE | MPOL_F_ADDR, out policy, ref mask));
        Assert.Contains(policy, nodes);
    }

    [ConformanceCase("mm/migrate.c kernel_move_pages → do_pages_stat (16 at a time) → do_pages_stat_array: per page the node of a written page, -ENOENT for a page never touched, -EFAULT for the shared zero page (read only) and for an address without a VMA; flags outside MOVE|MOVE_ALL EINVAL, an unknown pid ESRCH, unreadable pages or unwritable status EFAULT")]
    public static void move_pages_query_rules(CaseContext ctx)
    {
        var k = ctx.Kernel;
        var nodes = NumaCalls.Nodes(k);
        using var mem = new Pages(k, 20);
        nint a = mem.Address;
        mem.Touch(1);                                 // page 1 written
        mem.Read(2);                                  // page 2 read: the zero page
        nint hole = mem.Unmap(3);                     // page 3: no VMA
        for (int p = 4; p < 20; p++) mem.Touch(p);    // pages 4..19 written
        var pages = new List<nint> { a, a + Ps + 123, a + 2 * Ps, hole };
        for (int p = 4; p < 20; p++) pages.Add(a + p * Ps);
        Assert.Equal(0, NumaCalls.MovePages(k, pages, out int[] status));
        Assert.Equal(-(int)Errno.ENOENT, status[0]);
        Assert.Contains(status[1], nodes);
        Assert.Equal(-(int)Errno.EFAULT, status[2]);
        Assert.Equal(-(int)Errno.EFAULT, status[3]);
        for (int i = 4; i < pages.Count; i++) Assert.Contains(status[i], nodes);

        AssertErrno(Errno.EINVAL, NumaCalls.MovePages(k, pages, out _, flags: 1), "flags MPOL_MF_STRICT");
        AssertErrno(Errno.EINVAL, NumaCalls.MovePages(k, pages, out _, flags: 8), "flags 8");
        Assert.Equal(0, NumaCalls.MovePages(k, pages, out _, flags: (int)MPOL_MF_MOVE));
        AssertErrno(Errno.ESRCH, NumaCalls.MovePages(k, pages, out _, pid: int.MaxValue), "no such pid");
        Assert.Equal(0, k.MovePages(0, 0, 0, 0, 0));
        AssertErrno(Errno.EFAULT, k.MovePages(0, 1, 8, 0, 0), "unreadable page list");
        var one = new PinnedArray<ulong>(1);
        one.Span[0] = (ulong)(a + Ps);
        AssertErrno(Errno.EFAULT, k.MovePages(0, 1, one.Address, 8, 0), "unwritable status");
        GC.KeepAlive(one);
        // The pid of this process is this process.
        Assert.Equal(0, NumaCalls.MovePages(k, pages, out status, pid: Environment.ProcessId));
        Assert.Contains(status[1], nodes);
    }

    [ConformanceCase("mm/mempolicy.c do_mbind → queue_pages_range: a hole at the head, middle or tail of the range is EFAULT, except for MPOL_DEFAULT (MPOL_MF_DISCONTIG_OK) unless the whole range is a hole; MPOL_MF_STRICT without MOVE is EIO when a present page is off the mask (always, for MPOL_LOCAL's empty mask), and nothing changes")]
    public static void mbind_holes_and_strict(CaseContext ctx)
    {
        var k = ctx.Kernel;
        using var mem = new Pages(k, 3);
        nint a = mem.Address;
        ulong ps = (ulong)Ps;
        mem.Touch(0);
        Assert.Equal(0, NumaCalls.MovePages(k, [a], out int[] status));
        ulong here = 1UL << status[0];
        // STRICT: the page is on a node of the mask → 0; LOCAL's mask is empty → every present page is off it.
        Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_BIND, here, 64, MPOL_MF_STRICT));
        Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_DEFAULT, null, 0));
        AssertErrno(Errno.EIO, NumaCalls.Mbind(k, a, ps, MPOL_LOCAL, null, 0, MPOL_MF_STRICT), "LOCAL|STRICT over a present page");
        AssertDefault(k, a);
        // A page never touched is not checked.
        Assert.Equal(0, NumaCalls.Mbind(k, a + (nint)ps, ps, MPOL_LOCAL, null, 0, MPOL_MF_STRICT));
        // MPOL_DEFAULT clears STRICT.
        Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_DEFAULT, null, 0, MPOL_MF_STRICT));

        // [page 0][hole][page 2]
        mem.Unmap(1);
        AssertErrno(Errno.EFAULT, NumaCalls.Mbind(k, a, 3 * ps, MPOL_BIND, here, 64), "BIND over a hole in the middle");
        AssertErrno(Errno.EFAULT, NumaCalls.Mbind(k, a + (nint)ps, 2 * ps, MPOL_BIND, here, 64), "BIND from a hole");
        AssertErrno(Errno.EFAULT, NumaCalls.Mbind(k, a, 2 * ps, MPOL_BIND, here, 64), "BIND into a hole");
        AssertDefault(k, a);
        AssertDefault(k, a + 2 * (nint)ps);
        Assert.Equal(0, NumaCalls.Mbind(k, a, 3 * ps, MPOL_DEFAULT, null, 0));
        AssertErrno(Errno.EFAULT, NumaCalls.Mbind(k, a + (nint)ps, ps, MPOL_DEFAULT, null, 0), "DEFAULT on a hole only");
        // A VMA's policy splits it: page 0 BIND, page 2 untouched.
        Assert.Equal(0, NumaCalls.Mbind(k, a, ps, MPOL_BIND, here, 64));
        ulong mask = 0;
        Assert.Equal(0, NumaCalls.GetMempolicy(k, a, MPOL_F_ADDR, out int policy, ref mask));
        Assert.Equal((MPOL_BIND, here), (policy, mask));
        AssertDefault(k, a + 2 * (nint)ps);
    }

    [ConformanceCase("mm/mempolicy.c: a new mapping replacing one that had a policy (mmap MAP_FIXED) starts with none: the old VMA and its vm_policy are gone")]
    public static void a_new_mapping_has_no_policy(CaseContext ctx)
    {
        var k = ctx.Kernel;
        ulong node = 1UL << NumaCalls.Nodes(k)[0];
        using var mem = Anonymous(k, 2);
        nint a = mem.Address;
        Assert.Equal(0, NumaCalls.Mbind(k, a, 2 * (ulong)Ps, MPOL_INTERLEAVE, node, 64));
        // Replaced in place (the region still owns the range and unmaps it on Dispose).
        Assert.Equal(0, k.Mmap(a, 2 * (ulong)Ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, null, 0, out nint mapped));
        Assert.Equal(a, mapped);
        AssertDefault(k, a);
        AssertDefault(k, a + Ps);
    }

    // include/uapi/asm-generic/mman-common.h
    private const int MAP_FIXED_NOREPLACE = 0x100000;

    private static MappedRegion Anonymous(IKernel k, int pages)
    {
        Assert.Equal(0, MappedRegion.Map(k, null, (ulong)(pages * Ps), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0, out var region));
        return region!;
    }

    /// <summary>
    /// Anonymous pages mapped through the kernel, some of which a case unmaps to make holes: Dispose unmaps only the
    /// pages still mapped, one run at a time, so a hole the runtime may have mapped meanwhile is never unmapped.
    /// </summary>
    private sealed class Pages : IDisposable
    {
        private readonly IKernel _k;
        private readonly bool[] _mapped;

        public Pages(IKernel k, int count)
        {
            _k = k;
            // Low in the address space (from 4 GiB up, MAP_FIXED_NOREPLACE): mmap allocates top-down, so nothing else
            // of this process (the runtime, other cases running at the same time) lands in a hole made here.
            ulong length = (ulong)(count * Ps);
            for (ulong at = 1UL << 32; ; at += 1UL << 24)
            {
                long rc = k.Mmap((nint)at, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, null, 0, out nint a);
                if (rc == -(long)Errno.EEXIST) continue;
                Assert.Equal(0, rc);
                Assert.Equal((nint)at, a);
                Address = a;
                break;
            }
            _mapped = Enumerable.Repeat(true, count).ToArray();
        }

        public nint Address { get; }

        public nint this[int page] => Address + page * Ps;

        /// <summary>Writes page <paramref name="page"/> (allocating it).</summary>
        public void Touch(int page) => HostMemory.UnownedSpan(this[page], 1)[0] = 1;

        /// <summary>Reads page <paramref name="page"/> (an untouched one maps the shared zero page).</summary>
        public void Read(int page) => _ = Volatile.Read(ref HostMemory.UnownedSpan(this[page], 1)[0]);

        /// <summary>Unmaps page <paramref name="page"/>: a hole from now on.</summary>
        public nint Unmap(int page)
        {
            Assert.Equal(0, _k.Munmap(this[page], (ulong)Ps));
            _mapped[page] = false;
            return this[page];
        }

        public void Dispose()
        {
            for (int p = 0; p < _mapped.Length; p++)
            {
                if (!_mapped[p]) continue;
                int end = p;
                while (end < _mapped.Length && _mapped[end]) end++;
                _ = _k.Munmap(this[p], (ulong)((end - p) * Ps));
                p = end;
            }
        }
    }

    private static void AssertDefault(IKernel k, nint address)
    {
        ulong mask = ulong.MaxValue;
        Assert.Equal(0, NumaCalls.GetMempolicy(k, address, MPOL_F_ADDR, out int policy, ref mask));
        Assert.Equal((MPOL_DEFAULT, 0UL), (policy, mask));
    }
}
