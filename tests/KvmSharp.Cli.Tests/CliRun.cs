// SPDX-License-Identifier: MIT

namespace KvmSharp.Cli.Tests;

/// <summary>One in-process run of the command: its exit code and everything it printed.</summary>
public sealed record CliRun(int ExitCode, string Stdout, string Stderr)
{
    public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Runs <c>kvmsharp args…</c> and fails the test if the run left a KVM descriptor open.</summary>
    public static CliRun Of(params string[] args)
    {
        int before = KvmFds.Kvm().Count;
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr);
        int after = KvmFds.Kvm().Count;
        Assert.True(after == before, $"kvmsharp {string.Join(' ', args)} leaked {after - before} KVM descriptor(s)");
        return new CliRun(code, stdout.ToString(), stderr.ToString());
    }
}
