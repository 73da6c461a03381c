// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Benchmarks;

/// <summary>
/// Warm touch: one byte store per 4 KiB page into a mapping whose pages are already faulted in — the first-touch
/// loop without the kernel's fault path. The fault path costs microseconds per page and, on a busy machine, its noise
/// hides the SDK's own per-access cost; here nothing else is left, so Sdk/C is the price of the checked accessor.
/// </summary>
[Config(typeof(BenchConfig))]
public class GuestMemfdWarmTouch
{
    private const ulong Page = 4096;

    private Kvm? _kvm;
    private Vm? _vm;
    private GuestMemfd? _memfd;
    private GuestMapping? _map;

    [Params(16)]
    public int SizeMiB { get; set; }

    private ulong Bytes => (ulong)SizeMiB << 20;

    [GlobalSetup]
    public void Setup()
    {
        CReference.Check(CReference.Open(), "open /dev/kvm + KVM_CREATE_VM");
        CReference.Check(CReference.WarmSetup((nuint)Bytes), "warm setup");
        _kvm = Kvm.Open();
        _vm = _kvm.CreateVm();
        _memfd = _vm.CreateGuestMemfd(Bytes, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        _map = _memfd.Map();
        _map.Fill(0, Bytes, 0);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _map?.Dispose();
        _memfd?.Dispose();
        _vm?.Dispose();
        _kvm?.Dispose();
        CReference.WarmTeardown();
        CReference.Close();
    }

    [Benchmark(Baseline = true)]
    public long C() => CReference.WarmTouch();

    /// <summary>Every store through the checked accessor <see cref="GuestMapping.Write{T}"/>.</summary>
    [Benchmark]
    public long Sdk()
    {
        GuestMapping map = _map!;
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
        GuestMapping map = _map!;
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
