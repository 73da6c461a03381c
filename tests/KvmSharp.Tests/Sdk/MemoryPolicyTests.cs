// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Kernel.Tracing;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// The typed NUMA API (SetMemoryPolicy, GetMemoryPolicy, GetPageNodes, NumaNodes.Allowed) on every kernel: the real
/// one here has one node and no guest_memfd, so the anonymous-memory half runs on it and the guest_memfd half on the
/// emulators that have a mappable guest_memfd.
/// </summary>
public class MemoryPolicyTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Anonymous_memory_policy_round_trips_and_page_nodes_show_what_was_written(string kernel)
    {
        using var kvm = Open(kernel);
        var nodes = NumaNodes.Allowed(kvm.Kernel);
        Assert.NotEmpty(nodes);
        ulong ps = (ulong)PageSize;
        using var vm = kvm.CreateVm();
        using var memory = vm.AllocateMemory(4 * ps);
        Assert.Equal(new MemoryPolicy(NumaPolicy.Default, NumaPolicyFlags.None, []), memory.GetMemoryPolicy(0));

        memory.SetMemoryPolicy(0, 2 * ps, NumaPolicy.Bind, [nodes[0]]);
        Assert.Equal(new MemoryPolicy(NumaPolicy.Bind, NumaPolicyFlags.None, [nodes[0]]), memory.GetMemoryPolicy(ps + 17));
        Assert.Equal(NumaPolicy.Default, memory.GetMemoryPolicy(2 * ps).Policy);
        memory.SetMemoryPolicy(2 * ps, ps, NumaPolicy.Preferred, []);
        Assert.Equal(new MemoryPolicy(NumaPolicy.Local, NumaPolicyFlags.None, []), memory.GetMemoryPolicy(2 * ps));

        var pages = new int[4];
        memory.GetPageNodes(0, 4 * ps, pages);
        Assert.Equal([-1, -1, -1, -1], pages);
        memory.Write<byte>(0, 1);
        _ = Volatile.Read(ref memory.GetSpan(3 * ps, 1)[0]); // the shared zero page: no node of its own
        memory.GetPageNodes(0, 4 * ps, pages);
        Assert.Equal(nodes[0], pages[0]);
        Assert.Equal([-1, -1, -1], pages[1..]);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Refused_policies_are_typed_errors_and_change_nothing(string kernel)
    {
        using var kvm = Open(kernel);
        var nodes = NumaNodes.Allowed(kvm.Kernel);
        ulong ps = (ulong)PageSize;
        using var vm = kvm.CreateVm();
        using var memory = vm.AllocateMemory(2 * ps);
        memory.SetMemoryPolicy(0, ps, NumaPolicy.Interleave, nodes);
        var before = memory.GetMemoryPolicy(0);

        var ex = AssertErrno(Errno.EINVAL, () => memory.SetMemoryPolicy(0, ps, NumaPolicy.Bind, [nodes[^1] + 1]));
        Assert.Contains("mbind", ex.Message, StringComparison.Ordinal);
        AssertErrno(Errno.EINVAL, () => memory.SetMemoryPolicy(0, ps, NumaPolicy.Local, [nodes[0]]));
        AssertErrno(Errno.EINVAL, () => memory.SetMemoryPolicy(0, ps, NumaPolicy.Interleave, []));
        AssertErrno(Errno.EINVAL, () => memory.SetMemoryPolicy(0, ps, NumaPolicy.Interleave, nodes, NumaPolicyFlags.NumaBalancing));
        AssertErrno(Errno.EINVAL, () => memory.SetMemoryPolicy(0, ps, (NumaPolicy)7, nodes));
        Assert.Equal(before, memory.GetMemoryPolicy(0));

        Assert.Throws<ArgumentOutOfRangeException>(() => memory.SetMemoryPolicy(0, ps, NumaPolicy.Bind, [-1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.SetMemoryPolicy(1, ps, NumaPolicy.Bind, nodes));
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.SetMemoryPolicy(ps, 2 * ps, NumaPolicy.Bind, nodes));
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.GetMemoryPolicy(2 * ps));
        Assert.Throws<ArgumentException>(() => memory.GetPageNodes(0, 2 * ps, new int[1]));
        memory.Dispose();
        Assert.Throws<ObjectDisposedException>(() => memory.GetMemoryPolicy(0));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Guest_memfd_mapping_policy_round_trips_and_its_pages_have_nodes(string kernel)
    {
        using var kvm = Open(kernel);
        RequireGuestMemfd(kvm);
        var nodes = NumaNodes.Allowed(kvm.Kernel);
        ulong ps = (ulong)PageSize;
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(2 * ps, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var mem = gmem.Map();
        Assert.Equal(NumaPolicy.Default, mem.GetMemoryPolicy(0).Policy);
        mem.SetMemoryPolicy(NumaPolicy.Bind, [nodes[0]]);
        Assert.Equal(new MemoryPolicy(NumaPolicy.Bind, NumaPolicyFlags.None, [nodes[0]]), mem.GetMemoryPolicy(ps));
        var pages = new int[2];
        mem.GetPageNodes(0, 2 * ps, pages);
        Assert.Equal([-1, -1], pages);
        mem.Write<byte>(ps, 1);
        mem.GetPageNodes(0, 2 * ps, pages);
        Assert.Equal([-1, nodes[0]], pages);
        AssertErrno(Errno.EINVAL, () => mem.SetMemoryPolicy(NumaPolicy.Bind, [nodes[^1] + 1]));
    }

    [KvmFact]
    public void The_default_emulator_has_this_hosts_nodes()
    {
        using var emulated = new EmulatedKernel();
        Assert.Equal(NumaNodes.Allowed(LinuxKernel.Instance), NumaNodes.Allowed(emulated));
    }

    [KvmFact]
    public void Tracing_prints_the_numa_calls_alike_on_both_kernels()
    {
        var real = Trace(LinuxKernel.Instance);
        using var emulator = new EmulatedKernel();
        var emulated = Trace(emulator);
        Assert.Equal(real, emulated);
        Assert.Contains(real, l => l.StartsWith("mbind(<addr>, 0x2000, MPOL_BIND, <addr>, 2, 0) = 0", StringComparison.Ordinal));
        Assert.Contains(real, l => l.StartsWith("mbind(<addr>, 0x1000, MPOL_LOCAL, <addr>, 2, 0) = -1 EINVAL", StringComparison.Ordinal));
        Assert.Contains(real, l => l.StartsWith("get_mempolicy(<addr>, <addr>, 4097, <addr>, MPOL_F_ADDR) = 0", StringComparison.Ordinal));
        Assert.Contains(real, l => l.StartsWith("move_pages(0, 2, <addr>, NULL, <addr>, 0) = 0", StringComparison.Ordinal));
        Assert.Contains(real, l => l.StartsWith("get_mempolicy(NULL, <addr>, 4097, NULL, MPOL_F_MEMS_ALLOWED) = 0", StringComparison.Ordinal));
    }

    private static List<string> Trace(IKernel kernel)
    {
        var lines = new List<string>();
        var tracing = new TracingKernel(kernel, call => lines.Add(call.ToString()), comparable: true);
        ulong ps = (ulong)Environment.SystemPageSize;
        using (var memory = AnonymousMemory.Allocate(tracing, 2 * ps))
        {
            memory.SetMemoryPolicy(0, 2 * ps, NumaPolicy.Bind, [0]);
            Assert.Throws<KvmException>(() => memory.SetMemoryPolicy(0, ps, NumaPolicy.Local, [0]));
            _ = memory.GetMemoryPolicy(0);
            memory.Write<byte>(0, 1);
            memory.GetPageNodes(0, 2 * ps, new int[2]);
            _ = NumaNodes.Allowed(tracing);
        }
        return lines.Where(l => !l.StartsWith("mmap", StringComparison.Ordinal) && !l.StartsWith("munmap", StringComparison.Ordinal)).ToList();
    }
}
