// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Text.Json;
using KvmSharp.Emulation;

namespace KvmSharp.Cli.Tests;

/// <summary><c>kvmsharp conformance</c> and <c>kvmsharp fuzz</c>, run in process.</summary>
public sealed class ConformanceAndFuzzCommandTests
{
    [Fact]
    public void Conformance_json_for_one_kernel_counts_the_filtered_cases()
    {
        // "test_fi": "test_f" also matches the arm64 hypercalls.c port, whose text names test_fw_regs_*.
        var run = CliRun.Of("conformance", "--kernel", "emulated", "--filter", "test_fi", "--json");
        Assert.Equal(0, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        var root = doc.RootElement;
        Assert.Equal("emulated", root.GetProperty("kernel").GetString());
        var cases = root.GetProperty("cases").EnumerateArray().ToList();
        // test_file_read_write, test_file_size, and the write series' test_file_read (GuestMemfdWriteRules).
        Assert.Equal(
            ["test_file_read", "test_file_read_write", "test_file_size"],
            cases.Select(c => c.GetProperty("name").GetString()).Order(StringComparer.Ordinal));
        Assert.All(cases, c => Assert.StartsWith("test_fi", c.GetProperty("name").GetString(), StringComparison.Ordinal));
        Assert.Equal(cases.Count(c => c.GetProperty("result").GetString() == "passed"), root.GetProperty("passed").GetInt32());
        Assert.Equal(0, root.GetProperty("failed").GetInt32());
    }

    [Fact]
    public void Conformance_filter_also_matches_a_cases_group_and_its_selftest_file()
    {
        var byFile = CliRun.Of("conformance", "--kernel", "emulated", "--filter", "private_mem_conversions_test.c", "--json");
        var byGroup = CliRun.Of("conformance", "--kernel", "emulated", "--filter", "PrivateMemConversionsTest", "--json");
        Assert.Equal(0, byFile.ExitCode);
        Assert.Equal(0, byGroup.ExitCode);
        string[] Names(CliRun run)
        {
            using var doc = JsonDocument.Parse(run.Stdout);
            return [.. doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("name").GetString()!)];
        }
        string[] names = Names(byFile);
        Assert.Contains("test_mem_conversions", names);
        Assert.Contains("test_mem_conversions_4_vcpus_2_memslots", names);
        Assert.All(names, n => Assert.StartsWith("test_mem_conversions", n, StringComparison.Ordinal));
        Assert.Equal(names, Names(byGroup));
    }

    [Theory]
    [InlineData("6.1", "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0)")]
    [InlineData("6.12", "this kernel's guest_memfd predates the mmap series")]
    public void Conformance_on_an_older_release_skips_what_does_not_apply_there_and_fails_nothing(string release, string skipReason)
    {
        var run = CliRun.Of("conformance", "--kernel", "emulated", "--kernel-version", release, "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        using var doc = JsonDocument.Parse(run.Stdout);
        var root = doc.RootElement;
        Assert.StartsWith("emulated (Linux ", root.GetProperty("kernel").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, root.GetProperty("failed").GetInt32());
        Assert.True(root.GetProperty("passed").GetInt32() >= 50);
        var cases = root.GetProperty("cases").EnumerateArray().ToList();
        Assert.Contains(cases, c => c.GetProperty("reason").GetString()?.StartsWith(skipReason, StringComparison.Ordinal) == true);
        // The v8 series is based on 6.18+: its cases do not apply to an older release.
        Assert.Contains(cases, c => c.GetProperty("name").GetString() == "init_private"
            && c.GetProperty("result").GetString() == "skipped"
            && c.GetProperty("reason").GetString()!.Contains("based on 6.18+", StringComparison.Ordinal));
    }

    [Fact]
    public void Conformance_kernel_version_needs_the_emulated_kernel()
    {
        var run = CliRun.Of("conformance", "--kernel", "both", "--kernel-version", "6.8");
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal("kvmsharp: --kernel-version applies only to --kernel emulated", Assert.Single(run.StderrLines));
    }

    [KvmFact]
    public void Conformance_text_ends_with_the_totals_line_per_kernel()
    {
        // A guest_memfd case: it runs on the real kernel where guest_memfd exists, and is skipped with the reason,
        // before it runs, where the kernel was built without it. The emulator always runs it.
        var run = CliRun.Of("conformance", "--kernel", "both", "--filter", "test_invalid_punch_hole");
        Assert.Equal(0, run.ExitCode);
        var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] linux = HostMatching.HostHasGuestMemfd == true
            ? ["== linux ==", "PASS test_invalid_punch_hole", "1 passed, 0 failed, 0 skipped"]
            : ["== linux ==", "SKIP test_invalid_punch_hole: this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0)", "0 passed, 0 failed, 1 skipped"];
        Assert.Equal([.. linux, "== emulated ==", "PASS test_invalid_punch_hole", "1 passed, 0 failed, 0 skipped"], lines);
    }

