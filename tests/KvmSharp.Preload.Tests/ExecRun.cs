// SPDX-License-Identifier: MIT
using KvmSharp.Cli;

namespace KvmSharp.Preload.Tests;

/// <summary>One <c>kvmsharp exec</c> run, in process: its exit code and what the program printed.</summary>
internal sealed record ExecRun(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>
    /// <c>kvmsharp exec OPTIONS -- PROGRAM ARGS</c>; fails the test if the run left a descriptor of this process open
    /// (the bridge runs in the child: nothing of it may stay here).
    /// </summary>
    public static ExecRun Of(string[] options, params string[] program)
    {
        WarmUp.Value.ToString();
        var before = OpenDescriptors();
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = CliApp.Run(["exec", .. options, "--", .. program], stdout, stderr);
        string[] left = Leftovers(before);
        Assert.True(left.Length == 0, $"kvmsharp exec {string.Join(' ', options)} -- {string.Join(' ', program)} left {string.Join(", ", left)} open");
        return new ExecRun(code, stdout.ToString(), stderr.ToString());
    }

    public string[] Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The "# totals: pass:P fail:F skip:S" line of a TAP program (CPrograms/tap.h); fails the test without one.</summary>
    public (int Pass, int Fail, int Skip) TapTotals()
    {
        var m = System.Text.RegularExpressions.Regex.Match(Stdout, @"# totals: pass:(\d+) fail:(\d+) skip:(\d+)");
        Assert.True(m.Success, $"no totals line\n{this}");
        return (Number(1), Number(2), Number(3));

        int Number(int group) => int.Parse(m.Groups[group].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";

    // The first run loads the command's assemblies and makes .NET open what it keeps for every child process (the
    // SIGCHLD pipe of System.Native): not a leak of the verb, so one run is made before the first count.
    private static readonly Lazy<int> WarmUp = new(() =>
        CliApp.Run(["exec", "--kernel", "linux", "--", "/bin/true"], TextWriter.Null, TextWriter.Null));

    // What is open now and was not before. The runtime of this process opens files of its own for a moment (CI met
    // /sys/devices/system/cpu/possible open right after a run): a descriptor counts as left behind only if it is
    // still open a second later.
    private static string[] Leftovers(HashSet<string> before)
    {
        string[] left = [.. OpenDescriptors().Except(before)];
        for (int i = 0; i < 10 && left.Length > 0; i++)
        {
            Thread.Sleep(100);
            left = [.. OpenDescriptors().Except(before).Intersect(left)];
        }
        return left;
    }

    // "fd -> target": a number reused for another file counts as a new one. A descriptor closed while the directory
    // is read (another thread's, or the listing's own) has no target any more and is left out.
    private static HashSet<string> OpenDescriptors()
    {
        var open = new HashSet<string>();
        foreach (var f in new DirectoryInfo("/proc/self/fd").GetFiles())
        {
            try
            {
                if (f.LinkTarget is string target) open.Add($"{f.Name} -> {target}");
            }
            catch (IOException)
            {
            }
        }
        return open;
    }
}
