// SPDX-License-Identifier: MIT
using KvmSharp.Conformance;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing.Tests;

public class DifferentialFuzzerTests
{
    [KvmFact]
    public void The_real_kernel_agrees_with_itself()
    {
        // A fuzzer that reported divergences between two identical kernels would be measuring its own noise.
        var report = new DifferentialFuzzer(() => LinuxKernel.Instance, () => LinuxKernel.Instance).Run(ops: 2000, seed: 7);
        Assert.Equal(2000, report.Ops);
        Assert.Empty(report.Divergences);
    }

    [KvmFact]
    public void A_planted_errno_bug_is_found_and_reduced()
    {
        var fuzzer = new DifferentialFuzzer(() => LinuxKernel.Instance, () => new LyingKernel(LinuxKernel.Instance)) { MaxDivergences = 1 };
        var report = fuzzer.Run(ops: 20000, seed: 1);
        var divergence = Assert.Single(report.Divergences);
        Assert.StartsWith("fallocate(", divergence.Op, StringComparison.Ordinal);
        Assert.Equal("ok", divergence.Reference);
        Assert.Equal("EINVAL", divergence.Candidate);
        // open, create VM, create gmem, the punch: anything longer was not reduced.
        Assert.InRange(divergence.Reproducer.Count, 2, 4);
        Assert.Equal(divergence.Op, divergence.Reproducer[^1]);
    }

    [KvmFact]
    public void The_emulator_preset_for_this_host_agrees_with_the_real_kernel()
    {
        var fuzzer = new DifferentialFuzzer(() => LinuxKernel.Instance, () => KernelTarget.Emulated.CreateKernel(EmulatedProfile.LikeThisHost));
        // A fixed seed keeps CI reproducible; `kvmsharp fuzz --seed S` explores others.
        var report = fuzzer.Run(ops: 5000, seed: 1);
        Assert.True(report.Divergences.Count == 0,
            $"seed {report.Seed}: " + string.Join("\n", report.Divergences.Select(d => $"op {d.OpIndex} {d.Op}: linux {d.Reference}, emulated {d.Candidate}; reproducer:\n  " + string.Join("\n  ", d.Reproducer))));
    }

    [KvmFact]
    public void The_calls_added_later_are_generated_and_get_past_the_argument_checks()
    {
        // A new op kind that always failed (a bad handle, a setup error) would agree on both kernels and test nothing.
        // Sessions as DifferentialFuzzer makes them (400 calls each, seed 1), so early-VM states (no memslot yet) recur.
        var outcomes = new Dictionary<OpKind, List<string>>();
        for (int n = 0; n < 12; n++)
        {
            var generator = new OpGenerator(DifferentialFuzzer.SessionSeed(1, n));
            using var session = new KernelSession(LinuxKernel.Instance);
            for (int i = 0; i < 400; i++)
            {
                var op = generator.Next();
                string outcome = session.Apply(op);
                generator.Observe(op, outcome);
                if (!outcomes.TryGetValue(op.Kind, out var list)) outcomes[op.Kind] = list = [];
                list.Add(outcome);
            }
        }
        bool Any(OpKind kind, string prefix) => outcomes.GetValueOrDefault(kind, []).Any(o => o.StartsWith(prefix, StringComparison.Ordinal));
        Assert.True(Any(OpKind.CreateVcpu, "ok fd"), "KVM_CREATE_VCPU never succeeded");
        Assert.True(Any(OpKind.CreateVcpu, "EEXIST") && Any(OpKind.CreateVcpu, "EINVAL"), "KVM_CREATE_VCPU never hit its limits");
        Assert.True(Any(OpKind.EnableCap, "ok") && Any(OpKind.EnableCap, "EINVAL"), "KVM_ENABLE_CAP");
        Assert.True(Any(OpKind.SetTssAddr, "ok"), "KVM_SET_TSS_ADDR");
        Assert.True(Any(OpKind.RegsRoundTrip, "set ok, get ok"), "KVM_SET_REGS");
        Assert.True(Any(OpKind.SregsRoundTrip, "set ok") && Any(OpKind.SregsRoundTrip, "set EINVAL"), "KVM_SET_SREGS");
        Assert.True(Any(OpKind.RunVcpu, "EINTR") && Any(OpKind.RunVcpu, "ENOSPC"), "KVM_RUN: " + string.Join(", ", outcomes.GetValueOrDefault(OpKind.RunVcpu, []).Distinct()));
        Assert.True(Any(OpKind.PreFault, "EINVAL") && Any(OpKind.PreFault, "EOPNOTSUPP"), "KVM_PRE_FAULT_MEMORY");
        Assert.True(Any(OpKind.Madvise, "ok") && Any(OpKind.Madvise, "EINVAL"), "madvise");
        Assert.True(outcomes[OpKind.GuestRun].Count(o => o.Contains("hlt |", StringComparison.Ordinal)) >= 20, "guest runs");
    }

    [Fact]
    public void The_same_seed_generates_the_same_sequence()
    {
        var a = new OpGenerator(42);
        var b = new OpGenerator(42);
        for (int i = 0; i < 500; i++)
        {
            var op = a.Next();
            Assert.Equal(op, b.Next());
            string outcome = op.Kind is OpKind.OpenKvm or OpKind.CreateVm or OpKind.CreateGmem ? "ok fd" : "ok";
            a.Observe(op, outcome);
            b.Observe(op, outcome);
        }
    }
}
