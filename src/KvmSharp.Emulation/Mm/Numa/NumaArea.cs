// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Mm.Numa;

/// <summary>
/// One VMA as mm/mempolicy.c and mm/migrate.c see it: an emulated file mapping (<see cref="Vma"/>; a guest_memfd's
/// has the shared-policy vm_ops from 6.19) or an anonymous mapping made through the emulated kernel (Vma null).
/// Memory the emulated kernel did not map is a hole to it.
/// </summary>
internal readonly record struct NumaArea(ulong Start, ulong End, Vma? Vma)
{
    public GmemFile? Gmem => Vma?.File as GmemFile;

    public bool Contains(ulong address) => address >= Start && address < End;

    /// <summary>The file page of <paramref name="address"/> (vma->vm_pgoff + offset in pages).</summary>
    public ulong PgOff(ulong address) => Vma!.PgOff + ((address - Start) >> EmulatorConfig.PageShift);

    /// <summary>Every VMA overlapping [start, end), by address (file mappings win where a stale range overlaps).</summary>
    public static List<NumaArea> In(EmulatedKernel kernel, ulong start, ulong end)
    {
        var areas = new List<NumaArea>();
        foreach (var vma in kernel.AddressSpace.Vmas)
        {
            if ((ulong)vma.Start < end && start < (ulong)vma.End) areas.Add(new((ulong)vma.Start, (ulong)vma.End, vma));
        }
        foreach (var (s, e) in kernel.Anonymous.Overlapping((nint)start, (nint)end))
        {
            if (!areas.Any(a => a.Start < (ulong)e && (ulong)s < a.End)) areas.Add(new((ulong)s, (ulong)e, null));
        }
        areas.Sort((a, b) => a.Start.CompareTo(b.Start));
        return areas;
    }

    /// <summary>vma_lookup(mm, addr).</summary>
    public static NumaArea? Lookup(EmulatedKernel kernel, ulong address)
    {
        var areas = In(kernel, address, address + 1);
        return areas.Count == 0 ? null : areas[0];
    }
}

/// <summary>Which node the pages of emulated mappings are on, and the policies that decide it.</summary>
internal static class PageNodes
{
    /// <summary>
    /// The policy that get_mempolicy(MPOL_F_ADDR) reports and a fault allocates with at <paramref name="address"/>
    /// (__get_vma_policy): a guest_memfd VMA from 6.19 has .get_policy, the inode's shared policy at the page's index;
    /// any other VMA its own vm_policy. 0 = none.
    /// </summary>
    public static int PolicyIdAt(EmulatedKernel kernel, NumaArea area, ulong address)
    {
        if (area.Gmem is { } gmem && kernel.Config.Generation.HasGmemMempolicy()) return gmem.GmemInode.SharedPolicyId(area.PgOff(address));
        return kernel.AddressSpace.VmPolicy.Get(address >> EmulatorConfig.PageShift);
    }

    /// <summary>
    /// follow_page / folio_walk_start on the page at <paramref name="address"/>, then folio_nid: the node, or -ENOENT
    /// (nothing mapped there), or -EFAULT (the zero page). Whether the page is mapped is the host's own answer for its
    /// mapping (the emulated mapping is a host mapping); the node is the emulated folio's.
    /// </summary>
    public static int Status(EmulatedKernel kernel, NumaArea area, ulong address)
    {
        ulong page = address & ~(ulong)(EmulatorConfig.PageSize - 1);
        int host = HostMemory.PageStatus((nint)page);
        if (host < 0) return host;
        if (area.Gmem is { } gmem)
        {
            int node = gmem.GmemInode.FolioNode(area.PgOff(page));
            // A page the host maps has a folio; the inode would only miss it on a coarse backing (see GmemBacking).
            return node >= 0 ? node : NumaState.LocalNode;
        }
        return AnonymousNode(kernel, page >> EmulatorConfig.PageShift);
    }

    /// <summary>The node of a present anonymous page: recorded, or given now by the VMA policy in force.</summary>
    public static int AnonymousNode(EmulatedKernel kernel, ulong pageNumber)
    {
        int node = kernel.AddressSpace.PageNodes.Get(pageNumber);
        if (node >= 0) return node;
        node = kernel.Numa.AllocateNode(kernel.Numa.Lookup(kernel.AddressSpace.VmPolicy.Get(pageNumber)));
        kernel.AddressSpace.PageNodes.Set(pageNumber, pageNumber + 1, node);
        return node;
    }

    /// <summary>
    /// Before the policy of [start, end) changes, present pages whose node is not recorded yet get theirs from the
    /// policy they were faulted under (the one still in force). Nothing to do on one node.
    /// </summary>
    public static void ObserveBeforePolicyChange(EmulatedKernel kernel, NumaArea area, ulong start, ulong end)
    {
        if (kernel.Numa.NodeCount == 1) return;
        if (area.Gmem is not null) return; // the inode observes its own folios (GmemInode.SetSharedPolicy)
        int page = EmulatorConfig.PageSize;
        for (ulong a = start; a < end; a += (ulong)page)
        {
            if (HostMemory.PageStatus((nint)a) >= 0) _ = AnonymousNode(kernel, a >> EmulatorConfig.PageShift);
        }
    }
}
