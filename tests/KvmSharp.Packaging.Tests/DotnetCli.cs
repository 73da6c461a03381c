// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace KvmSharp.Packaging.Tests;

/// <summary>One finished run of a child process: exit code and output.</summary>
public sealed record ProcessRun(string Command, int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"{Command} → exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs the dotnet CLI (and installed tools) as child processes, outside the test host's MSBuild state.</summary>
public static class DotnetCli
{
    /// <summary>The dotnet that runs these tests (its folder is DOTNET_ROOT for tool shims).</summary>
    public static string DotnetRoot { get; } =
        Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));

    public static string DotnetPath { get; } = File.Exists(Path.Combine(DotnetRoot, "dotnet")) ? Path.Combine(DotnetRoot, "dotnet") : "dotnet";

    public static ProcessRun Dotnet(string workingDirectory, IReadOnlyDictionary<string, string> environment, TimeSpan timeout,
        params string[] args) => Run(DotnetPath, workingDirectory, environment, timeout, args);

    public static ProcessRun Run(string program, string workingDirectory, IReadOnlyDictionary<string, string> environment,
        TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in args) psi.ArgumentList.Add(arg);
        // The test host runs under `dotnet test`: its MSBuild and test-platform variables would steer a nested build.
        foreach (string key in psi.Environment.Keys.ToList())
        {
            if (key.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || key.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("TESTINGPLATFORM", StringComparison.OrdinalIgnoreCase) || key == "DOTNET_HOST_PATH")
                psi.Environment.Remove(key);
        }
        psi.Environment["DOTNET_ROOT"] = DotnetRoot;
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        foreach (var (key, value) in environment) psi.Environment[key] = value;

        string command = $"{Path.GetFileName(program)} {string.Join(' ', args)}";
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {command}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"{command} did not finish within {timeout}:\n{stdout.Result}\n{stderr.Result}");
        }
        process.WaitForExit();
        return new ProcessRun(command, process.ExitCode, stdout.Result, stderr.Result);
    }
}
