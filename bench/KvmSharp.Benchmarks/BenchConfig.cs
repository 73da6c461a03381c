// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Order;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace KvmSharp.Benchmarks;

/// <summary>
/// One short job for a small (2-core) machine, run in-process: the C reference is loaded into the same process as
/// the SDK, and an in-process toolchain needs no child build (BenchmarkDotNet's default toolchain would generate and
/// build a project outside the private --artifacts-path). The Ratio column (SDK time / C time, C is the baseline)
/// is what these benchmarks are for.
/// </summary>
public sealed class BenchConfig : ManualConfig
{
    /// <summary>
    /// The global config for <c>BenchmarkSwitcher</c>: BenchmarkDotNet's defaults, with results and logs written next
    /// to the built assembly (under the private --artifacts-path) rather than into the working tree.
    /// <c>--artifacts DIR</c> on the command line still wins.
    /// </summary>
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
