// SPDX-License-Identifier: MIT
using System.ComponentModel;
using System.Diagnostics;
using KvmSharp.Cli.Commands;
using KvmSharp.Vmm;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// Builds an arm64 C guest with aarch64-linux-gnu-gcc and <see cref="GuestSdk.Arm64CompilerArguments"/> (GUEST-ABI.md,
/// "arm64 C guests") in a folder <c>new-guest</c> filled; skips the test, with the reason, without the cross compiler.
/// </summary>
internal static class Arm64GuestCompiler
{
    /// <summary>
    /// Writes the guest template to <paramref name="dir"/>, replaces its source with <paramref name="source"/> when
    /// given, and compiles it with <paramref name="extraArguments"/> (e.g. a -march) after the SDK's: the ELF's path.
    /// </summary>
    public static string Build(string dir, string? source = null, params string[] extraArguments)
    {
        var run = CliRun.Of("new-guest", dir);
        Assert.True(run.ExitCode == 0, run.Stderr);
        if (source is not null) File.WriteAllText(Path.Combine(dir, GuestTemplateCommand.SourceFileName), source);
        string elf = Path.Combine(dir, "arm64.elf");
        var psi = new ProcessStartInfo(GuestSdk.Arm64Compiler)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir,
        };
        foreach (string a in GuestSdk.Arm64CompilerArguments) psi.ArgumentList.Add(a);
        foreach (string a in extraArguments) psi.ArgumentList.Add(a);
        foreach (string a in new[] { "-Wall", "-Wextra", "-Werror", "-o", elf, GuestTemplateCommand.SourceFileName }) psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (Win32Exception e)
        {
            Skip.If(true, $"{GuestSdk.Arm64Compiler} (package gcc-aarch64-linux-gnu) is not installed: {e.Message}");
            throw;
        }
        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"{GuestSdk.Arm64Compiler} failed ({p.ExitCode}): {stderr.Result}");
        }
        return elf;
    }
}
