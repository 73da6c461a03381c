// SPDX-License-Identifier: MIT
using System.Diagnostics;

namespace KvmSharp.Preload.Tests;

/// <summary>
/// A C program of CPrograms/ (copied beside the test assembly), built once per test run with gcc against the vendored
/// 6.18 uAPI headers; gcc missing makes <see cref="Unavailable"/> say so (the tests then skip with that reason).
/// </summary>
internal sealed class CProgram
{
    private static readonly string Sources = Path.Combine(AppContext.BaseDirectory, "CPrograms");
    private static readonly Lock BuildLock = new();
    private static readonly Dictionary<string, CProgram> Built = [];

    private CProgram(string? path, string? unavailable)
    {
        Executable = path;
        Unavailable = unavailable;
    }

    /// <summary>The executable, or null when it could not be built.</summary>
    public string? Executable { get; }

    /// <summary>Why the program is not there (gcc is missing), or null.</summary>
    public string? Unavailable { get; }

    /// <summary>CPrograms/<paramref name="relativeSource"/> built with <paramref name="flags"/> (compiler errors fail the test).</summary>
    public static CProgram Get(string relativeSource, params string[] flags)
    {
        lock (BuildLock)
        {
            string key = relativeSource + "\0" + string.Join(' ', flags);
            if (Built.TryGetValue(key, out var built)) return built;
            built = Build(relativeSource, flags);
            Built[key] = built;
            return built;
        }
    }

    private static CProgram Build(string relativeSource, string[] flags)
    {
        string source = Path.Combine(Sources, relativeSource);
        if (!File.Exists(source)) throw new FileNotFoundException($"{source} was not copied: check the None items in the csproj");
        string output = Path.Combine(Path.GetTempPath(), $"kvmsharp-preload-tests-{Environment.ProcessId}",
            Path.GetFileNameWithoutExtension(relativeSource) + (flags.Length == 0 ? "" : "-" + Math.Abs(string.Join(' ', flags).GetHashCode(StringComparison.Ordinal))));
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        var start = new ProcessStartInfo("gcc") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string arg in (string[])["-O2", "-Wall", "-Werror", "-I", Path.Combine(Sources, "uapi", "include"),
                     "-I", Path.Combine(Sources, "uapi", "shim"), .. flags, "-o", output, source])
            start.ArgumentList.Add(arg);
        Process gcc;
        try
        {
            gcc = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new CProgram(null, $"gcc cannot run here ({e.Message}): the C programs of kvmsharp exec's tests are built with it");
        }
        using (gcc)
        {
            string errors = gcc.StandardError.ReadToEnd();
            gcc.WaitForExit();
            Assert.True(gcc.ExitCode == 0, $"gcc failed on {relativeSource}:\n{errors}");
        }
        return new CProgram(output, null);
    }
}
