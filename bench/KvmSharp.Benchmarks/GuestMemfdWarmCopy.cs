// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Benchmarks;

/// <summary>
/// Warm copy: copy a buffer into a guest_memfd mapping whose pages are already faulted in. The C side memcpy's a
/// malloc'ed buffer into its own mapping; the SDK side copies a managed array through <see cref="GuestMapping.Write"/>
/// (bounds + fault checks, then one span copy).
/// </summary>
[Config(typeof(BenchConfig))]
public class GuestMemfdWarmCopy
{
    private Kvm? _kvm;
    private Vm? _vm;
    private GuestMemfd? _memfd;
    private GuestMapping? _map;
    private byte[] _source = [];

    [Params(1, 16)]
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
        _map.Fill(0, Bytes, 0); // fault every page in, as the C side does with memset
        _source = new byte[Bytes];
        for (int i = 0; i < _source.Length; i++) _source[i] = (byte)(i * 31 + 7);
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
    public long C() => CReference.WarmCopy();

    [Benchmark]
    public long Sdk()
    {
        _map!.Write(0, _source);
        return _map.Read<byte>(Bytes - 1);
    }
}
