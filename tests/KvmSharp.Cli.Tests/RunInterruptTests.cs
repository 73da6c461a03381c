// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using KvmSharp.Cli.Commands;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// Ctrl+C (SIGINT) or SIGTERM during <c>kvmsharp run</c> stops the guest and the run still reports its outcome,
/// <c>cancelled</c>, with exit code 130, instead of the process dying with the guest's console half-written.
/// </summary>
public sealed class RunInterruptTests
{
    public static TheoryData<string> Kernels => new() { "linux", "emulated" };

    /// <summary>In process: the run's token is what the signal handlers cancel.</summary>
    [SkippableTheory]
    [MemberData(nameof(Kernels))]
    public void A_cancelled_run_reports_cancelled_and_exits_130(string kernel)
    {
        Skip.If(kernel == "linux" && KvmHost.UnavailableReason is not null, KvmHost.UnavailableReason);
        var request = kernel == "linux" ? new KernelRequest(KernelKind.Linux) : new KernelRequest(KernelKind.Emulated);
        using var output = new StringWriter();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        int code = RunCommand.Run("loop", "2M", "30s", json: true, output, request, cancellationToken: cts.Token);
        Assert.Equal(RunCommand.Interrupted, code);
        using var doc = JsonDocument.Parse(output.ToString());
        Assert.Equal("cancelled", doc.RootElement.GetProperty("outcome").GetString());
        Assert.Null(doc.RootElement.GetProperty("result").GetString());
    }

    /// <summary>
    /// The real thing: a <c>kvmsharp run loop</c> process gets SIGINT (or SIGTERM) once its vCPU exists (its fd shows
    /// in /proc), and prints the outcome line before it exits with 130. The process is found by its command line (a
    /// limit no other run uses) and its vCPU descriptor, not by the started process's id: where the test host starts
    /// programs through a wrapper, that id is the wrapper's. A process tree started in the background by a
    /// non-interactive shell ignores SIGINT (SIG_IGN is inherited across exec, and .NET keeps an inherited SIG_IGN for
    /// SIGINT, as a background job should): then the SIGINT run is skipped with that reason.
    /// </summary>
    [SkippableTheory]
    [InlineData("INT")]
    [InlineData("TERM")]
    public void A_signal_stops_the_guest_of_a_running_process_which_prints_its_outcome(string signal)
    {
        Skip.If(KvmHost.UnavailableReason is not null, KvmHost.UnavailableReason);
        Skip.If(signal == "INT" && SigintIgnored(),
            "SIGINT is ignored in this process tree (SigIgn in /proc/self/status: started in the background), so kvmsharp inherits that");
        string dll = typeof(CliApp).Assembly.Location;
        string marker = $"{Random.Shared.Next(60_000, 99_999)}ms"; // the limit: ≥ 60 s, and no other process has it
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { dll, "run", "loop", "--timeout", marker }) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        int? runner = null;
        try
        {
            var waited = Stopwatch.StartNew();
            while ((runner = RunnerWithVcpu(marker)) is null)
            {
                // The message only once it exited: stderr.Result waits for the end of the process.
                if (process.HasExited) Assert.Fail($"kvmsharp exited early ({stderr.Result})");
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), "no kvmsharp process held a vCPU after 30 s");
                Thread.Sleep(20);
            }
            Thread.Sleep(100); // in KVM_RUN by now, or about to be: the cancellation reaches it either way
            Signal(signal, runner.Value);
            if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                Signal("KILL", runner.Value);
                process.WaitForExit();
                Assert.Fail($"kvmsharp did not stop within 30 s of SIG{signal}; stdout: {stdout.Result}; stderr: {stderr.Result}");
            }
        }
        finally
        {
            if (!process.HasExited && runner is int pid) Signal("KILL", pid);
        }
        Assert.Equal(RunCommand.Interrupted, process.ExitCode);
        Assert.Contains("cancelled: the call's CancellationToken was cancelled", stdout.Result, StringComparison.Ordinal);
    }

    /// <summary>True when this process ignores SIGINT (bit 1 of SigIgn), which a child started from it inherits.</summary>
    private static bool SigintIgnored()
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        ulong ignored = ulong.Parse(line["SigIgn:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return (ignored & (1UL << (2 - 1))) != 0;
    }

    private static void Signal(string signal, int pid)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>The process whose command line has <paramref name="marker"/> and that has a KVM vCPU descriptor open.</summary>
    private static int? RunnerWithVcpu(string marker)
    {
        foreach (string dir in Entries("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            if (!Read($"{dir}/cmdline").Split('\0').Contains(marker)) continue;
            if (Links($"{dir}/fd").Any(target => target.StartsWith("anon_inode:kvm-vcpu", StringComparison.Ordinal))) return pid;
        }
        return null;
    }

    // /proc entries come and go as processes open and close descriptors or exit: a vanished one reads as absent.
    private static IEnumerable<string> Entries(string directory)
    {
        try
        {
            return Directory.GetFileSystemEntries(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static IEnumerable<string> Links(string directory) =>
        Entries(directory).Select(fd =>
        {
            try
            {
                return new FileInfo(fd).LinkTarget ?? "";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return "";
            }
        });

    private static string Read(string file)
    {
        try
        {
            return File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
