// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Kernel.Mempolicy;

namespace KvmSharp.Emulation.Mm.Numa;

/// <summary>
/// mbind(2) on the emulated mappings: mm/mempolicy.c kernel_mbind → sanitize_mpol_flags, get_nodes, do_mbind
/// (mpol_new, mpol_set_nodemask, queue_pages_range, mbind_range → vma_replace_policy → .set_policy), in that order,
/// each check returning the kernel's errno with nothing changed. Caller holds the kernel lock.
/// </summary>
internal static class Mbind
{
    // mm/internal.h: MPOL_MF_DISCONTIG_OK (MPOL_MF_INTERNAL << 0), internal to do_mbind.
    private const uint MPOL_MF_DISCONTIG_OK = 1u << 4;

    public static long Call(EmulatedKernel kernel, nint address, ulong length, int mode, ulong nmask, ulong maxnode, uint flags)
    {
        // sanitize_mpol_flags: the mode is the syscall's unsigned long truncated to an int.
        int modeFlags = mode & MPOL_MODE_FLAGS;
        int lmode = mode & ~MPOL_MODE_FLAGS;
        long rc = ValidateModeFlags(lmode, ref modeFlags);
        if (rc != 0) return rc;
        rc = NodemaskUser.GetNodes(kernel.Config, nmask, maxnode, out var nodes);
        if (rc != 0) return rc;
        return DoMbind(kernel, (ulong)address, length, lmode, modeFlags, nodes, flags);
    }

    /// <summary>validate_mpol_flags (mm/mempolicy.c, called by sanitize_mpol_flags).</summary>
    public static long ValidateModeFlags(int mode, ref int flags)
    {
        if ((uint)mode >= MPOL_MAX) return Err.EINVAL;
        if ((flags & MPOL_F_STATIC_NODES) != 0 && (flags & MPOL_F_RELATIVE_NODES) != 0) return Err.EINVAL;
        if ((flags & MPOL_F_NUMA_BALANCING) != 0)
        {
            // Only BIND and PREFERRED_MANY migrate on fault (this host: PREFERRED|NUMA_BALANCING is EINVAL).
            if (mode != MPOL_BIND && mode != MPOL_PREFERRED_MANY) return Err.EINVAL;
            flags |= MemPolicy.MPOL_F_MOF | MemPolicy.MPOL_F_MORON;
        }
        return 0;
    }

    private static long DoMbind(EmulatedKernel kernel, ulong start, ulong len, int mode, int modeFlags, NodeMask nmask, uint flags)
    {
        if ((flags & ~MPOL_MF_VALID) != 0) return Err.EINVAL;
        // MPOL_MF_MOVE_ALL needs CAP_SYS_NICE: the emulated task has it (the suite runs as root, like this host's).
        ulong page = (ulong)EmulatorConfig.PageSize;
        if ((start & (page - 1)) != 0) return Err.EINVAL;
        if (mode == MPOL_DEFAULT) flags &= ~MPOL_MF_STRICT;
        // len = PAGE_ALIGN(len) wraps to 0 for the last page of the address space: end == start, nothing to do.
        len = (len + page - 1) & ~(page - 1);
        ulong end = start + len;
        if (end < start) return Err.EINVAL;
        if (end == start) return 0;
        long rc = MpolNew(kernel.Numa, mode, modeFlags, nmask, out var policy);
        if (rc != 0) return rc;
        // "If we are using the default policy then operation on discontinuous address spaces is okay after all."
        if (policy is null) flags |= MPOL_MF_DISCONTIG_OK;

        // queue_pages_range: holes (EFAULT), then with STRICT/MOVE the present pages off the user's mask.
        var areas = NumaArea.In(kernel, start, end);
        var misplaced = new List<(NumaArea Area, ulong Address)>();
        rc = QueuePages(kernel, areas, start, end, nmask, flags, misplaced);
        if (rc != 0) return rc;

        // mbind_range per VMA; then the queued pages migrate (anonymous) or fail to (guest_memfd is unmovable).
        int id = kernel.Numa.Intern(policy);
        foreach (var area in areas) Apply(kernel, area, Math.Max(start, area.Start), Math.Min(end, area.End), id);
        long failed = 0;
        foreach (var (area, address) in misplaced)
        {
            if (area.Gmem is not null)
            {
                // kvm_gmem_migrate_folio: WARN_ON_ONCE(1); return -EINVAL — the folio stays, counted as failed.
                failed++;
                continue;
            }
            // alloc_migration_target_by_mpol: the new policy (MPOL_DEFAULT: the task's, local).
            ulong pn = address >> EmulatorConfig.PageShift;
            kernel.AddressSpace.PageNodes.Set(pn, pn + 1, kernel.Numa.AllocateNode(policy));
        }
        return failed != 0 && (flags & MPOL_MF_STRICT) != 0 ? Err.EIO : 0;
    }

