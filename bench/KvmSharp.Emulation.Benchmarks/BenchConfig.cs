// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Order;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// One short in-process job for a small (2-core) machine, as in bench/KvmSharp.Benchmarks: the in-process toolchain
/// builds nothing outside the private --artifacts-path, and both kernels (real and emulated) are timed in one
/// process under the same conditions. Ratio = this row / the class's baseline row.
/// </summary>
public sealed class BenchConfig : ManualConfig
{
    /// <summary>BenchmarkDotNet's defaults, with results and logs next to the built assembly (under --artifacts-path).</summary>
    public static IConfig Global { get; } =
        DefaultConfig.Instance.WithArtifactsPath(Path.Combine(AppContext.BaseDirectory, "BenchmarkDotNet.Artifacts"));

    public BenchConfig()
    {
        AddJob(Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithWarmupCount(3)
            .WithIterationCount(12)
            .WithId("ShortInProcess"));
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(StatisticColumn.Median);
        WithSummaryStyle(SummaryStyle.Default.WithRatioStyle(RatioStyle.Value));
        WithOrderer(new DefaultOrderer(SummaryOrderPolicy.Declared));
    }
}
