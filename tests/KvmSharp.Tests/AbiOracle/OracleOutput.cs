// SPDX-License-Identifier: MIT
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace KvmSharp.Tests.AbiOracle;

/// <summary>
/// oracle.c built with gcc against the vendored upstream headers (copied next to the test assembly by the csproj) and
/// run once per test process: its "name value" lines, or why it could not be built (gcc missing: skip, not pass).
/// </summary>
internal static class OracleOutput
{
    private static readonly Lazy<(IReadOnlyDictionary<string, ulong>? Values, string? Unavailable)> Built = new(Build);

    /// <summary>The oracle's values by name; skips the calling test (with the reason) when gcc is missing.</summary>
    public static IReadOnlyDictionary<string, ulong> ValuesOrSkip()
    {
        Skip.If(Built.Value.Values is null, $"the ABI oracle cannot be built: {Built.Value.Unavailable}");
        return Built.Value.Values!;
    }

    private static (IReadOnlyDictionary<string, ulong>?, string?) Build()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "AbiOracle");
        if (!File.Exists(Path.Combine(source, "oracle.c")))
            throw new FileNotFoundException($"oracle.c was not copied to {source}: check the AbiOracle items in the csproj");
        string dir = Directory.CreateTempSubdirectory("kvmsharp-abi-oracle").FullName;
        try
        {
            string exe = Path.Combine(dir, "oracle");
            // -Werror: a header that only half-compiles must fail the test, not feed it partial numbers.
            Run("gcc", ["-std=gnu11", "-Wall", "-Wextra", "-Werror",
                "-I", Path.Combine(source, "shim"), "-I", Path.Combine(source, "include"),
                "-o", exe, Path.Combine(source, "oracle.c")]);
            return (Parse(Run(exe, [])), null);
        }
        catch (Win32Exception e) // the process could not start: gcc is not installed
        {
            return (null, $"gcc is not installed ({e.Message})");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string Run(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} failed ({p.ExitCode}): {stderr.Result}");
        return stdout;
    }

    private static Dictionary<string, ulong> Parse(string output)
    {
        var values = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.LastIndexOf(' ');
            string name = line[..space];
            // A name printed twice with two values would make the comparison depend on order: refuse it.
            if (!values.TryAdd(name, ulong.Parse(line[(space + 1)..], CultureInfo.InvariantCulture)))
                throw new InvalidOperationException($"oracle printed {name} twice");
        }
        return values;
    }
}
