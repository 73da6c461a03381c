// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

public class DifferentialFuzzerTests(ITestOutputHelper output)
{
    [KvmFact]
    public void The_real_kernel_agrees_with_itself()
    {
        // A fuzzer that reported divergences between two identical kernels would be measuring its own noise.
        var report = new DifferentialFuzzer(() => LinuxKernel.Instance, () => LinuxKernel.Instance).Run(ops: 2000, seed: 7);
        Assert.Equal(2000, report.Ops);
        Assert.Empty(report.Divergences);
    }

    [KvmTheory]
    [InlineData(PlantedBug.PunchBeyondEnd)]
    [InlineData(PlantedBug.PlainSlotDirtyLogging)]
    public void A_planted_errno_bug_is_found_and_reduced(PlantedBug bug)
    {
        // The punch needs a guest_memfd; the memslot bug is in a call every kernel has.
        Skip.If(bug == PlantedBug.PunchBeyondEnd && HostMatching.HostHasGuestMemfd == false,
            "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0): there is no fallocate to plant a bug in");
        var fuzzer = new DifferentialFuzzer(() => LinuxKernel.Instance, () => new LyingKernel(LinuxKernel.Instance, bug)) { MaxDivergences = 1 };
        var report = fuzzer.Run(ops: 20000, seed: 1);
        AssertPlantedErrno(bug, Assert.Single(report.Divergences));
    }

    /// <summary>
    /// The planted EINVAL, reduced. Punch: open, create VM, create gmem, the punch. Slot: open, create VM, (the slot it
    /// changes,) the call — or open and a tiny guest whose logging slot is refused (a kernel without guest_memfd: the
    /// dirty-log guest runs make the same call). Anything longer was not reduced.
    /// </summary>
    private static void AssertPlantedErrno(PlantedBug bug, Divergence divergence)
    {
        Assert.Equal(divergence.Op, divergence.Reproducer[^1]);
        if (bug == PlantedBug.PlainSlotDirtyLogging && divergence.Op.StartsWith("guest run(", StringComparison.Ordinal))
        {
            Assert.Contains("dirty log", divergence.Op, StringComparison.Ordinal);
            Assert.EndsWith("memslot EINVAL", divergence.Candidate, StringComparison.Ordinal);
            Assert.Equal(2, divergence.Reproducer.Count);
            return;
        }
        Assert.StartsWith(bug == PlantedBug.PunchBeyondEnd ? "fallocate(" : "KVM_SET_USER_MEMORY_REGION2(", divergence.Op, StringComparison.Ordinal);
        Assert.Equal(("ok", "EINVAL"), (divergence.Reference, divergence.Candidate));
        Assert.InRange(divergence.Reproducer.Count, 2, 4);
    }

