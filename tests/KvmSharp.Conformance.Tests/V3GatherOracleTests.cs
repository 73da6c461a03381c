// SPDX-License-Identifier: MIT
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using KvmSharp.Conformance.Cases;

namespace KvmSharp.Conformance.Tests;

/// <summary>
/// <see cref="VexV3GatherCases.OracleDigests"/> are this CPU's, not numbers copied once: Oracles/v3_gather_maskmov.c
/// runs the same gathers and masked moves on the same inputs on the test host (gcc, inline assembly) and must print
/// every digest of the table. The emulator is held to the table by the case itself.
/// </summary>
public sealed partial class V3GatherOracleTests
{
    [SkippableFact]
    public void The_gather_and_masked_move_digests_are_what_this_cpu_computes()
    {
        Skip.IfNot(System.Runtime.Intrinsics.X86.Avx2.IsSupported, "this CPU has no AVX2: it cannot run the probe");
        string probe = Path.Combine(AppContext.BaseDirectory, "Oracles", "v3_gather_maskmov.c");
        Assert.True(File.Exists(probe), $"{probe} was not copied next to the test assembly: check the Oracles items in the csproj");
        string dir = Directory.CreateTempSubdirectory("kvmsharp-v3-gather").FullName;
        try
        {
            string exe = Path.Combine(dir, "probe");
            try
            {
                Run("gcc", ["-std=gnu11", "-O2", "-Wall", "-Werror", "-o", exe, probe]);
            }
            catch (Win32Exception e) // the process could not start: gcc is not installed
            {
                Skip.If(true, $"gcc is not installed ({e.Message}): the digests cannot be recomputed on this CPU");
            }
            var cpu = new Dictionary<string, ulong>(StringComparer.Ordinal);
            foreach (Match m in DigestLine().Matches(Run(exe, [])))
                cpu.Add(m.Groups[1].Value, ulong.Parse(m.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            var table = VexV3GatherCases.OracleDigests;
            Assert.Equal(table.Count, cpu.Count);
            var wrong = table.Where(t => !cpu.TryGetValue(t.Name, out ulong d) || d != t.Digest)
                .Select(t => $"{t.Name}: table 0x{t.Digest:X16}, this CPU {(cpu.TryGetValue(t.Name, out ulong d) ? $"0x{d:X16}" : "nothing")}").ToList();
            Assert.True(wrong.Count == 0, string.Join("; ", wrong));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [GeneratedRegex("""\("([a-z0-9]+)", 0x([0-9A-F]{16})UL\)""")]
    private static partial Regex DigestLine();

    private static string Run(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} failed ({p.ExitCode}): {stderr.Result}");
        return stdout;
    }
}
