// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Net;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The set-up the gdb stub's tests share: a micro-VM's options with the stub on a loopback port, a call started under
/// it with a client connected (<see cref="DebuggedCall"/>), and real gdb run in batch mode against it
/// (<see cref="RunRealGdb"/>).
/// </summary>
internal static class GdbTestHost
{
    /// <summary>Any free loopback port.</summary>
    public static readonly IPEndPoint AnyLoopbackPort = new(IPAddress.Loopback, 0);

    /// <summary><paramref name="k"/>'s options with the stub on, and <paramref name="timeout"/> when given.</summary>
    public static MicroVmOptions Debugged(TestKernel k, TimeSpan? timeout = null)
    {
        MicroVmOptions options = k.Options(null) with { GdbEndpoint = AnyLoopbackPort };
        return timeout is TimeSpan t ? options with { Timeout = t } : options;
    }

    /// <summary>The call's result, failing the test when it does not end within a minute.</summary>
    public static CallResult Finish(Task<CallResult> call)
    {
        Assert.True(call.Wait(TimeSpan.FromSeconds(60)), "the call did not end");
        return call.Result;
    }

    /// <summary>Real gdb's path, or null (it is not installed for CI).</summary>
    public static string? GdbPath => Environment.GetEnvironmentVariable("PATH")?.Split(':')
        .Select(d => Path.Combine(d, "gdb")).FirstOrDefault(File.Exists);

    /// <summary>Skips the test when real gdb is not installed.</summary>
    public static void SkipUnlessGdb() =>
        Skip.If(GdbPath is null, "gdb is not installed (an optional check against real gdb; CI does not install it)");

    /// <summary>
    /// Runs real gdb in batch mode (no init files) against <paramref name="endpoint"/> as an x86-64 target, then
    /// <paramref name="commands"/>; returns its stdout and stderr once it exited.
    /// </summary>
    public static string RunRealGdb(IPEndPoint endpoint, params string[] commands)
    {
        var start = new ProcessStartInfo(GdbPath!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in (string[])["-batch", "-nx", "-ex", "set architecture i386:x86-64", "-ex", $"target remote {endpoint}"])
            start.ArgumentList.Add(arg);
        foreach (string command in commands)
        {
            start.ArgumentList.Add("-ex");
            start.ArgumentList.Add(command);
        }
        using var gdb = Process.Start(start)!;
        Task<string> error = gdb.StandardError.ReadToEndAsync();
        string output = gdb.StandardOutput.ReadToEnd();
        Assert.True(gdb.WaitForExit(60_000), output);
        return output + error.Result;
    }
}

/// <summary>A call of a debugged micro-VM, started on the thread pool, with a stub client connected to it.</summary>
internal sealed class DebuggedCall : IDisposable
{
    private DebuggedCall(Task<CallResult> call, RspClient gdb)
    {
        Call = call;
        Gdb = gdb;
    }

    /// <summary>The call.</summary>
    public Task<CallResult> Call { get; }

    /// <summary>The client, connected before the call's first instruction.</summary>
    public RspClient Gdb { get; }

    /// <summary>Starts <paramref name="call"/> on <paramref name="vm"/> and connects to its stub.</summary>
    public static DebuggedCall Start(MicroVm vm, Func<MicroVm, CallResult> call)
    {
        Task<CallResult> task = Task.Run(() => call(vm));
        return new DebuggedCall(task, RspClient.Connect(vm.DebuggerEndpoint!));
    }

    /// <summary>The call's result (<see cref="GdbTestHost.Finish"/>).</summary>
    public CallResult Finish() => GdbTestHost.Finish(Call);

    /// <summary>
    /// Closes the connection (the call goes on, detached, unless it already ended) and gives the call a few seconds to
    /// end: a test that failed mid-session must not dispose the micro-VM under a call still running (that is a host
    /// fault in the run loop, not a test failure).
    /// </summary>
    public void Dispose()
    {
        Gdb.Dispose();
        try
        {
            Call.Wait(TimeSpan.FromSeconds(10));
        }
        catch (AggregateException)
        {
            // the call's own failure is the test's to report, through Finish
        }
    }
}