    /// <summary>mpol_new, then mpol_set_nodemask: the policy, null for MPOL_DEFAULT, or EINVAL.</summary>
    public static long MpolNew(NumaState numa, int mode, int flags, NodeMask nodes, out MemPolicy? policy)
    {
        policy = null;
        if (mode == MPOL_DEFAULT) return nodes.IsEmpty ? 0 : Err.EINVAL;
        if (mode == MPOL_PREFERRED)
        {
            if (nodes.IsEmpty)
            {
                if ((flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES)) != 0) return Err.EINVAL;
                mode = MPOL_LOCAL;
            }
        }
        else if (mode == MPOL_LOCAL)
        {
            if (!nodes.IsEmpty || (flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES)) != 0) return Err.EINVAL;
        }
        else if (nodes.IsEmpty)
        {
            return Err.EINVAL;
        }
        // mpol_set_nodemask: LOCAL takes no nodes; others get (cpuset ∩ N_MEMORY) ∩ nodes (or the relative fold).
        var user = (flags & MPOL_MODE_FLAGS) != 0 ? nodes : null;
        if (mode == MPOL_LOCAL)
        {
            policy = new MemPolicy(mode, flags, new NodeMask(numa.MaxNumNodes), user);
            return 0;
        }
        var effective = (flags & MPOL_F_RELATIVE_NODES) != 0 ? nodes.RelativeTo(numa.Online) : nodes.And(numa.Online);
        // mpol_new_nodemask / mpol_new_preferred: an empty result is EINVAL; PREFERRED keeps its first node only.
        if (effective.IsEmpty) return Err.EINVAL;
        if (mode == MPOL_PREFERRED) effective = NodeMask.Of(numa.MaxNumNodes, [effective.First]);
        policy = new MemPolicy(mode, flags, effective, user);
        return 0;
    }

    /// <summary>queue_pages_range with queue_pages_test_walk's hole checks and queue_folios_pte_range's page checks.</summary>
    private static long QueuePages(EmulatedKernel kernel, List<NumaArea> areas, ulong start, ulong end, NodeMask nmask, uint flags,
        List<(NumaArea, ulong)> misplaced)
    {
        // "whole range in hole": EFAULT even for MPOL_DEFAULT.
        if (areas.Count == 0) return Err.EFAULT;
        bool discontigOk = (flags & MPOL_MF_DISCONTIG_OK) != 0;
        bool scan = (flags & MPOL_MF_VALID) != 0;
        bool moving = (flags & (MPOL_MF_MOVE | MPOL_MF_MOVE_ALL)) != 0;
        for (int i = 0; i < areas.Count; i++)
        {
            var area = areas[i];
            // hole at the head side of the range, then at the middle or tail.
            if (i == 0 && !discontigOk && start < area.Start) return Err.EFAULT;
            bool gap = i + 1 == areas.Count || area.End < areas[i + 1].Start;
            if (!discontigOk && area.End < end && gap) return Err.EFAULT;
            if (!scan) continue;
            ulong page = (ulong)EmulatorConfig.PageSize;
            for (ulong a = Math.Max(start, area.Start); a < Math.Min(end, area.End); a += page)
            {
                int node = PageNodes.Status(kernel, area, a);
                // pte_none / the zero page (vm_normal_folio filters it) are skipped.
                if (node < 0) continue;
                // queue_folio_required with MPOL_MF_INVERT: a page off the user's node mask.
                if (nmask.Contains(node)) continue;
                // Without MOVE: counted as failed; STRICT alone ends the walk with EIO (strictly_unmovable).
                if (!moving) return (flags & MPOL_MF_STRICT) != 0 ? Err.EIO : 0;
                misplaced.Add((area, a));
            }
        }
        return 0;
    }

    /// <summary>
    /// mbind_range on one VMA's part [start, end): pieces whose vm_policy already equals the new one are left alone
    /// (mpol_equal → continue, so .set_policy is not called for them); the others get it, and a guest_memfd VMA from
    /// 6.19 passes it to kvm_gmem_set_policy → mpol_set_shared_policy for its file range.
    /// </summary>
    private static void Apply(EmulatedKernel kernel, NumaArea area, ulong start, ulong end, int id)
    {
        var vmPolicy = kernel.AddressSpace.VmPolicy;
        int shift = EmulatorConfig.PageShift;
        foreach (var (s, e, current) in vmPolicy.Segments(start >> shift, end >> shift).ToArray())
        {
            if (current == id) continue;
            ulong from = s << shift, to = e << shift;
            PageNodes.ObserveBeforePolicyChange(kernel, area, from, to);
            vmPolicy.Set(s, e, id);
            if (area.Gmem is { } gmem && kernel.Config.Generation.HasGmemMempolicy())
                gmem.GmemInode.SetSharedPolicy(area.PgOff(from), area.PgOff(from) + (e - s), id);
        }
    }
}
