// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// A NUMA memory policy mode (include/uapi/linux/mempolicy.h MPOL_*): where the kernel allocates the pages of a range
/// from. Set on a mapping with mbind(2); for guest_memfd (Linux 6.19+) the policy belongs to the file and decides the
/// node of every page allocated later, by fallocate or by a fault.
/// </summary>
public enum NumaPolicy
{
    /// <summary>MPOL_DEFAULT: no policy of the range's own; the task's policy (by default: the local node).</summary>
    Default = Mempolicy.MPOL_DEFAULT,

    /// <summary>MPOL_PREFERRED: the first listed node, others when it is full; with no node, as <see cref="Local"/>.</summary>
    Preferred = Mempolicy.MPOL_PREFERRED,

    /// <summary>MPOL_BIND: only the listed nodes (the nearest of them first).</summary>
    Bind = Mempolicy.MPOL_BIND,

    /// <summary>MPOL_INTERLEAVE: round robin over the listed nodes, page by page.</summary>
    Interleave = Mempolicy.MPOL_INTERLEAVE,

    /// <summary>MPOL_LOCAL: the node of the CPU that allocates (no nodes may be listed).</summary>
    Local = Mempolicy.MPOL_LOCAL,

    /// <summary>MPOL_PREFERRED_MANY: the listed nodes first, any node when they are full (Linux 5.15+).</summary>
    PreferredMany = Mempolicy.MPOL_PREFERRED_MANY,

    /// <summary>MPOL_WEIGHTED_INTERLEAVE: interleave by the weights of /sys/kernel/mm/mempolicy (Linux 6.9+).</summary>
    WeightedInterleave = Mempolicy.MPOL_WEIGHTED_INTERLEAVE,
}

/// <summary>Mode flags of a NUMA policy (MPOL_F_*, or'ed into the mode of mbind(2)).</summary>
[Flags]
public enum NumaPolicyFlags
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>MPOL_F_NUMA_BALANCING: let NUMA balancing migrate pages within the nodes (Bind, PreferredMany only).</summary>
    NumaBalancing = Mempolicy.MPOL_F_NUMA_BALANCING,

    /// <summary>MPOL_F_RELATIVE_NODES: node n means the n-th node the task may use.</summary>
    RelativeNodes = Mempolicy.MPOL_F_RELATIVE_NODES,

    /// <summary>MPOL_F_STATIC_NODES: the nodes are physical node numbers, kept when the task's cpuset changes.</summary>
    StaticNodes = Mempolicy.MPOL_F_STATIC_NODES,
}

/// <summary>A range's NUMA policy as get_mempolicy(2) reports it.</summary>
/// <param name="Policy">The mode; <see cref="NumaPolicy.Default"/> when the range has no policy of its own.</param>
/// <param name="Flags">The mode flags it was set with.</param>
/// <param name="Nodes">Its nodes, ascending (empty for Default and Local); with Static/RelativeNodes, as given.</param>
public sealed record MemoryPolicy(NumaPolicy Policy, NumaPolicyFlags Flags, IReadOnlyList<int> Nodes)
{
    /// <summary>Value equality, the node lists compared element by element.</summary>
    /// <param name="other">The policy to compare with.</param>
    public bool Equals(MemoryPolicy? other) =>
        other is not null && Policy == other.Policy && Flags == other.Flags && Nodes.SequenceEqual(other.Nodes);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Policy, Flags, Nodes.Count);

    /// <inheritdoc/>
    public override string ToString() => $"{Policy}{(Flags == NumaPolicyFlags.None ? "" : $" ({Flags})")} [{string.Join(", ", Nodes)}]";
}
