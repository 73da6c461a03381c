// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>run … --vm-type tdx</c> on the emulated kernel with the in-place conversion series: the TD boots itself from the
/// reset vector into the VMM's dispatcher and its port I/O goes through the #VE handler (GUEST-ABI.md, "TDX micro-VMs").
/// </summary>
public sealed class RunTdxTests
{
    [Fact]
    public void Hello_and_two_calls_run_in_one_td_micro_vm()
    {
        var hello = CliRun.Of("run", "hello", "--kernel", "emulated", "--arch", "x86_64", "--vm-type", "tdx", "--in-place-conversion");
        Assert.True(hello.ExitCode == 0, hello.Stdout + hello.Stderr);
        Assert.Contains("Hello from a KvmSharp micro-VM!", hello.Stdout, StringComparison.Ordinal);

        var json = CliRun.Of("run", "sum", "--json", "--call", "add:40,2", "--call", "add:1,1",
            "--kernel", "emulated", "--arch", "x86_64", "--vm-type", "tdx", "--in-place-conversion");
        Assert.True(json.ExitCode == 0, json.Stdout + json.Stderr);
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.Equal("exit", doc.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(2UL, doc.RootElement.GetProperty("result").GetUInt64());
    }

    [Theory]
    [InlineData("tdx")]
    [InlineData("snp")]
    public void Without_in_place_conversion_a_sealed_micro_vm_is_refused_with_the_option_to_add(string vmType)
    {
        var run = CliRun.Of("run", "hello", "--kernel", "emulated", "--arch", "x86_64", "--vm-type", vmType);
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("add --in-place-conversion", run.Stderr, StringComparison.Ordinal);
    }
}
