// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Net;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The set-up the gdb stub's tests share: a micro-VM's options with the stub on a loopback port, a call started under
/// it with a client connected (<see cref="DebuggedCall"/>), and real gdb run in batch mode against it
/// (<see cref="RunRealGdb(RealGdb, IPEndPoint, string[])"/>; gdb-multiarch for arm64 targets).
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

    /// <summary>
    /// The environment variable that names the gdb the x86-64 real-gdb tests run (a path, or a program on PATH), e.g.
    /// gdb-multiarch; unset: gdb on PATH.
    /// </summary>
    public const string GdbVariable = "KVMSHARP_GDB";

    /// <summary>Real gdb's path for the x86-64 tests (<see cref="GdbVariable"/>, else gdb on PATH), or null (not installed: .ci/run installs it).</summary>
    public static string? GdbPath => Find(Environment.GetEnvironmentVariable(GdbVariable) is { Length: > 0 } named ? named : "gdb");

    /// <summary>gdb-multiarch's path (Debian package gdb-multiarch: gdb built with every target, aarch64 too), or null.</summary>
    public static string? GdbMultiarchPath => Find("gdb-multiarch");

    /// <summary><paramref name="program"/> itself when it is a path to a file, else the first file of that name on PATH.</summary>
    private static string? Find(string program) => program.Contains('/', StringComparison.Ordinal)
        ? (File.Exists(program) ? program : null)
        : Environment.GetEnvironmentVariable("PATH")?.Split(':').Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    /// <summary>Skips the test when real gdb is not installed.</summary>
    public static void SkipUnlessGdb() =>
        Skip.If(GdbPath is null, "gdb is not installed (an optional check against real gdb; .ci/run installs it)");

    /// <summary>Skips the test when gdb-multiarch (the only gdb here that debugs aarch64) is not installed.</summary>
    public static void SkipUnlessGdbMultiarch() =>
        Skip.If(GdbMultiarchPath is null,
            "gdb-multiarch is not installed (an optional check of the arm64 stub against real gdb: apt-get install gdb-multiarch)");

    /// <summary>
    /// Runs real gdb (<see cref="GdbPath"/>) in batch mode (no init files) against <paramref name="endpoint"/> as an
    /// x86-64 target, then <paramref name="commands"/>; returns its stdout and stderr once it exited.
    /// </summary>
    public static string RunRealGdb(IPEndPoint endpoint, params string[] commands) =>
        RunRealGdb(new RealGdb(GdbPath!, "i386:x86-64"), endpoint, commands);

    /// <summary>
    /// Runs <paramref name="gdb"/> in batch mode (no init files): its architecture set, its symbol file loaded when it
    /// has one, connected to <paramref name="endpoint"/>, then <paramref name="commands"/>; returns its stdout and stderr
    /// once it exited.
    /// </summary>
    public static string RunRealGdb(RealGdb gdb, IPEndPoint endpoint, params string[] commands)
    {
        var start = new ProcessStartInfo(gdb.Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        List<string> setup = ["-batch", "-nx", "-ex", $"set architecture {gdb.Architecture}"];
        if (gdb.SymbolFile is string file) setup.AddRange(["-ex", $"file {file}"]);
        setup.AddRange(["-ex", $"target remote {endpoint}"]);
        foreach (string arg in setup)
            start.ArgumentList.Add(arg);
        foreach (string command in commands)
        {
            start.ArgumentList.Add("-ex");
            start.ArgumentList.Add(command);
        }
        using var process = Process.Start(start)!;
        Task<string> error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(60_000), output);
        return output + error.Result;
    }
}

/// <summary>
/// A gdb to run against the stub: its <paramref name="Path"/>, the <paramref name="Architecture"/> it is set to
/// (<c>set architecture</c>: i386:x86-64, aarch64), and the guest's ELF with its symbols, or null.
/// </summary>
internal sealed record RealGdb(string Path, string Architecture, string? SymbolFile = null);

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
