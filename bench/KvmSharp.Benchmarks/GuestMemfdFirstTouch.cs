// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Benchmarks;

/// <summary>
/// First-touch fault-in: create a guest_memfd (MMAP|INIT_SHARED), map it, write one byte per 4 KiB page, unmap,
/// close. Each call faults every page in through the kernel's guest_memfd fault handler, so this measures the
/// fault path plus whatever the SDK adds per access. The VM is created once per side in GlobalSetup.
/// </summary>
[Config(typeof(BenchConfig))]
public class GuestMemfdFirstTouch
{

    private Kvm? _kvm;
    private Vm? _vm;

    [Params(16, 64)]
    public int SizeMiB { get; set; }

    private ulong Bytes => (ulong)SizeMiB << 20;

    [GlobalSetup]
    public void Setup()
    {
        CReference.Check(CReference.Open(), "open /dev/kvm + KVM_CREATE_VM");
        _kvm = Kvm.Open();
        _vm = _kvm.CreateVm();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _vm?.Dispose();
        _kvm?.Dispose();
        CReference.Close();
    }

    /// <summary>The C reference: plain ioctl/mmap and a volatile byte store per page.</summary>
    [Benchmark(Baseline = true)]
    public long C() => CReference.Check(CReference.FirstTouch((nuint)Bytes), "first touch");

    /// <summary>The typed API with the checked accessor: every byte store goes through <see cref="GuestMapping.Write{T}"/>.</summary>
    [Benchmark]
    public long Sdk()
    {
        using GuestMemfd memfd = _vm!.CreateGuestMemfd(Bytes, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using GuestMapping map = memfd.Map();
        return PageTouch.Checked(map, Bytes);
    }

    /// <summary>The typed API, checked once per 1 MiB chunk: one <see cref="GuestMapping.GetSpan"/> per chunk, then plain stores.</summary>
    [Benchmark]
    public long SdkSpan()
    {
        using GuestMemfd memfd = _vm!.CreateGuestMemfd(Bytes, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using GuestMapping map = memfd.Map();
        return PageTouch.Spans(map, Bytes);
    }
}
