// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// Guest execution with a data access in the loop, closer to compiled C than <see cref="GuestLoop"/>'s DEC/JNZ: one
/// micro-VM call of <c>sum(ptr, len)</c> (<see cref="Sum.Image"/>: CMP, JAE, MOVZX from the input buffer, ADD, INC,
/// JMP per byte) over a 20,000-byte input, on the real kernel and on the emulator from guest_memfd. OperationsPerInvoke
/// = input bytes, so Mean is the cost PER BYTE (six instructions, one guest memory read) including the call's fixed
/// overhead (and the input's copy into the guest) spread over them; Ratio = emulated / real.
/// </summary>
[Config(typeof(BenchConfig))]
public class GuestSum
{
    private const int Bytes = 20_000;

    private readonly byte[] _input = Enumerable.Repeat((byte)1, Bytes).ToArray();
    private MicroVmPair? _vms;

    [GlobalSetup]
    public void Setup() =>
        _vms = new MicroVmPair(Sum.Image(), realMemory: null, GuestMemoryBacking.GuestMemfd, MicroVmOptions.DefaultMemorySize);

    [Benchmark(Baseline = true, OperationsPerInvoke = Bytes)]
    public ulong RealKernel() => Call(_vms!.Real);

    [Benchmark(OperationsPerInvoke = Bytes)]
    public ulong EmulatedGuestMemfd() => Call(_vms!.Emulated);

    private ulong Call(MicroVm vm)
    {
        var r = vm.Call("sum", _input);
        if (r.Value != Bytes) throw new InvalidOperationException($"sum of {Bytes} ones ended as {r}");
        return r.Value.Value;
    }

    [GlobalCleanup]
    public void Cleanup() => _vms?.Dispose();
}
