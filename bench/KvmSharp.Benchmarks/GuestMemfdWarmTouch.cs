// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Benchmarks;

/// <summary>
/// Warm touch: one byte store per 4 KiB page into a mapping whose pages are already faulted in — the first-touch
/// loop without the kernel's fault path. The fault path costs microseconds per page and, on a busy machine, its noise
/// hides the SDK's own per-access cost; here nothing else is left, so Sdk/C is the price of the checked accessor.
/// </summary>
[Config(typeof(BenchConfig))]
public class GuestMemfdWarmTouch : WarmMappingBenchmark
{

    [Params(16)]
    public override int SizeMiB { get; set; }

    [Benchmark(Baseline = true)]
    public long C() => CReference.WarmTouch();

    /// <summary>Every store through the checked accessor <see cref="GuestMapping.Write{T}"/>.</summary>
    [Benchmark]
    public long Sdk() => PageTouch.Checked(Map, Bytes);

    /// <summary>One <see cref="GuestMapping.GetSpan"/> per 1 MiB chunk, then plain stores.</summary>
    [Benchmark]
    public long SdkSpan() => PageTouch.Spans(Map, Bytes);
}
