// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace KvmSharp.Cli.Tests;

/// <summary><c>kvmsharp conformance</c> and <c>kvmsharp fuzz</c>, run in process.</summary>
public sealed class ConformanceAndFuzzCommandTests
{
    [Fact]
    public void Conformance_json_for_one_kernel_counts_the_filtered_cases()
    {
        var run = CliRun.Of("conformance", "--kernel", "emulated", "--filter", "test_f", "--json");
        Assert.Equal(0, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        var root = doc.RootElement;
        Assert.Equal("emulated", root.GetProperty("kernel").GetString());
        var cases = root.GetProperty("cases").EnumerateArray().ToList();
        // test_fallocate, test_fault_overflow, test_fault_private, test_file_read_write, test_file_size.
        Assert.Equal(5, cases.Count);
        Assert.All(cases, c => Assert.StartsWith("test_f", c.GetProperty("name").GetString(), StringComparison.Ordinal));
        Assert.Equal(cases.Count(c => c.GetProperty("result").GetString() == "passed"), root.GetProperty("passed").GetInt32());
        Assert.Equal(0, root.GetProperty("failed").GetInt32());
    }

    [KvmFact]
    public void Conformance_text_ends_with_the_totals_line_per_kernel()
    {
        var run = CliRun.Of("conformance", "--kernel", "both", "--filter", "test_invalid_punch_hole");
        Assert.Equal(0, run.ExitCode);
        var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["== linux ==", "PASS test_invalid_punch_hole", "1 passed, 0 failed, 0 skipped",
                      "== emulated ==", "PASS test_invalid_punch_hole", "1 passed, 0 failed, 0 skipped"], lines);
    }

    [KvmFact]
    public void Fuzz_json_reports_ops_divergences_and_seed()
    {
        var run = CliRun.Of("fuzz", "--ops", "800", "--seed", "3", "--json");
        using var doc = JsonDocument.Parse(run.Stdout);
        var root = doc.RootElement;
        Assert.Equal(800, root.GetProperty("ops").GetInt32());
        Assert.Equal(3, root.GetProperty("seed").GetInt32());
        Assert.Equal(0, root.GetProperty("divergences").GetInt32());
        Assert.Equal(0, run.ExitCode);
    }

    [Fact]
    public void Fuzz_with_no_calls_is_a_usage_error()
    {
        var run = CliRun.Of("fuzz", "--ops", "0");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--ops must be positive", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Rawfuzz_json_reports_no_exceptions_and_no_invariant_violations()
    {
        var run = CliRun.Of("rawfuzz", "--inputs", "3000", "--seed", "5", "--json");
        Assert.Equal(0, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        var root = doc.RootElement;
        Assert.Equal(3000, root.GetProperty("inputs").GetInt32());
        Assert.Equal(0, root.GetProperty("exceptions").GetInt32());
        Assert.Equal(0, root.GetProperty("invariantViolations").GetInt32());
    }
}
