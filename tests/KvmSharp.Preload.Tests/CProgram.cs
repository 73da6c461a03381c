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
        string output = OutputPath(Path.GetFileNameWithoutExtension(relativeSource) +
            (flags.Length == 0 ? "" : "-" + Math.Abs(string.Join(' ', flags).GetHashCode(StringComparison.Ordinal))));
        string? unavailable = Compile("gcc", ["-O2", "-Wall", "-Werror", "-I", Path.Combine(Sources, "uapi", "include"),
            "-I", Path.Combine(Sources, "uapi", "shim"), .. flags, "-o", output, source], relativeSource);
        return unavailable is null ? new CProgram(output, null) : new CProgram(null, unavailable);
    }

    /// <summary>Where this test run puts the program called <paramref name="name"/>.</summary>
    public static string OutputPath(string name)
    {
        string directory = Path.Combine(Path.GetTempPath(), $"kvmsharp-preload-tests-{Environment.ProcessId}");
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, name);
    }

    /// <summary>
    /// Runs <paramref name="compiler"/> on <paramref name="what"/>: null when it built, why it cannot run when it is
    /// not installed; its errors fail the test.
    /// </summary>
    public static string? Compile(string compiler, IEnumerable<string> arguments, string what)
    {
        var start = new ProcessStartInfo(compiler) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string arg in arguments) start.ArgumentList.Add(arg);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"{Path.GetFileName(compiler)} cannot run here ({e.Message}): the programs of kvmsharp exec's tests are built with it";
        }
        using (process)
        {
            string errors = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"{Path.GetFileName(compiler)} failed on {what}:\n{errors}");
        }
        return null;
    }
}
