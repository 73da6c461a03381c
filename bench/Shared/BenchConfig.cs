// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Order;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace KvmSharp.Bench;

/// <summary>
/// One short job for a small (2-core) machine, run in-process: a C reference is loaded into the same process as the
/// SDK (or both kernels, real and emulated, are timed in one process) under the same conditions, and an in-process
/// toolchain needs no child build (BenchmarkDotNet's default toolchain would generate and build a project outside
/// the private --artifacts-path). Ratio = this row / the class's baseline row (the C reference where there is one).
/// Shared by every benchmark project (bench/Shared, compiled into each).
/// </summary>
public class BenchConfig : ManualConfig
{
    /// <summary>
    /// The global config for <c>BenchmarkSwitcher</c>: BenchmarkDotNet's defaults, with results and logs written next
    /// to the built assembly (under the private --artifacts-path) rather than into the working tree.
    /// <c>--artifacts DIR</c> on the command line still wins.
    /// </summary>
    public static IConfig Global { get; } =
        DefaultConfig.Instance.WithArtifactsPath(Path.Combine(AppContext.BaseDirectory, "BenchmarkDotNet.Artifacts"));

    public BenchConfig()
        : this(iterationCount: 12)
    {
    }

    /// <summary>The same job with another number of measured iterations.</summary>
    protected BenchConfig(int iterationCount)
    {
        AddJob(Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithWarmupCount(3)
            .WithIterationCount(iterationCount)
            .WithId("ShortInProcess"));
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(StatisticColumn.Median);
        WithSummaryStyle(SummaryStyle.Default.WithRatioStyle(RatioStyle.Value));
        WithOrderer(new DefaultOrderer(SummaryOrderPolicy.Declared));
    }
}
