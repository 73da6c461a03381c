// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp run FILE --kernel emulated --lazy-restore</c>: a snapshot restored page by page on first touch (KVM
/// userfault and guest_memfd write, on the emulator's X86Userfault profile); the JSON says how it was restored.
/// And <c>--host-tsc-rate</c> for a snapshot whose TSC rate this kernel refuses.
/// </summary>
public sealed class RunLazyRestoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmsharp-lazy-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string CounterSnapshot()
    {
        string file = Path.Combine(_dir, "counter.kvs");
        var save = CliRun.Of("run", "counter", "--kernel", "emulated", "--call", "init:0", "--call", "increment", "--save-snapshot", file, "--json");
        Assert.True(save.ExitCode == 0, save.Stdout + save.Stderr);
        return file;
    }

    private static JsonElement Json(CliRun run)
    {
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        using var doc = JsonDocument.Parse(run.Stdout);
        return doc.RootElement.Clone();
    }

    [Fact]
    public void A_lazily_restored_snapshot_runs_and_says_how_many_pages_it_wrote()
    {
        string file = CounterSnapshot();
        JsonElement lazy = Json(CliRun.Of("run", file, "--kernel", "emulated", "--lazy-restore", "--call", "increment", "--json"));
        Assert.Equal(2, lazy.GetProperty("result").GetInt64());
        Assert.Equal("lazy", lazy.GetProperty("restore").GetString());
        Assert.Equal("guest_memfd", lazy.GetProperty("memory").GetString());
        Assert.InRange(lazy.GetProperty("lazy_pages_populated").GetInt64(), 1, 64); // what the call touched, not the snapshot's every page

        JsonElement eager = Json(CliRun.Of("run", file, "--kernel", "emulated", "--call", "increment", "--json"));
        Assert.Equal(2, eager.GetProperty("result").GetInt64());
        Assert.Equal("eager", eager.GetProperty("restore").GetString());
        Assert.Equal(0, eager.GetProperty("lazy_pages_populated").GetInt64());

        var text = CliRun.Of("run", file, "--kernel", "emulated", "--lazy-restore", "--call", "increment");
        Assert.True(text.ExitCode == 0, text.Stdout + text.Stderr);
        Assert.Contains("restore: lazy, ", text.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--lazy-restore needs KVM userfault and guest_memfd write(2), unmerged proposals no Linux kernel offers: use --kernel emulated", true, "linux")]
    [InlineData("--lazy-restore restores a snapshot: give a snapshot file (--save-snapshot writes one)", false, "emulated")]
    public void Lazy_restore_where_it_cannot_be_is_one_usage_line(string message, bool fromSnapshot, string kernel)
    {
        string target = fromSnapshot ? CounterSnapshot() : "counter";
        var run = CliRun.Of("run", target, "--kernel", kernel, "--lazy-restore");
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal("kvmsharp: " + message, Assert.Single(run.StderrLines));
    }

    /// <summary>
    /// The emulated kernel's TSC runs at 1 GHz, this host's faster and without TSC scaling: its snapshot is refused
    /// here, naming the rate and the switch, and runs with --host-tsc-rate.
    /// </summary>
    [KvmFact]
    public void A_snapshot_of_a_slower_tsc_is_refused_here_unless_host_tsc_rate()
    {
        string file = CounterSnapshot();
        var refused = CliRun.Of("run", file, "--call", "increment", "--json");
        Skip.If(refused.ExitCode == 0, "this host takes the emulator's TSC rate (TSC scaling, or a rate at or below 1 GHz)");
        Assert.Equal(ExitCodes.KernelError, refused.ExitCode);
        string line = Assert.Single(refused.StderrLines);
        Assert.Contains("KVM_SET_TSC_KHZ(1000000) failed with EINVAL", line, StringComparison.Ordinal);
        Assert.Contains("--host-tsc-rate", line, StringComparison.Ordinal);
        Assert.Equal(2, Json(CliRun.Of("run", file, "--call", "increment", "--json", "--host-tsc-rate")).GetProperty("result").GetInt64());
    }
}
