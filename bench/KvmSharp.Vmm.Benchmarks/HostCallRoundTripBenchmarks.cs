// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// (e) A guest → host call round trip through the sandbox (OUT to the host-call port → run loop → host-call device:
/// read the block, look the id up, run the delegate, write result and status → KVM_RUN) beside the plain port-I/O
/// exit of (b), C# and C, in one run (the exit benchmarks are inherited from (b)). 1000 calls per invocation, so each
/// time is per call or per exit.
/// </summary>
[Config(typeof(VmmBenchConfig))]
[MemoryDiagnoser]
public class HostCallRoundTripBenchmarks : ExitRoundTripBenchmarks
{
    [Benchmark(OperationsPerInvoke = Exits, Description = "C#: guest→host call")]
    public ulong CSharpHostCall() => Vm.Call("spin_hostcall", Exits).Value ?? throw new InvalidOperationException("spin_hostcall did not return");
}
