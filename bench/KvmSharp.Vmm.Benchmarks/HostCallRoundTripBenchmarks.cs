// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// (e) A guest → host call round trip through the sandbox (OUT to the host-call port → run loop → host-call device:
/// read the block, look the id up, run the delegate, write result and status → KVM_RUN) beside the plain port-I/O
/// exit of (b), C# and C, in one run. 1000 calls per invocation, so each time is per call or per exit.
/// </summary>
[Config(typeof(VmmBenchConfig))]
[MemoryDiagnoser]
public class HostCallRoundTripBenchmarks
{
    private const int Calls = 1000;
    private Kvm _kvm = null!;
    private MicroVm _vm = null!;

    [GlobalSetup]
    public void Setup()
    {
        _kvm = Kvm.Open();
        _vm = MicroVm.Create(BenchGuest.Image(), BenchGuest.Options(_kvm));
        CReferenceVmm.Check(CReferenceVmm.Open(), "open");
        CReferenceVmm.Check(CReferenceVmm.VmCreate(BenchGuest.Code, Arch.X86_64.Trampoline.Bytes, BenchGuest.MemorySize), "vm create");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CReferenceVmm.VmDestroy();
        CReferenceVmm.Close();
        _vm.Dispose();
        _kvm.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Calls, Description = "C: port-I/O exit")]
    public long CExit() => CReferenceVmm.Check(CReferenceVmm.VmCall(BenchGuest.Entry, Calls, 0), "call");

    [Benchmark(OperationsPerInvoke = Calls, Description = "C#: port-I/O exit")]
    public ulong CSharpExit() => _vm.Call("spin_io", Calls).Value ?? throw new InvalidOperationException("spin_io did not return");

    [Benchmark(OperationsPerInvoke = Calls, Description = "C#: guest→host call")]
    public ulong CSharpHostCall() => _vm.Call("spin_hostcall", Calls).Value ?? throw new InvalidOperationException("spin_hostcall did not return");
}
