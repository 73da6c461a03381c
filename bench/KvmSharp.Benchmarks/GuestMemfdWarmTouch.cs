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
    private const ulong Page = 4096;

    [Params(16)]
    public override int SizeMiB { get; set; }

    [Benchmark(Baseline = true)]
    public long C() => CReference.WarmTouch();

    /// <summary>Every store through the checked accessor <see cref="GuestMapping.Write{T}"/>.</summary>
    [Benchmark]
    public long Sdk()
    {
        GuestMapping map = Map;
        ulong bytes = Bytes;
        long sum = 0;
        for (ulong off = 0; off < bytes; off += Page)
        {
            byte v = (byte)((off >> 12) | 1);
            map.Write(off, v);
            sum += v;
        }
        return sum;
    }

    /// <summary>One <see cref="GuestMapping.GetSpan"/> per 1 MiB chunk, then plain stores.</summary>
    [Benchmark]
    public long SdkSpan()
    {
        const int Chunk = 1 << 20;
        GuestMapping map = Map;
        ulong bytes = Bytes;
        long sum = 0;
        for (ulong chunk = 0; chunk < bytes; chunk += Chunk)
        {
            Span<byte> span = map.GetSpan(chunk, Chunk);
            for (int i = 0; i < span.Length; i += (int)Page)
            {
                byte v = (byte)(((chunk + (ulong)i) >> 12) | 1);
                span[i] = v;
                sum += v;
            }
        }
        return sum;
    }
}