    [Theory]
    [InlineData(PlantedBug.PunchBeyondEnd, true)]
    [InlineData(PlantedBug.PlainSlotDirtyLogging, true)]
    [InlineData(PlantedBug.PlainSlotDirtyLogging, false)]
    public void A_planted_bug_is_found_on_either_kind_of_kernel(PlantedBug bug, bool guestMemfd)
    {
        // The emulator plays both kinds of host (with and without CONFIG_KVM_GUEST_MEMFD), so the generator's reach is
        // checked for the kind this machine is not, too.
        var fuzzer = new DifferentialFuzzer(
            () => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd)),
            () => new LyingKernel(new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd)), bug)) { MaxDivergences = 1 };
        var report = fuzzer.Run(ops: 20000, seed: 1);
        AssertPlantedErrno(bug, Assert.Single(report.Divergences));
    }

    [KvmFact]
    public void The_emulator_preset_for_this_host_agrees_with_the_real_kernel()
    {
        // The preset that matches this machine: with guest_memfd where /dev/kvm has it, without where it does not.
        var fuzzer = new DifferentialFuzzer(FuzzKernels.Real, FuzzKernels.EmulatorLikeThisMachine);
        // A fixed seed keeps CI reproducible; `kvmsharp fuzz --seed S` explores others.
        var report = fuzzer.Run(ops: 5000, seed: 1);
        Assert.True(report.Divergences.Count == 0,
            $"seed {report.Seed}: " + string.Join("\n", report.Divergences.Select(d => $"op {d.OpIndex} {d.Op}: linux {d.Reference}, emulated {d.Candidate}; reproducer:\n  " + string.Join("\n  ", d.Reproducer))));
    }

    [KvmFact]
    public void The_preset_for_the_other_kind_of_host_diverges_on_guest_memfd_creation()
    {
        // Why the candidate must match the machine: the other build answers KVM_CREATE_GUEST_MEMFD differently.
        bool hostHasGmem = HostMatching.HostHasGuestMemfd == true;
        var fuzzer = new DifferentialFuzzer(FuzzKernels.Real, () => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: !hostHasGmem))) { MaxDivergences = 1 };
        var divergence = Assert.Single(fuzzer.Run(ops: 2000, seed: 1).Divergences);
        Assert.Contains("KVM_CREATE_GUEST_MEMFD(", divergence.Op, StringComparison.Ordinal);
        // The build without guest_memfd answers ENOTTY; the other one its own answer for those arguments.
        Assert.Equal("ENOTTY", hostHasGmem ? divergence.Candidate : divergence.Reference);
    }

    [KvmFact]
    public void The_calls_added_later_are_generated_and_get_past_the_argument_checks()
    {
        // A new op kind that always failed (a bad handle, a setup error) would agree on both kernels and test nothing.
        // Sessions as DifferentialFuzzer makes them (400 calls each, seed 1), so early-VM states (no memslot yet) recur.
        var outcomes = new Dictionary<OpKind, List<string>>();
        var ops = new List<FuzzOp>();
        bool learntNoGmem = false;
        for (int n = 0; n < 12; n++)
        {
            var generator = new OpGenerator(DifferentialFuzzer.SessionSeed(1, n));
            using var session = new KernelSession(LinuxKernel.Instance);
            for (int i = 0; i < 400; i++)
            {
                var op = generator.Next();
                string outcome = session.Apply(op);
                generator.Observe(op, outcome);
                ops.Add(op);
                if (!outcomes.TryGetValue(op.Kind, out var list)) outcomes[op.Kind] = list = [];
                list.Add(outcome);
            }
            learntNoGmem |= generator.KernelLacksGuestMemfd;
        }
        foreach (var (kind, list) in outcomes.OrderBy(p => p.Key))
            output.WriteLine($"{kind,-16} {list.Count,5}: " + string.Join(", ", list.GroupBy(o => o.Length > 24 ? o[..24] : o).OrderByDescending(g => g.Count()).Take(6).Select(g => $"{g.Key} x{g.Count()}")));

        bool Any(OpKind kind, string prefix) => outcomes.GetValueOrDefault(kind, []).Any(o => o.StartsWith(prefix, StringComparison.Ordinal));
        Assert.True(Any(OpKind.CreateVcpu, "ok fd"), "KVM_CREATE_VCPU never succeeded");
        Assert.True(Any(OpKind.CreateVcpu, "EEXIST") && Any(OpKind.CreateVcpu, "EINVAL"), "KVM_CREATE_VCPU never hit its limits");
        Assert.True(Any(OpKind.EnableCap, "ok") && Any(OpKind.EnableCap, "EINVAL"), "KVM_ENABLE_CAP");
        Assert.True(Any(OpKind.SetTssAddr, "ok"), "KVM_SET_TSS_ADDR");
        Assert.True(Any(OpKind.RegsRoundTrip, "set ok, get ok"), "KVM_SET_REGS");
        Assert.True(Any(OpKind.SregsRoundTrip, "set ok") && Any(OpKind.SregsRoundTrip, "set EINVAL"), "KVM_SET_SREGS");
        Assert.True(Any(OpKind.RunVcpu, "EINTR") && Any(OpKind.RunVcpu, "ENOSPC"), "KVM_RUN: " + string.Join(", ", outcomes.GetValueOrDefault(OpKind.RunVcpu, []).Distinct()));
        Assert.True(Any(OpKind.PreFault, "EINVAL") && Any(OpKind.PreFault, "EOPNOTSUPP"), "KVM_PRE_FAULT_MEMORY");
        Assert.True(outcomes[OpKind.GuestRun].Count(o => o.Contains("hlt |", StringComparison.Ordinal)) >= 20, "guest runs");

        bool hostHasGmem = HostMatching.HostHasGuestMemfd == true;
        Assert.Equal(!hostHasGmem, learntNoGmem);
        if (hostHasGmem)
        {
            Assert.True(Any(OpKind.Madvise, "ok") && Any(OpKind.Madvise, "EINVAL"), "madvise");
            return;
        }
        // Without guest_memfd: the compiled-out request is still made (ENOTTY), but the calls go where this kernel has
        // something to test — plain slots get created, moved, refused and deleted; guests run in host memory.
        Assert.All(outcomes[OpKind.CreateGmem], o => Assert.True(o is "ENOTTY" or "EBADF", o));
        int enotty = outcomes.Values.Sum(list => list.Count(o => o == "ENOTTY"));
        Assert.True(enotty < ops.Count / 10, $"{enotty} of {ops.Count} calls answered ENOTTY");
        Assert.True(outcomes[OpKind.SetRegion2].Count(o => o == "ok") >= 100, "plain memory slots");
        Assert.True(Any(OpKind.SetRegion2, "EINVAL") && Any(OpKind.SetRegion2, "EEXIST"), "KVM_SET_USER_MEMORY_REGION2 limits");
        Assert.Contains(ops, op => op.Kind == OpKind.SetRegion2 && op.D == KvmSharp.Abi.KvmConstants.KVM_MEM_GUEST_MEMFD);
        Assert.All(ops.Where(op => op.Kind == OpKind.GuestRun), op => Assert.True((op.E & FuzzOp.GuestRunInHostMemory) != 0, op.ToString()));
    }

    [Theory]
    [InlineData("ok fd")]
    [InlineData("ENOTTY")]
    public void The_same_seed_generates_the_same_sequence(string gmemOutcome)
    {
        // On a kernel with guest_memfd ("ok fd") and on one without (KVM_CREATE_GUEST_MEMFD answers ENOTTY).
        var a = new OpGenerator(42);
        var b = new OpGenerator(42);
        for (int i = 0; i < 500; i++)
        {
            var op = a.Next();
            Assert.Equal(op, b.Next());
            string outcome = op.Kind == OpKind.CreateGmem ? gmemOutcome : op.Kind is OpKind.OpenKvm or OpKind.CreateVm ? "ok fd" : "ok";
            a.Observe(op, outcome);
            b.Observe(op, outcome);
        }
        Assert.Equal(gmemOutcome == "ENOTTY", a.KernelLacksGuestMemfd);
    }
}
