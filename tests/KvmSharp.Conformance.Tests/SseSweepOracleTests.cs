// SPDX-License-Identifier: MIT
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using KvmSharp.Conformance.Cases;

namespace KvmSharp.Conformance.Tests;

/// <summary>
/// The SSE sweeps' (and the x86-64-v3 gathers') expected digests are this CPU's, not numbers copied once: a probe in Oracles/ runs the same
/// instructions on the same inputs (under the same MXCSR values) on the test host (gcc, inline assembly) and must
/// print every digest its case's table lists. The emulator is held to that table by the case itself.
/// </summary>
public sealed partial class SseSweepOracleTests
{
    /// <summary>Oracles/sse_sweep.c: the SSE/SSE2 arithmetic of <see cref="SseArithmeticCases"/>.</summary>
    [SkippableFact]
    public void The_sweep_digests_are_what_this_cpu_computes() =>
        AssertProbePrints("sse_sweep", SseArithmeticCases.SweepOracleDigests);

    /// <summary>Oracles/sse_v2_sweep.c: the SSE3/SSE4.1 floating point and PCMPxSTRx of <see cref="SseV2Sweep"/>.</summary>
    [SkippableFact]
    public void The_v2_sweep_digests_are_what_this_cpu_computes() =>
        AssertProbePrints("sse_v2_sweep", SseV2Sweep.SweepOracleDigests);

    /// <summary>Oracles/v3_gather_maskmov.c: the gathers and masked moves of <see cref="VexV3GatherCases"/> (needs AVX2).</summary>
    [SkippableFact]
    public void The_gather_and_masked_move_digests_are_what_this_cpu_computes()
    {
        Skip.IfNot(System.Runtime.Intrinsics.X86.Avx2.IsSupported, "this CPU has no AVX2: it cannot run the probe");
        AssertProbePrints("v3_gather_maskmov", VexV3GatherCases.OracleDigests);
    }

    /// <summary>Oracles/v3_vtest.c: PTEST, VPTEST and VTESTPS/PD of <see cref="VexTestCases"/> (needs AVX).</summary>
    [SkippableFact]
    public void The_ptest_and_vtest_digests_are_what_this_cpu_computes()
    {
        Skip.IfNot(System.Runtime.Intrinsics.X86.Avx.IsSupported, "this CPU has no AVX: it cannot run the probe");
        AssertProbePrints("v3_vtest", VexTestCases.OracleDigests);
    }

    private static void AssertProbePrints(string probeName, IReadOnlyList<(string Name, ulong Digest)> table)
    {
        string probe = Path.Combine(AppContext.BaseDirectory, "Oracles", probeName + ".c");
        Assert.True(File.Exists(probe), $"{probe} was not copied next to the test assembly: check the Oracles items in the csproj");
        string dir = Directory.CreateTempSubdirectory("kvmsharp-" + probeName).FullName;
        try
        {
            string exe = Path.Combine(dir, probeName);
            try
            {
                Run("gcc", ["-std=gnu11", "-O2", "-Wall", "-Werror", "-o", exe, probe]);
            }
            catch (Win32Exception e) // the process could not start: gcc is not installed
            {
                Skip.If(true, $"gcc is not installed ({e.Message}): {probeName}'s digests cannot be recomputed on this CPU");
            }
            var cpu = new Dictionary<string, ulong>(StringComparer.Ordinal);
            foreach (Match m in DigestLine().Matches(Run(exe, [])))
                cpu.Add(m.Groups[1].Value, ulong.Parse(m.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
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
