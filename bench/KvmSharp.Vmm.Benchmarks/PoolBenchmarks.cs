// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// (d) The call of <see cref="LifecycleBenchmarks"/> from a pool of pre-created micro-VMs reset between uses (a punch
/// of the guest_memfd; in host memory a restore of the pages changed since the first reset, from the dirty log and the
/// host's writes: <see cref="BenchGuest.Memory"/>), beside C's create + call + teardown.
/// </summary>
[Config(typeof(VmmBenchConfig))]
[MemoryDiagnoser]
public class PoolBenchmarks
{
    private Kvm _kvm = null!;
    private MicroVmPool _pool = null!;

    [GlobalSetup]
    public void Setup()
    {
        _kvm = Kvm.Open();
        _pool = new MicroVmPool(BenchGuest.Image(), BenchGuest.Options(_kvm), size: 2);
        CReferenceVmm.Check(CReferenceVmm.Open(), "open");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CReferenceVmm.Close();
        _pool.Dispose();
        _kvm.Dispose();
    }

    [Benchmark(Baseline = true, Description = "C: create+call+teardown")]
    public long C() => CReferenceVmm.Check(
        CReferenceVmm.CreateCallDestroy(BenchGuest.Code, Arch.X86_64.Trampoline.Bytes, BenchGuest.MemorySize, BenchGuest.Entry, 1, 0), "create+call");

    [Benchmark(Description = "C#: pool rent+call+reset")]
    public ulong Pooled()
    {
        var vm = _pool.Rent();
        ulong value = vm.Call("spin_io", 1).Value ?? 0;
        _pool.Return(vm);
        return value;
    }
}
