// SPDX-License-Identifier: MIT
using System.Text.Json;
using KvmSharp.Cli.Commands;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp run --json</c> prints each way a run is stopped from outside as its own outcome, with the guest's RIP:
/// <c>timeout</c> (--timeout), <c>cancelled</c> (the run's token: SIGINT/SIGTERM), <c>max_exits</c> (--max-exits), on
/// both kernels.
/// </summary>
public sealed class RunStopOutcomeTests
{
    public static TheoryData<string> Kernels => new() { "linux", "emulated" };

    private static KernelRequest Request(string kernel)
    {
        Skip.If(kernel == "linux" && KvmHost.UnavailableReason is not null, KvmHost.UnavailableReason);
        return kernel == "linux" ? new KernelRequest(KernelKind.Linux) : new KernelRequest(KernelKind.Emulated);
    }

    private static JsonElement Json(StringWriter output) => JsonDocument.Parse(output.ToString()).RootElement.Clone();

    [SkippableTheory]
    [MemberData(nameof(Kernels))]
    public void A_runaway_guest_is_timeout_with_its_rip(string kernel)
    {
        using var output = new StringWriter();
        using var never = new CancellationTokenSource();
        int code = RunCommand.Run("loop", "2M", "50ms", json: true, output, Request(kernel), cancellationToken: never.Token);
        Assert.Equal(RunCommand.GuestDidNotExit, code);
        JsonElement root = Json(output);
        Assert.Equal("timeout", root.GetProperty("outcome").GetString());
        Assert.Contains("wall-clock limit", root.GetProperty("detail").GetString(), StringComparison.Ordinal);
        ulong entry = Misbehaving.EndlessLoopImage().Entry;
        Assert.InRange(root.GetProperty("rip").GetUInt64(), entry, entry + 0x40);
    }

    /// <summary>Deterministic: the token is cancelled before the run, so the guest is stopped before its first instruction.</summary>
    [SkippableTheory]
    [MemberData(nameof(Kernels))]
    public void A_cancelled_run_is_cancelled_not_timeout_with_the_rip_where_it_stopped(string kernel)
    {
        using var output = new StringWriter();
        int code = RunCommand.Run("loop", "2M", "30s", json: true, output, Request(kernel), cancellationToken: new CancellationToken(canceled: true));
        Assert.Equal(RunCommand.Interrupted, code);
        JsonElement root = Json(output);
        Assert.Equal("cancelled", root.GetProperty("outcome").GetString());
        Assert.Contains("CancellationToken", root.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(Misbehaving.EndlessLoopImage().Entry, root.GetProperty("rip").GetUInt64());
    }

    [SkippableTheory]
    [MemberData(nameof(Kernels))]
    public void The_exit_budget_is_max_exits(string kernel)
    {
        using var output = new StringWriter();
        int code = RunCommand.Run("hello", "2M", "30s", json: true, output, Request(kernel), maxExits: 3);
        Assert.Equal(RunCommand.GuestDidNotExit, code);
        JsonElement root = Json(output);
        Assert.Equal("max_exits", root.GetProperty("outcome").GetString());
        Assert.Equal(3, root.GetProperty("exits").GetInt64());
        // Each character costs a COM1 exit (and a status read): three exits print the first character, no more.
        string console = root.GetProperty("console").GetString()!;
        Assert.True(console.Length is > 0 and < 3 && "Hello".StartsWith(console, StringComparison.Ordinal), $"console '{console}'");
    }

    [Fact]
    public void Max_exits_on_the_command_line_reaches_the_run()
    {
        var run = CliRun.Of("run", "hello", "--json", "--kernel", "emulated", "--max-exits", "5");
        Assert.Equal(RunCommand.GuestDidNotExit, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        Assert.Equal("max_exits", doc.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(5, doc.RootElement.GetProperty("exits").GetInt64());
    }
}
