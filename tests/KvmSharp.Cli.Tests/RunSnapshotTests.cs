// SPDX-License-Identifier: MIT
using System.Text.Json;
using KvmSharp.Cli.Commands;

namespace KvmSharp.Cli.Tests;

/// <summary><c>kvmsharp run --call … --save-snapshot FILE</c>, then <c>kvmsharp run FILE</c>.</summary>
public sealed class RunSnapshotTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmsharp-snap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static long Result(CliRun run)
    {
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        using var doc = JsonDocument.Parse(run.Stdout);
        return doc.RootElement.GetProperty("result").GetInt64();
    }

    [Theory]
    [InlineData("linux")]
    [InlineData("emulated")]
    public void A_saved_snapshot_starts_the_next_run_where_the_last_one_ended(string kernel)
    {
        string file = Path.Combine(_dir, "counter.kvs");
        var first = CliRun.Of("run", "counter", "--kernel", kernel, "--call", "init:0", "--call", "increment", "--call", "increment", "--save-snapshot", file);
        Assert.True(first.ExitCode == 0, first.Stdout + first.Stderr);
        // One line per call; the last is the run's outcome line.
        Assert.Contains("init(0): exit status 0, result 1024", first.Stdout, StringComparison.Ordinal);
        Assert.Contains("increment(): exit status 0, result 2", first.Stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(file));

        // From the snapshot, twice: the same state each time (the file is not changed by running it).
        Assert.Equal(3, Result(CliRun.Of("run", file, "--kernel", kernel, "--call", "increment", "--json")));
        Assert.Equal(3, Result(CliRun.Of("run", file, "--kernel", kernel, "--call", "increment", "--json")));
        // The table init built is in the snapshot too.
        Assert.NotEqual(0, Result(CliRun.Of("run", file, "--kernel", kernel, "--call", "lookup:5", "--json")));
    }

    [Fact]
    public void A_snapshot_taken_on_one_kernel_runs_on_the_other()
    {
        string file = Path.Combine(_dir, "moved.kvs");
        Assert.Equal(1, Result(CliRun.Of("run", "counter", "--call", "increment", "--save-snapshot", file, "--json")));
        Assert.Equal(2, Result(CliRun.Of("run", file, "--kernel", "emulated", "--call", "increment", "--json")));
    }

    [Fact]
    public void A_run_that_does_not_exit_writes_no_snapshot_and_says_so()
    {
        string file = Path.Combine(_dir, "loop.kvs");
        var run = CliRun.Of("run", "loop", "--kernel", "emulated", "--timeout", "100ms", "--save-snapshot", file);
        Assert.Equal(RunCommand.GuestDidNotExit, run.ExitCode);
        Assert.False(File.Exists(file));
        Assert.Contains("--save-snapshot: the run ended in timeout, not exit: no snapshot written", run.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("kvmsharp: the image exports no function 'nosuch' (exports: _start, get, increment, init, lookup)", "--call", "nosuch")]
    [InlineData("kvmsharp: --call 'init:x': 'x' is not an unsigned integer (decimal or 0x hex)", "--call", "init:x")]
    [InlineData("kvmsharp: --call 'init:1,2,3,4,5,6,7': at most 6 arguments, not 7", "--call", "init:1,2,3,4,5,6,7")]
    public void A_bad_call_is_one_usage_line(string message, params string[] options)
    {
        var run = CliRun.Of(["run", "counter", "--kernel", "emulated", "--memory", "host", .. options]);
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal(message, Assert.Single(run.StderrLines));
    }

    [Fact]
    public void A_corrupt_snapshot_file_is_one_usage_line_with_the_offset()
    {
        string file = Path.Combine(_dir, "bad.kvs");
        Assert.Equal(1, Result(CliRun.Of("run", "counter", "--kernel", "emulated", "--call", "increment", "--save-snapshot", file, "--json")));
        byte[] bytes = File.ReadAllBytes(file);
        bytes[^1] ^= 0xff; // the checksum's last byte
        File.WriteAllBytes(file, bytes);
        var run = CliRun.Of("run", file, "--kernel", "emulated", "--memory", "host", "--call", "get");
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        string line = Assert.Single(run.StderrLines);
        Assert.StartsWith($"kvmsharp: {file}: snapshot ChecksumMismatch at offset ", line, StringComparison.Ordinal);
    }
}
