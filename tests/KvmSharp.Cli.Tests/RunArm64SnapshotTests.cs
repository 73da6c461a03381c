// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp run … --kernel emulated --arch arm64 --save-snapshot FILE</c>, then <c>kvmsharp run FILE --kernel emulated
/// --arch arm64</c> (snapshot format version 7 records the architecture); a snapshot of the other architecture is one
/// clear error naming both.
/// </summary>
public sealed class RunArm64SnapshotTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmsharp-a64snap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static long Result(CliRun run)
    {
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        using var doc = JsonDocument.Parse(run.Stdout);
        return doc.RootElement.GetProperty("result").GetInt64();
    }

    private string SaveArm64()
    {
        string file = Path.Combine(_dir, "sum-arm64.kvs");
        Assert.Equal(5, Result(CliRun.Of("run", "sum", "--kernel", "emulated", "--arch", "arm64", "--call", "add:2,3", "--save-snapshot", file, "--json")));
        Assert.True(File.Exists(file));
        return file;
    }

    [Fact]
    public void An_arm64_snapshot_file_runs_again_on_the_emulated_arm64_kernel()
    {
        string file = SaveArm64();
        Assert.Equal(42, Result(CliRun.Of("run", file, "--kernel", "emulated", "--arch", "arm64", "--call", "add:40,2", "--json")));
        using var doc = JsonDocument.Parse(CliRun.Of("run", file, "--kernel", "emulated", "--arch", "arm64", "--call", "add:1,1", "--json").Stdout);
        Assert.Equal("eager", doc.RootElement.GetProperty("restore").GetString());
    }

    [Fact]
    public void An_arm64_snapshot_on_an_x86_kernel_is_refused_naming_both_architectures()
    {
        string file = SaveArm64();
        var run = CliRun.Of("run", file, "--kernel", "emulated", "--arch", "x86_64", "--call", "add:1,1");
        Assert.NotEqual(0, run.ExitCode);
        string line = Assert.Single(run.StderrLines);
        Assert.Contains("the snapshot is of an Arm64 micro-VM, this micro-VM is X86_64", line, StringComparison.Ordinal);
        Assert.Contains("--arch arm64", line, StringComparison.Ordinal);
    }

    [Fact]
    public void An_x86_snapshot_on_the_arm64_kernel_is_refused_naming_both_architectures()
    {
        string file = Path.Combine(_dir, "counter.kvs");
        Assert.Equal(1, Result(CliRun.Of("run", "counter", "--kernel", "emulated", "--call", "increment", "--save-snapshot", file, "--json")));
        var run = CliRun.Of("run", file, "--kernel", "emulated", "--arch", "arm64", "--call", "increment");
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("the snapshot is of an X86_64 micro-VM, this micro-VM is Arm64", Assert.Single(run.StderrLines), StringComparison.Ordinal);
    }
}
