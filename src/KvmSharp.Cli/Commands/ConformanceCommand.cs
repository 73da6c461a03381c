// SPDX-License-Identifier: MIT
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using KvmSharp.Conformance;
using KvmSharp.Emulation;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// <c>kvmsharp conformance</c>: runs the conformance suite (the upstream guest_memfd selftests ported one for one,
/// the v8 conversion cases, the binding and file rules) on a kernel, as a user checking a host would.
/// </summary>
public static class ConformanceCommand
{
    public static Command Create()
    {
        var kernel = new Option<string>("--kernel")
        {
            Description = "Which kernel to check: linux (/dev/kvm), emulated, or both",
            DefaultValueFactory = _ => "both",
        };
        kernel.AcceptOnlyFromAmong("linux", "emulated", "both");
        var json = new Option<bool>("--json") { Description = "One JSON object per kernel (an array for both)" };
        var filter = new Option<string?>("--filter")
        {
            Description = "Only cases whose name, group or source contains this text (e.g. test_fallocate, PrivateMemConversionsTest, private_mem_conversions_test.c)",
        };
        var release = new Option<string?>("--kernel-version")
        {
            Description = "With --kernel emulated: the suite on a host of this release (6.1 … 6.18), as the emulator models it",
        };
        var command = new Command("conformance", "Run the guest_memfd conformance suite") { kernel, json, filter, release };
        command.SetAction(result => Run(result.GetValue(kernel)!, result.GetValue(json), result.GetValue(filter), result.InvocationConfiguration.Output,
            result.GetValue(release)));
        return command;
    }

    /// <summary>The case's name (the upstream function), its group (the class) or its source (the selftest file).</summary>
    private static bool Matches(ConformanceCase c, string filter) =>
        c.Name.Contains(filter, StringComparison.Ordinal) || c.Group.Contains(filter, StringComparison.Ordinal)
        || c.Source.Contains(filter, StringComparison.Ordinal);

    public static int Run(string kernel, bool json, string? filter, TextWriter output, string? release = null)
    {
        var targets = kernel == "both" ? KernelTarget.All : [KernelTarget.Parse(kernel)];
        if (release is not null)
        {
            if (kernel != "emulated") throw new UsageException("--kernel-version applies only to --kernel emulated");
            if (!KernelGenerations.TryParseRelease(release, out var generation))
                throw new UsageException($"--kernel-version '{release}' is not a Linux release from 6.1 on (e.g. 6.8, 6.12.58, 6.18)");
            targets = [KernelTarget.EmulatedRelease(generation)];
        }
        var reports = new List<ConformanceReport>();
        foreach (var target in targets)
        {
            var results = ConformanceRunner.RunAll(target, c => filter is null || Matches(c, filter)).ToList();
            var report = new ConformanceReport(
                target.Name,
                results.Count(r => r.Outcome == CaseOutcome.Passed),
                results.Count(r => r.Outcome == CaseOutcome.Failed),
                results.Count(r => r.Outcome == CaseOutcome.Skipped),
                [.. results.Select(r => new CaseEntry(r.Name, r.Outcome.ToString().ToLowerInvariant(), r.Reason))]);
            reports.Add(report);
            if (!json) WriteText(output, report);
        }
        if (json)
        {
            output.WriteLine(reports.Count == 1
                ? JsonSerializer.Serialize(reports[0], ConformanceJsonContext.Default.ConformanceReport)
                : JsonSerializer.Serialize(reports, ConformanceJsonContext.Default.ListConformanceReport));
        }
        return reports.Any(r => r.Failed > 0) ? ExitCodes.KernelError : ExitCodes.Ok;
    }

    private static void WriteText(TextWriter output, ConformanceReport report)
    {
        output.WriteLine($"== {report.Kernel} ==");
        foreach (var c in report.Cases)
        {
            string tag = c.Result switch { "passed" => "PASS", "failed" => "FAIL", _ => "SKIP" };
            output.WriteLine(c.Reason is null ? $"{tag} {c.Name}" : $"{tag} {c.Name}: {c.Reason}");
        }
        output.WriteLine($"{report.Passed} passed, {report.Failed} failed, {report.Skipped} skipped");
    }
}

internal sealed record ConformanceReport(string Kernel, int Passed, int Failed, int Skipped, IReadOnlyList<CaseEntry> Cases);

internal sealed record CaseEntry(string Name, string Result, string? Reason);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(ConformanceReport))]
[JsonSerializable(typeof(List<ConformanceReport>))]
internal sealed partial class ConformanceJsonContext : JsonSerializerContext;
