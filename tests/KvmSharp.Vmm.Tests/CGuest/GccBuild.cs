// SPDX-License-Identifier: MIT
using System.ComponentModel;
using System.Diagnostics;

namespace KvmSharp.Vmm.Tests.CGuest;

/// <summary>
/// Builds C at test time with gcc against the guest SDK's header as the package ships it (<see cref="GuestSdk.Header"/>,
/// written into a fresh directory), so every C test exercises the embedded copy a guest author gets.
/// </summary>
internal static class GccBuild
{
    /// <summary>The outcome of a build: the bytes of the output, or why gcc could not run (then the test skips).</summary>
    public sealed record Result(byte[]? Output, string? Unavailable);

    /// <summary>
    /// CGuest/<paramref name="fileName"/> (copied beside the test assembly) built as a guest ELF by
    /// <paramref name="compiler"/> (gcc or clang) with <see cref="GuestSdk.CompilerArguments"/> and -Wall -Wextra
    /// -Werror. Compiler errors fail the test.
    /// </summary>
    public static Result Guest(string fileName, string compiler = "gcc")
    {
        string source = Path.Combine(AppContext.BaseDirectory, "CGuest", fileName);
        if (!File.Exists(source)) throw new FileNotFoundException($"{source} was not copied: check the CGuest items in the csproj");
        return InTempDirectory(dir => Compile(dir, [.. GuestSdk.CompilerArguments, "-Wall", "-Wextra", "-Werror", "-o", "out", source], compiler));
    }

    /// <summary>
    /// CGuest/<paramref name="fileName"/> built as an arm64 guest ELF by the cross compiler
    /// (<see cref="GuestSdk.Arm64Compiler"/>) with <see cref="GuestSdk.Arm64CompilerArguments"/> and -Wall -Wextra -Werror.
    /// </summary>
    public static Result Arm64Guest(string fileName)
    {
        string source = Path.Combine(AppContext.BaseDirectory, "CGuest", fileName);
        if (!File.Exists(source)) throw new FileNotFoundException($"{source} was not copied: check the CGuest items in the csproj");
        return InTempDirectory(dir => Compile(dir, [.. GuestSdk.Arm64CompilerArguments, "-Wall", "-Wextra", "-Werror", "-o", "out", source], GuestSdk.Arm64Compiler));
    }

    /// <summary>
    /// Runs <paramref name="build"/> in a new directory that holds kvmsharp_guest.h (or <paramref name="header"/>
    /// instead), and returns the file "out" it leaves; gcc missing makes an <see cref="Result.Unavailable"/> result.
    /// </summary>
    public static Result InTempDirectory(Action<string> build, string? header = null)
    {
        ArgumentNullException.ThrowIfNull(build);
        string dir = Directory.CreateTempSubdirectory("kvmsharp-cguest").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, GuestSdk.HeaderFileName), header ?? GuestSdk.Header);
            build(dir);
            return new Result(File.ReadAllBytes(Path.Combine(dir, "out")), null);
        }
        catch (Win32Exception e) // the process could not start: the compiler is not installed
        {
            return new Result(null, $"the compiler is not installed ({e.Message})");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The compiler with <paramref name="args"/> in <paramref name="dir"/> (which is also on the include path).</summary>
    public static string Compile(string dir, IEnumerable<string> args, string compiler = "gcc") =>
        Run(compiler, ["-I", dir, .. args], dir);

    /// <summary>Runs a program in <paramref name="dir"/>; its stdout, or an exception with its stderr when it fails.</summary>
    public static string Run(string file, IEnumerable<string> args, string dir)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', psi.ArgumentList)} failed ({p.ExitCode}): {stderr.Result}");
        return stdout;
    }
}
