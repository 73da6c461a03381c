// SPDX-License-Identifier: MIT
using static KvmSharp.Kernel.Mempolicy;

namespace KvmSharp.Emulation.Mm.Numa;

/// <summary>
/// The NUMA side of the emulated machine and of its one task: online memory nodes (EmulatorConfig.NumaNodes, all in
/// the cpuset), numa_node_id() = 0, the task's interleave cursor (current->il_prev) and no task policy of its own
/// (set_mempolicy is not emulated, so get_task_policy is the default policy: local allocation). Policies stored in
/// range maps are interned here by id (0 = none, the kernel's NULL).
/// </summary>
internal sealed class NumaState
{
    private readonly List<MemPolicy> _policies = [];
    private readonly Dictionary<MemPolicy, int> _ids = [];

    public NumaState(EmulatorConfig config)
    {
        MaxNumNodes = config.MaxNumNodes;
        NodeCount = config.NumaNodes;
        Online = NodeMask.Of(MaxNumNodes, Enumerable.Range(0, NodeCount));
        // kernel/fork.c copies il_prev from the parent; do_set_mempolicy sets MAX_NUMNODES-1 for interleave. Start there:
        // the first interleaved allocation lands on the first node of the mask.
        InterleavePrev = MaxNumNodes - 1;
    }

    /// <summary>MAX_NUMNODES.</summary>
    public int MaxNumNodes { get; }

    /// <summary>nr_node_ids = nr_online_nodes here (nodes 0 … NodeCount-1, all with memory).</summary>
    public int NodeCount { get; }

    /// <summary>node_states[N_MEMORY] ∩ cpuset_current_mems_allowed.</summary>
    public NodeMask Online { get; }

    /// <summary>numa_node_id(): the emulated CPUs are all on node 0.</summary>
    public static int LocalNode => 0;

    /// <summary>current->il_prev.</summary>
    public int InterleavePrev { get; private set; }

    public int Intern(MemPolicy? policy)
    {
        if (policy is null) return 0;
        if (_ids.TryGetValue(policy, out int id)) return id;
        _policies.Add(policy);
        id = _policies.Count;
        _ids[policy] = id;
        return id;
    }

    public MemPolicy? Lookup(int id) => id == 0 ? null : _policies[id - 1];

    /// <summary>
    /// The node a new order-0 folio gets under <paramref name="policy"/> (null: the task's, i.e. the default local
    /// policy), as mm/mempolicy.c alloc_pages_mpol → policy_nodemask picks it with NO_INTERLEAVE_INDEX (what
    /// filemap_alloc_folio passes for guest_memfd) and the page allocator then takes the first node of the local
    /// node's zonelist allowed by the mask. Equal node distances and no memory pressure are assumed, so the zonelist
    /// after the local node is in node order.
    /// </summary>
    public int AllocateNode(MemPolicy? policy)
    {
        if (policy is null) return LocalNode;
        switch (policy.Mode)
        {
            case MPOL_PREFERRED:
                // policy_nodemask: *nid = first_node(pol->nodes), no mask (falls back only when the node is full).
                return policy.Nodes.First;
            case MPOL_BIND:
            case MPOL_PREFERRED_MANY:
                // The local node when allowed, else the first allowed node of its zonelist.
                return policy.Nodes.Contains(LocalNode) ? LocalNode : policy.Nodes.First;
            case MPOL_INTERLEAVE:
            case MPOL_WEIGHTED_INTERLEAVE:
                // interleave_nodes: next_node_in(current->il_prev, pol->nodes). weighted_interleave_nodes with the
                // default weights (all 1, iw_table unset) picks the same sequence.
                int nid = policy.Nodes.NextIn(InterleavePrev);
                if (nid < MaxNumNodes) InterleavePrev = nid;
                return nid;
            default:
                // MPOL_LOCAL.
                return LocalNode;
        }
    }
}
