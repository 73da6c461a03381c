// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>run … --vm-type snp</c> on the emulated kernel with the in-place conversion series (the only kernel here an SNP
/// micro-VM runs on): the first call launches and seals the micro-VM, and the calls after it go through the VMM's
/// guest-side dispatcher (docs/sandbox.md, "SEV-SNP micro-VMs").
/// </summary>
public sealed class RunSnpTests
{
    private static readonly string[] Snp = ["--kernel", "emulated", "--arch", "x86_64", "--vm-type", "snp", "--in-place-conversion"];

    [Fact]
    public void Two_calls_run_in_one_snp_micro_vm_and_the_counter_keeps_its_state()
    {
        var run = CliRun.Of(["run", "counter", "--call", "increment", "--call", "increment", .. Snp]);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("increment(): exit status 0, result 1 ", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("increment(): exit status 0, result 2 ", run.Stdout, StringComparison.Ordinal);

        var json = CliRun.Of(["run", "sum", "--json", "--call", "add:40,2", "--call", "add:1,1", .. Snp]);
        Assert.True(json.ExitCode == 0, json.Stdout + json.Stderr);
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.Equal("exit", doc.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(2UL, doc.RootElement.GetProperty("result").GetUInt64());
    }

    [Fact]
    public void The_counter_demo_runs_its_four_calls_on_an_snp_micro_vm()
    {
        var run = CliRun.Of(["run", "counter", .. Snp]);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("exit status 0, result 3 ", run.Stdout, StringComparison.Ordinal);
    }
}
