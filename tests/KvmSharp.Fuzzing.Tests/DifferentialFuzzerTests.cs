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
