// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using KvmSharp.Emulation;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// Guest execution: one micro-VM call of <c>count(n)</c> (Misbehaving.LoopsImage: a dec/jnz loop of n iterations, no
/// exits inside) on the real kernel and on the emulator's interpreter, same SDK and VMM code. OperationsPerInvoke =
/// loop iterations (two instructions each), so Mean is the cost PER ITERATION including the call's fixed overhead
/// spread over n; Ratio = emulated / real. The real kernel runs the loop natively, so this ratio says how much
/// slower interpreted guest code is, not a goal to beat. The real kernel uses its best memory (host memory on a
/// kernel without guest_memfd); the emulator runs the loop from guest_memfd (its mapped, cached path) and from host
/// memory (every fetch and page-walk read through process_vm_readv: the slow path, see docs/STATUS.md).
/// </summary>
[Config(typeof(BenchConfig))]
public class GuestLoop
{
    private const int Iterations = 200_000;

    private Kvm? _realKvm;
    private MicroVm? _real;
    private EmulatedKernel? _kernel;
    private Kvm? _emuKvm;
    private MicroVm? _emulatedGmem;
    private MicroVm? _emulatedHost;

    [GlobalSetup]
    public void Setup()
    {
        _realKvm = Kvm.Open();
        _real = MicroVm.Create(Misbehaving.LoopsImage(), Options(_realKvm, memory: null));
        _kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        _emuKvm = Kvm.Open(_kernel);
        _emulatedGmem = MicroVm.Create(Misbehaving.LoopsImage(), Options(_emuKvm, GuestMemoryBacking.GuestMemfd));
        _emulatedHost = MicroVm.Create(Misbehaving.LoopsImage(), Options(_emuKvm, GuestMemoryBacking.HostMemory));
    }

    private static MicroVmOptions Options(Kvm kvm, GuestMemoryBacking? memory) =>
        new() { Kvm = kvm, Timeout = TimeSpan.FromSeconds(60), Memory = memory };

    [Benchmark(Baseline = true, OperationsPerInvoke = Iterations)]
    public ulong RealKernel() => Count(_real!);

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong EmulatedGuestMemfd() => Count(_emulatedGmem!);

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong EmulatedHostMemory() => Count(_emulatedHost!);

    private static ulong Count(MicroVm vm)
    {
        var r = vm.Call("count", Iterations);
        if (r.Value != Iterations) throw new InvalidOperationException($"count({Iterations}) ended as {r}");
        return r.Value.Value;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _real?.Dispose();
        _realKvm?.Dispose();
        _emulatedGmem?.Dispose();
        _emulatedHost?.Dispose();
        _emuKvm?.Dispose();
        _kernel?.Dispose();
    }
}
