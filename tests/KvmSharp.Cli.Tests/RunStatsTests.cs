// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp run --stats</c>: after the outcome, the vCPU's non-zero binary statistics (KVM_GET_STATS_FD), as lines or
/// as a "vcpu_stats" object with --json, on both kernels.
/// </summary>
public sealed class RunStatsTests
{
    public static TheoryData<string> Kernels => new() { "linux", "emulated" };

    [SkippableTheory]
    [MemberData(nameof(Kernels))]
    public void Stats_follow_the_outcome_and_count_the_runs_exits(string kernel)
    {
        Skip.If(kernel == "linux" && KvmHost.UnavailableReason is not null, KvmHost.UnavailableReason);
        var json = CliRun.Of("run", "hello", "--stats", "--json", "--kernel", kernel);
        Assert.Equal(0, json.ExitCode);
        using var doc = JsonDocument.Parse(json.Stdout);
        ulong exits = doc.RootElement.GetProperty("exits").GetUInt64();
        var stats = doc.RootElement.GetProperty("vcpu_stats");
        // Every KVM_RUN of the call reaches kvm_arch_vcpu_ioctl_run (one fpu_reload each); each of them ends in an exit.
        Assert.Equal(exits, stats.GetProperty("fpu_reload").GetUInt64());
        Assert.True(stats.GetProperty("exits").GetUInt64() >= exits);
        Assert.All(stats.EnumerateObject(), p => Assert.NotEqual(0UL, p.Value.GetUInt64()));

        var text = CliRun.Of("run", "hello", "--stats", "--kernel", kernel);
        Assert.Equal(0, text.ExitCode);
        string[] lines = text.Stdout.Split('\n');
        int at = Array.IndexOf(lines, "vcpu stats:");
        Assert.True(at > 0 && lines[at - 1].StartsWith("exit status 0", StringComparison.Ordinal), text.Stdout);
        Assert.Contains($"  fpu_reload {exits}", lines);
    }
}
