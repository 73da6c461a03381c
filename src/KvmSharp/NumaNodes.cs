// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>The host's NUMA memory nodes, as a VMM placing guest memory sees them.</summary>
public static class NumaNodes
{
    /// <summary>
    /// The memory nodes this process may allocate on (get_mempolicy(2) with MPOL_F_MEMS_ALLOWED: the cpuset's nodes
    /// with memory), ascending; a single-node host answers [0].
    /// </summary>
    /// <exception cref="KvmException">The kernel refused the call (ENOSYS on a kernel without CONFIG_NUMA).</exception>
    public static IReadOnlyList<int> Allowed(IKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return MemoryPolicyCalls.Allowed(kernel);
    }
}
