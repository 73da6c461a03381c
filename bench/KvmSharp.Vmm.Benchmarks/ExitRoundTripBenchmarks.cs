// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// (b) One port-I/O exit round trip through the run loop: KVM_RUN → KVM_EXIT_IO → decode → bus → COM1 → KVM_RUN.
/// One call of spin_io(1000) is 1000 exits (+ one return), so each reported time is per exit (goal: ≤ 1.05× C).
/// BenchmarkDotNet times C, then C#; on a host whose exit cost drifts, use <c>-- probe</c> (<see cref="ExitProbe"/>),
/// which interleaves them.
/// </summary>
[Config(typeof(VmmBenchConfig))]
[MemoryDiagnoser]
public class ExitRoundTripBenchmarks : MicroVmBeside
{
    [Benchmark(Baseline = true, OperationsPerInvoke = Exits, Description = "C: port-I/O exit")]
    public long C() => CReferenceVmm.Check(CReferenceVmm.VmCall(BenchGuest.Entry, Exits, 0), "call");

    [Benchmark(OperationsPerInvoke = Exits, Description = "C#: port-I/O exit")]
    public ulong CSharp() => Vm.Call("spin_io", Exits).Value ?? throw new InvalidOperationException("spin_io did not return");
}
