// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// (c) Create a micro-VM, make one guest call, tear it down (goal: median &lt; 1 ms and ≤ 1.5× C), cold — no other
/// vCPU of this process alive, so every create and teardown flips the host's kvm_has_noapic_vcpu static key — and warm,
/// with a <see cref="WarmVcpuHold"/> held (it warms the C side as well: the key is host-wide). The pooled call (d) is in
/// <see cref="PoolBenchmarks"/>: a pool's micro-VMs would warm the cold case.
/// </summary>
[Config(typeof(VmmBenchConfig))]
[MemoryDiagnoser]
public class LifecycleBenchmarks
{
    private Kvm _kvm = null!;
    private Loader.GuestImage _image = null!;
    private WarmVcpuHold? _hold;

    /// <summary>Whether a <see cref="WarmVcpuHold"/> is held while both sides run.</summary>
    [Params(false, true)]
    public bool Warm { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _kvm = Kvm.Open();
        _image = BenchGuest.Image();
        if (Warm) _hold = WarmVcpuHold.Acquire(_kvm);
        CReferenceVmm.Check(CReferenceVmm.Open(), "open");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CReferenceVmm.Close();
        _hold?.Dispose();
        _kvm.Dispose();
    }

    [Benchmark(Baseline = true, Description = "C: create+call+teardown")]
    public long C() => CReferenceVmm.Check(
        CReferenceVmm.CreateCallDestroy(BenchGuest.Code, Arch.X86_64.Trampoline.Bytes, BenchGuest.MemorySize, BenchGuest.Entry, 1, 0), "create+call");

    [Benchmark(Description = "C#: create+call+teardown")]
    public ulong CSharp()
    {
        using var vm = MicroVm.Create(_image, BenchGuest.Options(_kvm));
        return vm.Call("spin_io", 1).Value ?? 0;
    }
}