    [KvmFact]
    public void Conformance_runs_the_cases_for_a_kernel_without_guest_memfd_where_it_lacks_it()
    {
        var run = CliRun.Of("conformance", "--kernel", "both", "--filter", "create_guest_memfd_is_enotty", "--json");
        Assert.Equal(0, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        var reports = doc.RootElement.EnumerateArray().ToDictionary(r => r.GetProperty("kernel").GetString()!);
        var linux = Assert.Single(reports["linux"].GetProperty("cases").EnumerateArray());
        var emulated = Assert.Single(reports["emulated"].GetProperty("cases").EnumerateArray());
        Assert.Equal("passed", emulated.GetProperty("result").GetString());
        if (HostMatching.HostHasGuestMemfd == false)
        {
            Assert.Equal("passed", linux.GetProperty("result").GetString());
        }
        else
        {
            Assert.Equal("skipped", linux.GetProperty("result").GetString());
            Assert.StartsWith("this kernel has guest_memfd (KVM_CAP_GUEST_MEMFD = 1)", linux.GetProperty("reason").GetString(), StringComparison.Ordinal);
        }
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
        // The emulator preset that matches this machine, with or without guest_memfd.
        Assert.Equal(HostMatching.HostHasGuestMemfd == false ? "EmulatorConfig.LikeThisHost(guestMemfd: false)" : "EmulatorConfig.LikeThisHost()",
            root.GetProperty("candidate").GetString());
        Assert.Equal(0, run.ExitCode);
    }

    [Fact]
    public void Fuzz_with_no_calls_is_a_usage_error()
    {
        var run = CliRun.Of("fuzz", "--ops", "0");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--ops must be positive", run.Stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// A seed repeats its calls in another process (the session seeds were HashCode.Combine, randomized per process):
    /// two kvmsharp processes with the same seed make the same calls, so each call's count of attempts (succeeded +
    /// failed; whether a KVM_RUN was kicked before it returned may differ) is the same.
    /// </summary>
    [Fact]
    public void Rawfuzz_repeats_a_seeds_calls_in_another_process()
    {
        Dictionary<string, long> Attempts()
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string arg in new[] { typeof(CliApp).Assembly.Location, "rawfuzz", "--inputs", "3000", "--seed", "11", "--json", "--outcomes" })
                start.ArgumentList.Add(arg);
            using var process = Process.Start(start)!;
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd();
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(5)), "rawfuzz did not finish within 5 minutes");
            Assert.True(process.ExitCode == 0, stderr.Result);
            using var doc = JsonDocument.Parse(stdout);
            return doc.RootElement.GetProperty("outcomes").EnumerateObject()
                .ToDictionary(p => p.Name, p => p.Value.GetProperty("ok").GetInt64() + p.Value.GetProperty("failed").GetInt64(), StringComparer.Ordinal);
        }

        var first = Attempts();
        Assert.True(first.Count > 20, $"only {first.Count} kinds of call");
        Assert.True(first.Values.Sum() >= 3000, $"{first.Values.Sum()} calls counted for 3000 inputs");
        Assert.Equal(first, Attempts());
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
