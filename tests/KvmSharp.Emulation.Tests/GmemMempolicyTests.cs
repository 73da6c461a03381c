// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static KvmSharp.Kernel.Mempolicy;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// NUMA memory policy on guest_memfd in the emulator (6.19: kvm_gmem_set_policy / kvm_gmem_get_policy on a shared
/// policy per inode; kvm_gmem_get_folio allocates with the policy of the index, for fallocate and faults alike), on a
/// kernel with more than one node. The real kernel here has one node and no guest_memfd: these are the emulator's own
/// checks, against the rules of virt/kvm/guest_memfd.c and mm/mempolicy.c.
/// </summary>
public sealed class GmemMempolicyTests : IDisposable
{
    private static readonly ulong Ps = (ulong)Environment.SystemPageSize;
    private const GuestMemfdFlags Shared = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;

    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
    }

    private static EmulatorConfig Nodes(int nodes, KernelGeneration generation = KernelGeneration.Linux619) =>
        EmulatorConfig.LikeThisHost(guestMemfd: true, generation) with { NumaNodes = nodes };

    private (EmulatedKernel Kernel, KvmSharp.GuestMemfd Gmem, GuestMapping Mem) Setup(int pages, int nodes = 4, KernelGeneration generation = KernelGeneration.Linux619)
    {
        var k = Own(new EmulatedKernel(Nodes(nodes, generation)));
        var kvm = Own(Kvm.Open(k));
        var vm = Own(kvm.CreateVm());
        var gmem = Own(vm.CreateGuestMemfd((ulong)pages * Ps, Shared));
        var mem = Own(gmem.Map());
        return (k, gmem, mem);
    }

    private T Own<T>(T d) where T : IDisposable
    {
        _owned.Add(d);
        return d;
    }

    private static int[] Nodes(GuestMapping mem)
    {
        var nodes = new int[mem.Length / Ps];
        mem.GetPageNodes(0, mem.Length, nodes);
        return nodes;
    }

    private static void TouchAll(GuestMapping mem)
    {
        for (ulong p = 0; p < mem.Length / Ps; p++) mem.Write<byte>(p * Ps, 0xaa);
    }

    [Fact]
    public void Interleave_spreads_faulted_pages_round_robin_over_the_nodes()
    {
        var (_, _, mem) = Setup(8);
        mem.SetMemoryPolicy(NumaPolicy.Interleave, [1, 3]);
        TouchAll(mem);
        var nodes = Nodes(mem);
        Assert.All(nodes, n => Assert.Contains(n, new[] { 1, 3 }));
        for (int i = 1; i < nodes.Length; i++) Assert.NotEqual(nodes[i - 1], nodes[i]);
        Assert.Equal(new MemoryPolicy(NumaPolicy.Interleave, NumaPolicyFlags.None, [1, 3]), mem.GetMemoryPolicy(0));
    }

    [Fact]
    public void Bind_and_preferred_place_faulted_pages_off_the_local_node()
    {
        var (_, _, mem) = Setup(4);
        mem.SetMemoryPolicy(0, 2 * Ps, NumaPolicy.Bind, [2, 3]);        // local node 0 not allowed: first of the mask
        mem.SetMemoryPolicy(2 * Ps, Ps, NumaPolicy.Preferred, [3, 1]);  // the first node of the mask
        TouchAll(mem);
        Assert.Equal([2, 2, 1, 0], Nodes(mem));
        Assert.Equal(NumaPolicy.Preferred, mem.GetMemoryPolicy(2 * Ps).Policy);
        Assert.Equal([1], mem.GetMemoryPolicy(2 * Ps).Nodes);
        Assert.Equal(NumaPolicy.Default, mem.GetMemoryPolicy(3 * Ps).Policy);
    }

    [Fact]
    public void Bind_including_the_local_node_allocates_locally()
    {
        var (_, _, mem) = Setup(2);
        mem.SetMemoryPolicy(NumaPolicy.Bind, [0, 2]);
        TouchAll(mem);
        Assert.Equal([0, 0], Nodes(mem));
    }

    [Fact]
    public void Fallocate_follows_the_policy_and_later_policies_do_not_move_the_pages()
    {
        var (_, gmem, mem) = Setup(4);
        mem.SetMemoryPolicy(NumaPolicy.Bind, [3]);
        gmem.Allocate(0, (long)(4 * Ps));
        // Allocated by fallocate but not mapped here yet: move_pages sees no page in this mapping.
        Assert.Equal([-1, -1, -1, -1], Nodes(mem));
        mem.SetMemoryPolicy(NumaPolicy.Bind, [1]);
        TouchAll(mem);
        // The faults found the folios fallocate made on node 3; guest_memfd folios never migrate.
        Assert.Equal([3, 3, 3, 3], Nodes(mem));
    }

    [Fact]
    public void A_punched_page_refaults_under_the_policy_in_force_now()
    {
        var (_, gmem, mem) = Setup(4);
        TouchAll(mem);
        Assert.Equal([0, 0, 0, 0], Nodes(mem));
        mem.SetMemoryPolicy(NumaPolicy.Bind, [2]);
        Assert.Equal([0, 0, 0, 0], Nodes(mem));
        gmem.PunchHole((long)Ps, (long)(2 * Ps));
        Assert.Equal([0, -1, -1, 0], Nodes(mem));
        TouchAll(mem);
        Assert.Equal([0, 2, 2, 0], Nodes(mem));
    }

    [Fact]
    public void The_policy_belongs_to_the_file_not_the_mapping()
    {
        var (_, gmem, first) = Setup(4);
        using var second = gmem.Map();
        first.SetMemoryPolicy(Ps, Ps, NumaPolicy.Bind, [3]);
        Assert.Equal(new MemoryPolicy(NumaPolicy.Bind, NumaPolicyFlags.None, [3]), second.GetMemoryPolicy(Ps));
        second.Write<byte>(Ps, 1);
        var nodes = new int[1];
        second.GetPageNodes(Ps, Ps, nodes);
        Assert.Equal(3, nodes[0]);
        // `first` has not mapped the page: no page in its page tables.
        first.GetPageNodes(Ps, Ps, nodes);
        Assert.Equal(-1, nodes[0]);
        first.Write<byte>(Ps, 2);
        first.GetPageNodes(Ps, Ps, nodes);
        Assert.Equal(3, nodes[0]);
    }

    [Fact]
    public void Before_6_19_mbind_sets_only_the_mapping_policy_and_allocation_stays_local()
    {
        var (_, gmem, mem) = Setup(2, generation: KernelGeneration.Linux618);
        mem.SetMemoryPolicy(NumaPolicy.Bind, [1]);
        // vma->vm_policy: reported for this mapping (no .get_policy in 6.18's kvm_gmem_vm_ops) …
        Assert.Equal(NumaPolicy.Bind, mem.GetMemoryPolicy(0).Policy);
        using var other = gmem.Map();
        // … not for another mapping of the same file, and allocation ignores it (filemap_grab_folio).
        Assert.Equal(NumaPolicy.Default, other.GetMemoryPolicy(0).Policy);
        TouchAll(mem);
        Assert.Equal([0, 0], Nodes(mem));
    }

    [Fact]
    public void Errors_leave_the_policy_as_it_was()
    {
        var (k, _, mem) = Setup(2, nodes: 2);
        mem.SetMemoryPolicy(NumaPolicy.Interleave, [0, 1]);
        var before = mem.GetMemoryPolicy(0);
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => mem.SetMemoryPolicy(NumaPolicy.Bind, [2])).Errno); // no node 2
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => mem.SetMemoryPolicy(NumaPolicy.Local, [1])).Errno);
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => mem.SetMemoryPolicy(NumaPolicy.Interleave, [])).Errno);
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => mem.SetMemoryPolicy(NumaPolicy.Preferred, [1], NumaPolicyFlags.NumaBalancing)).Errno);
        Assert.Equal(-(long)Errno.EINVAL, k.Mbind(mem.Address, Ps, 999, 0, 0, 0));
        Assert.Equal(-(long)Errno.EFAULT, k.Mbind(mem.Address, Ps, MPOL_BIND, 8, 64, 0));
        Assert.Equal(before, mem.GetMemoryPolicy(0));
        Assert.Equal(before, mem.GetMemoryPolicy(Ps));
    }

    [Fact]
    public void Strict_refuses_present_pages_off_the_mask_and_move_cannot_migrate_guest_memfd()
    {
        var (k, _, mem) = Setup(2, nodes: 2);
        TouchAll(mem); // both pages on node 0
        var node1 = new PinnedArray<ulong>(1);
        node1.Span[0] = 2;
        // STRICT without MOVE: EIO from queue_pages_range, before any policy change.
        Assert.Equal(-(long)Errno.EIO, k.Mbind(mem.Address, 2 * Ps, MPOL_BIND, node1.Address, 64, MPOL_MF_STRICT));
        Assert.Equal(NumaPolicy.Default, mem.GetMemoryPolicy(0).Policy);
        // MOVE without STRICT: the policy is set, the folios stay (kvm_gmem_migrate_folio refuses), 0.
        Assert.Equal(0, k.Mbind(mem.Address, Ps, MPOL_BIND, node1.Address, 64, MPOL_MF_MOVE));
        Assert.Equal(NumaPolicy.Bind, mem.GetMemoryPolicy(0).Policy);
        // MOVE|STRICT: mbind_range ran before the migration failed: policy set, EIO.
        Assert.Equal(-(long)Errno.EIO, k.Mbind(mem.Address + (nint)Ps, Ps, MPOL_INTERLEAVE, node1.Address, 64, MPOL_MF_MOVE | MPOL_MF_STRICT));
        Assert.Equal(NumaPolicy.Interleave, mem.GetMemoryPolicy(Ps).Policy);
        Assert.Equal([0, 0], Nodes(mem));
        GC.KeepAlive(node1);
    }

    [Fact]
    public void Move_pages_reports_unmapped_and_private_pages_without_faulting_them()
    {
        var k = Own(new EmulatedKernel(Nodes(2)));
        var kvm = Own(Kvm.Open(k));
        var vm = Own(kvm.CreateVm());
        var gmem = Own(vm.CreateGuestMemfd(2 * Ps, GuestMemfdFlags.Mmap)); // private: host faults SIGBUS
        var mem = Own(gmem.Map());
        Assert.Equal([-1, -1], Nodes(mem));
        // get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR) faults the page in (GUP), which a private page refuses.
        var policy = new PinnedArray<int>(1);
        Assert.Equal(-(long)Errno.EFAULT, k.GetMempolicy(policy.Address, 0, 0, mem.Address, MPOL_F_NODE | MPOL_F_ADDR));
        GC.KeepAlive(policy);
    }

    [Fact]
    public void Allowed_nodes_are_the_configured_ones()
    {
        using var one = new EmulatedKernel();
        Assert.Equal([0], NumaNodes.Allowed(one));
        using var three = new EmulatedKernel(Nodes(3));
        Assert.Equal([0, 1, 2], NumaNodes.Allowed(three));
    }

    [Theory]
    [InlineData(0, 1024)]
    [InlineData(65, 1024)]
    [InlineData(4, 2)]
    [InlineData(2, 1000)]
    public void Impossible_node_configurations_are_refused(int nodes, int maxNumNodes)
    {
        Assert.Throws<ArgumentException>(() => new EmulatedKernel(EmulatorConfig.LikeThisHost() with { NumaNodes = nodes, MaxNumNodes = maxNumNodes }));
    }

    [Fact]
    public void Anonymous_memory_follows_its_own_policy()
    {
        var k = Own(new EmulatedKernel(Nodes(2)));
        var anon = Own(AnonymousMemory.Allocate(k, 4 * Ps));
        anon.SetMemoryPolicy(2 * Ps, 2 * Ps, NumaPolicy.Bind, [1]);
        for (ulong p = 0; p < 4; p++) anon.Write<byte>(p * Ps, 1);
        var nodes = new int[4];
        anon.GetPageNodes(0, 4 * Ps, nodes);
        Assert.Equal([0, 0, 1, 1], nodes);
        Assert.Equal(NumaPolicy.Default, anon.GetMemoryPolicy(0).Policy);
        // A new mapping over page 2 (MAP_FIXED): the policy went with the old VMA.
        Assert.Equal(0, k.Mmap(anon.Address + (nint)(2 * Ps), Ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, null, 0, out _));
        Assert.Equal(NumaPolicy.Default, anon.GetMemoryPolicy(2 * Ps).Policy);
        Assert.Equal(NumaPolicy.Bind, anon.GetMemoryPolicy(3 * Ps).Policy);
    }
}
