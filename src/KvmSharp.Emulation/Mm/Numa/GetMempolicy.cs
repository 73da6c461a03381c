// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;
using static KvmSharp.Kernel.Mempolicy;

namespace KvmSharp.Emulation.Mm.Numa;

/// <summary>
/// get_mempolicy(2) on the emulated task: mm/mempolicy.c kernel_get_mempolicy → do_get_mempolicy, then put_user of
/// the policy and copy_nodes_to_user of the mask. The task has no policy of its own (set_mempolicy is not emulated):
/// its policy is the default. Caller holds the kernel lock.
/// </summary>
internal static class GetMempolicy
{
    public static long Call(EmulatedKernel kernel, ulong policyAddress, ulong nmask, ulong maxnode, nint address, ulong flags)
    {
        var numa = kernel.Numa;
        // kernel_get_mempolicy: a mask shorter than nr_node_ids bits is EINVAL before anything else.
        if (nmask != 0 && maxnode < (ulong)numa.NodeCount) return Err.EINVAL;
        if ((flags & ~(MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED)) != 0) return Err.EINVAL;

        int value;
        NodeMask nodes;
        if ((flags & MPOL_F_MEMS_ALLOWED) != 0)
        {
            if ((flags & (MPOL_F_NODE | MPOL_F_ADDR)) != 0) return Err.EINVAL;
            value = 0;
            nodes = numa.Online; // cpuset_current_mems_allowed
        }
        else
        {
            MemPolicy? policy = null; // current->mempolicy: none
            NumaArea? area = null;
            if ((flags & MPOL_F_ADDR) != 0)
            {
                // "Do NOT fall back to task policy if the vma/shared policy at addr is NULL."
                area = NumaArea.Lookup(kernel, (ulong)address);
                if (area is null) return Err.EFAULT;
                policy = numa.Lookup(PageNodes.PolicyIdAt(kernel, area.Value, (ulong)address));
            }
            else if (address != 0)
            {
                return Err.EINVAL;
            }
            if ((flags & MPOL_F_NODE) != 0)
            {
                // Without MPOL_F_ADDR only the task's own interleave policy has a next node: the default has none.
                if (area is null) return Err.EINVAL;
                long node = LookupNode(kernel, area.Value, (ulong)address);
                if (node < 0) return node;
                value = (int)node;
            }
            else
            {
                value = policy?.UserMode ?? MPOL_DEFAULT;
            }
            nodes = policy?.ReportedNodes ?? new NodeMask(numa.MaxNumNodes);
        }
        if (policyAddress != 0 && !UserMemory.CopyToUser(kernel.Config, policyAddress, value)) return Err.EFAULT;
        if (nmask != 0) return NodemaskUser.CopyNodesToUser(kernel.Config, numa.NodeCount, nmask, maxnode, nodes);
        return 0;
    }

    /// <summary>
    /// lookup_node: get_user_pages_fast(addr, 1, 0) faults the page in for reading (a guest_memfd page the fault path
    /// refuses — private, beyond EOF — is EFAULT, and so is any page of a NO_DIRECT_MAP file: GUP refuses it), then page_to_nid; an untouched anonymous page reads as the zero
    /// page, on the local node.
    /// </summary>
    private static long LookupNode(EmulatedKernel kernel, NumaArea area, ulong address)
    {
        ulong page = address & ~(ulong)(EmulatorConfig.PageSize - 1);
        // GUP's check_vma_flags refuses a NO_DIRECT_MAP guest_memfd mapping before any fault ([PATCH v12 06/16]).
        if (area.Gmem is { } ndm && GuestMemfd.GmemNoDirectMap.IsSet(ndm.GmemInode)) return Err.EFAULT;
        if (area.Gmem is { } gmem && EmulatedKernel.FaultUserMapping(gmem.GmemInode, area.PgOff(page)) is not null) return Err.EFAULT;
        Span<byte> one = stackalloc byte[1];
        if (HostMemory.ReadProcessMemory(page, one) != 1) return Err.EFAULT;
        int status = PageNodes.Status(kernel, area, page);
        return status >= 0 ? status : NumaState.LocalNode;
    }
}
