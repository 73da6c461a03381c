// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// The set-up the per-call benchmarks share: one micro-VM of <see cref="BenchGuest"/> and the C reference's VM with the
/// same code, made once per benchmark run.
/// </summary>
public abstract class MicroVmBeside
{
    /// <summary>Exits (or calls) per benchmark invocation where a benchmark repeats its work.</summary>
    protected const int Exits = 1000;
    private Kvm _kvm = null!;
    private CReferenceVm _reference = null!;

    /// <summary>The micro-VM of <see cref="BenchGuest"/>, made in <see cref="Setup"/>.</summary>
    protected MicroVm Vm { get; private set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        _kvm = Kvm.Open();
        Vm = MicroVm.Create(BenchGuest.Image(), BenchGuest.Options(_kvm));
        _reference = CReferenceVm.Create();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _reference.Dispose();
        Vm.Dispose();
        _kvm.Dispose();
    }
}
