// SPDX-License-Identifier: MIT
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using KvmSharp.Fuzzing;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// <c>kvmsharp rawfuzz</c>: raw-byte fuzzing of the emulated kernel (<see cref="RawIoctlFuzzer"/>): random and
/// mutated ioctl requests and argument bytes on every kind of descriptor plus random file operations; the emulator
/// must answer every call with a value or -errno, never throw, and keep its invariants. Needs no /dev/kvm.
/// </summary>
public static class RawFuzzCommand
{
    public static Command Create()
    {
        var inputs = new Option<long>("--inputs") { Description = "Number of calls", DefaultValueFactory = _ => 100_000 };
        var seed = new Option<int>("--seed") { Description = "Seed of the run (same seed, same calls, in any process)", DefaultValueFactory = _ => 1 };
        var verbose = new Option<bool>("--outcomes") { Description = "Also print, per call, how often it succeeded and failed (how deep the inputs reach); with --json as outcomes" };
        var json = new Option<bool>("--json") { Description = "Print {inputs, exceptions, invariantViolations, leaks, seconds, seed, findings} as JSON" };
        var command = new Command("rawfuzz", "Fuzz the emulated kernel with random and mutated ioctl bytes and file operations") { inputs, seed, json, verbose };
        command.SetAction(result => Run(result.GetValue(inputs), result.GetValue(seed), result.GetValue(json), result.InvocationConfiguration.Output, result.GetValue(verbose)));
        return command;
    }

    public static int Run(long inputs, int seed, bool json, TextWriter output, bool outcomes = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (inputs <= 0) throw new UsageException($"--inputs must be positive, got {inputs}");
        var report = new RawIoctlFuzzer().Run(inputs, seed);
        var findings = report.Findings.Select(f => new RawFuzzFindingEntry(f.Kind, f.Input, f.Session, f.Config, f.Op, f.Detail, f.Reproducer.TakeLast(30).ToList())).ToList();
        double seconds = Math.Round(report.Elapsed.TotalSeconds, 2);
        if (json)
        {
            var perCall = outcomes
                ? report.Outcomes.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary(p => p.Key, p => new RawFuzzOutcomeEntry(p.Value.Ok, p.Value.Failed), StringComparer.Ordinal)
                : null;
            var doc = new RawFuzzDocument(report.Inputs, report.Exceptions, report.InvariantViolations, report.Leaks, seconds, report.Seed, findings, perCall);
            output.WriteLine(JsonSerializer.Serialize(doc, RawFuzzJsonContext.Default.RawFuzzDocument));
        }
        else
        {
            foreach (var f in findings)
            {
                output.WriteLine($"{f.Kind.ToUpperInvariant()} at input {f.Input} (session {f.Session}, {f.Config}): {f.Op}");
                output.WriteLine($"  {f.Detail}");
                output.WriteLine($"  last calls of the session (seed {seed}):");
                foreach (var line in f.Reproducer) output.WriteLine("    " + line);
            }
            if (outcomes)
            {
                foreach (var (name, (ok, failed)) in report.Outcomes.OrderBy(p => p.Key, StringComparer.Ordinal))
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-40} ok {ok,9}  failed {failed,9}"));
            }
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{report.Inputs} inputs, {report.Exceptions} exceptions, {report.InvariantViolations} invariant violations, {report.Leaks} leaks, seed {report.Seed}, {report.Elapsed.TotalSeconds:F1} s"));
        }
        return report.Clean ? ExitCodes.Ok : ExitCodes.KernelError;
    }
}

/// <summary>The JSON of a run; <c>outcomes</c> (per call: how often it succeeded and failed) only with --outcomes.</summary>
internal sealed record RawFuzzDocument(long Inputs, long Exceptions, long InvariantViolations, long Leaks, double Seconds, int Seed, IReadOnlyList<RawFuzzFindingEntry> Findings,
    IReadOnlyDictionary<string, RawFuzzOutcomeEntry>? Outcomes);

internal sealed record RawFuzzOutcomeEntry(long Ok, long Failed);

internal sealed record RawFuzzFindingEntry(string Kind, long Input, int Session, string Config, string Op, string Detail, IReadOnlyList<string> Reproducer);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RawFuzzDocument))]
internal sealed partial class RawFuzzJsonContext : JsonSerializerContext;
