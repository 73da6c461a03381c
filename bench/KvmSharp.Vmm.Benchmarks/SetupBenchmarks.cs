// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// (a) VM + guest memory (a guest_memfd and its mapping, or anonymous host memory: <see cref="BenchGuest.Memory"/>) +
/// slot + vCPU, created and torn down (goal: ≤ 1.15× C).
/// </summary>
[Config(typeof(VmmBenchConfig))]
[MemoryDiagnoser]
public class SetupBenchmarks
{
    private Kvm _kvm = null!;

    [GlobalSetup]
    public void Setup()
    {
        _kvm = Kvm.Open();
        CReferenceVmm.Check(CReferenceVmm.Open(), "open");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CReferenceVmm.Close();
        _kvm.Dispose();
    }

    [Benchmark(Baseline = true, Description = "C: VM+memory+slot+vCPU")]
    public long C() => CReferenceVmm.Check(CReferenceVmm.SetupTeardown(BenchGuest.MemorySize), "setup");

    [Benchmark(Description = "C#: VM+memory+slot+vCPU")]
    public int CSharp()
    {
        using var vm = _kvm.CreateVm();
        using var memory = GuestMemory.Create(vm, BenchGuest.MemorySize, BenchGuest.Memory);
        using var vcpu = vm.CreateVcpu(0);
        return vcpu.Id;
    }
}
