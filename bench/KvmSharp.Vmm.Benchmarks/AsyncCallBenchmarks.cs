// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// (g) What a call on the micro-VM's own vCPU thread (<see cref="MicroVm.CallAsync(string, ulong[])"/>) costs beside
/// the blocking <see cref="MicroVm.Call(string, ReadOnlySpan{ulong})"/> and C: a short call (spin_io(1): one port-I/O
/// exit and the return), so the hand-off to the vCPU thread and back is most of the difference. On a busy host use
/// <c>-- async-probe</c> (<see cref="AsyncCallProbe"/>), which interleaves them.
/// </summary>
[Config(typeof(VmmBenchConfig))]
[MemoryDiagnoser]
public class AsyncCallBenchmarks : MicroVmBeside
{
    [Benchmark(Baseline = true, Description = "C: short call")]
    public long CShortCall() => CReferenceVmm.Check(CReferenceVmm.VmCall(BenchGuest.Entry, 1, 0), "call");

    [Benchmark(Description = "C#: Call, short")]
    public ulong CSharpShortCall() => Vm.Call("spin_io", 1).Value ?? throw new InvalidOperationException("spin_io did not return");

    [Benchmark(Description = "C#: CallAsync, short")]
    public async Task<ulong> CSharpShortCallAsync() =>
        (await Vm.CallAsync("spin_io", 1).ConfigureAwait(false)).Value ?? throw new InvalidOperationException("spin_io did not return");
}
