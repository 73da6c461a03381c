// SPDX-License-Identifier: MIT
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using KvmSharp.Conformance;
using KvmSharp.Emulation;
using KvmSharp.Fuzzing;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// <c>kvmsharp fuzz</c>: the differential fuzzer — one random, reproducible call sequence on the real kernel and on
/// the emulator preset that matches this machine (<see cref="FuzzKernels.EmulatorLikeThisMachine"/>: with or without
/// guest_memfd, as /dev/kvm reports it), compared call by call; a divergence is reduced to a short reproducer.
/// </summary>
public static class FuzzCommand
{
    public static Command Create()
    {
        var ops = new Option<int>("--ops") { Description = "Number of calls", DefaultValueFactory = _ => 10_000 };
        var seed = new Option<int>("--seed") { Description = "Seed of the sequence (same seed, same calls)", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print {ops, divergences, seed, details} as JSON" };
        var reported = new Option<bool>("--include-reported")
        {
            Description = "Also generate the values of divergences already reported in the emulator's x86 model (ReportedDivergences)",
        };
        var command = new Command("fuzz", "Compare the emulator with the real kernel on random call sequences") { ops, seed, json, reported };
        command.SetAction(result => Run(result.GetValue(ops), result.GetValue(seed), result.GetValue(json), result.InvocationConfiguration.Output, result.GetValue(reported)));
        return command;
    }

    public static int Run(int ops, int seed, bool json, TextWriter output, bool includeReported = false)
    {
        if (ops <= 0) throw new UsageException($"--ops must be positive, got {ops}");
        if (KernelTarget.Linux.UnavailableReason is string reason)
            throw new UnavailableException($"the differential fuzzer needs the real kernel as its reference: {reason}");
        var fuzzer = new DifferentialFuzzer(FuzzKernels.Real, FuzzKernels.EmulatorLikeThisMachine)
        {
            IncludeReported = includeReported,
        };
        var report = fuzzer.Run(ops, seed);
        var details = report.Divergences.Select(d => new DivergenceEntry(d.OpIndex, d.Op, d.Reference, d.Candidate, d.Reproducer)).ToList();
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new FuzzDocument(report.Ops, report.Divergences.Count, report.Seed, Math.Round(report.Elapsed.TotalSeconds, 2), Candidate, details), FuzzJsonContext.Default.FuzzDocument));
        }
        else
        {
            foreach (var d in details)
            {
                output.WriteLine($"DIVERGENCE at call {d.Index}: {d.Op}");
                output.WriteLine($"  linux:    {d.Linux}");
                output.WriteLine($"  emulated: {d.Emulated}");
                output.WriteLine($"  reproducer ({d.Reproducer.Count} calls, seed {seed}):");
                foreach (var line in d.Reproducer) output.WriteLine("    " + line);
            }
            output.WriteLine($"{report.Ops} calls, {report.Divergences.Count} divergences, seed {report.Seed}, {report.Elapsed.TotalSeconds:F1} s (linux vs {Candidate})");
        }
        return report.Divergences.Count == 0 ? ExitCodes.Ok : ExitCodes.KernelError;
    }

    /// <summary>The emulator preset the run compares with, as code would name it.</summary>
    private static string Candidate =>
        HostMatching.HostHasGuestMemfd == false ? "EmulatorConfig.LikeThisHost(guestMemfd: false)" : "EmulatorConfig.LikeThisHost()";
}

internal sealed record FuzzDocument(int Ops, int Divergences, int Seed, double Seconds, string Candidate, IReadOnlyList<DivergenceEntry> Details);

internal sealed record DivergenceEntry(int Index, string Op, string Linux, string Emulated, IReadOnlyList<string> Reproducer);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(FuzzDocument))]
internal sealed partial class FuzzJsonContext : JsonSerializerContext;
