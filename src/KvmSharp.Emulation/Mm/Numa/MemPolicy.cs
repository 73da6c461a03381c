// SPDX-License-Identifier: MIT
using static KvmSharp.Kernel.Mempolicy;

namespace KvmSharp.Emulation.Mm.Numa;

/// <summary>
/// A <c>struct mempolicy</c> as mm/mempolicy.c builds it (mpol_new + mpol_set_nodemask): the mode after mpol_new's
/// rewrite (MPOL_PREFERRED with no nodes is MPOL_LOCAL), the mode flags (plus the internal MPOL_F_MOF|MPOL_F_MORON of
/// MPOL_F_NUMA_BALANCING, which never reach userspace), the effective nodes (cpuset ∩ N_MEMORY applied) and, with
/// MPOL_F_STATIC_NODES or MPOL_F_RELATIVE_NODES, the user's own mask (w.user_nodemask). No policy at all (the
/// kernel's NULL, i.e. MPOL_DEFAULT) is represented by null. Equality is mm/mempolicy.c __mpol_equal's.
/// </summary>
internal sealed class MemPolicy : IEquatable<MemPolicy>
{
    // include/uapi/linux/mempolicy.h: internal flags sharing the flags word (MPOL_F_MOF 1 << 3, MPOL_F_MORON 1 << 4).
    public const int MPOL_F_MOF = 1 << 3;
    public const int MPOL_F_MORON = 1 << 4;

    public MemPolicy(int mode, int flags, NodeMask nodes, NodeMask? userNodes)
    {
        Mode = mode;
        Flags = flags;
        Nodes = nodes;
        UserNodes = userNodes;
    }

    public int Mode { get; }

    public int Flags { get; }

    public NodeMask Nodes { get; }

    /// <summary>w.user_nodemask: kept only when mpol_store_user_nodemask (a mode flag is set).</summary>
    public NodeMask? UserNodes { get; }

    /// <summary>mpol_store_user_nodemask: pol->flags &amp; MPOL_MODE_FLAGS.</summary>
    public bool StoresUserNodes => (Flags & MPOL_MODE_FLAGS) != 0;

    /// <summary>get_mempolicy's *policy: the mode with the user-visible mode flags (do_get_mempolicy).</summary>
    public int UserMode => Mode | (Flags & MPOL_MODE_FLAGS);

    /// <summary>get_mempolicy's node mask: the user's mask when stored, else get_policy_nodemask (empty for LOCAL).</summary>
    public NodeMask ReportedNodes => StoresUserNodes && UserNodes is not null ? UserNodes
        : Mode == MPOL_LOCAL ? new NodeMask(Nodes.Capacity) : Nodes;

    public bool Equals(MemPolicy? other)
    {
        if (other is null) return false;
        if (Mode != other.Mode || Flags != other.Flags) return false;
        if (StoresUserNodes && !Equals(UserNodes, other.UserNodes)) return false;
        return Mode == MPOL_LOCAL || Nodes.Equals(other.Nodes);
    }

    public override bool Equals(object? obj) => Equals(obj as MemPolicy);

    public override int GetHashCode() => HashCode.Combine(Mode, Flags, Mode == MPOL_LOCAL ? 0 : Nodes.GetHashCode());
}
