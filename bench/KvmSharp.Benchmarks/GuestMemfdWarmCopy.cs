// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Benchmarks;

/// <summary>
/// Warm copy: copy a buffer into a guest_memfd mapping whose pages are already faulted in. The C side memcpy's a
/// malloc'ed buffer into its own mapping; the SDK side copies a managed array through <see cref="GuestMapping.Write"/>
/// (bounds + fault checks, then one span copy).
/// </summary>
[Config(typeof(BenchConfig))]
public class GuestMemfdWarmCopy : WarmMappingBenchmark
{
    private byte[] _source = [];

    [Params(1, 16)]
    public override int SizeMiB { get; set; }

    protected override void SetupMore()
    {
        _source = new byte[Bytes];
        for (int i = 0; i < _source.Length; i++) _source[i] = (byte)(i * 31 + 7);
    }

    [Benchmark(Baseline = true)]
    public long C() => CReference.WarmCopy();

    [Benchmark]
    public long Sdk()
    {
        Map.Write(0, _source);
        return Map.Read<byte>(Bytes - 1);
    }
}
