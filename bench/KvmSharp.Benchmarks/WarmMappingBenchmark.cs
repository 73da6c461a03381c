// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Benchmarks;

/// <summary>
/// The setup the warm benchmarks share: on each side a VM and a <see cref="SizeMiB"/> MMAP|INIT_SHARED guest_memfd
/// whose pages are all faulted in (C: memset in <c>gmem_ref_warm_setup</c>; SDK: <see cref="GuestMapping.Fill"/>).
/// </summary>
public abstract class WarmMappingBenchmark
{
    private Kvm? _kvm;
    private Vm? _vm;
    private GuestMemfd? _memfd;

    public abstract int SizeMiB { get; set; }

    protected ulong Bytes => (ulong)SizeMiB << 20;

    /// <summary>The SDK side's faulted mapping.</summary>
    protected GuestMapping Map { get; private set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        CReference.Check(CReference.Open(), "open /dev/kvm + KVM_CREATE_VM");
        CReference.Check(CReference.WarmSetup((nuint)Bytes), "warm setup");
        _kvm = Kvm.Open();
        _vm = _kvm.CreateVm();
        _memfd = _vm.CreateGuestMemfd(Bytes, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        Map = _memfd.Map();
        Map.Fill(0, Bytes, 0);
        SetupMore();
    }

    /// <summary>Per-benchmark setup after the mapping is faulted in.</summary>
    protected virtual void SetupMore()
    {
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Map?.Dispose();
        _memfd?.Dispose();
        _vm?.Dispose();
        _kvm?.Dispose();
        CReference.WarmTeardown();
        CReference.Close();
    }
}
