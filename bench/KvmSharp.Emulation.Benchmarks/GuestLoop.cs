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
/// slower interpreted guest code is, not a goal to beat.
/// </summary>
[Config(typeof(BenchConfig))]
public class GuestLoop
{
    private const int Iterations = 200_000;

    private Kvm? _realKvm;
    private MicroVm? _real;
    private EmulatedKernel? _kernel;
    private Kvm? _emuKvm;
    private MicroVm? _emulated;

    [GlobalSetup]
    public void Setup()
    {
        _realKvm = Kvm.Open();
        _real = MicroVm.Create(Misbehaving.LoopsImage(), new MicroVmOptions { Kvm = _realKvm, Timeout = TimeSpan.FromSeconds(30) });
        _kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        _emuKvm = Kvm.Open(_kernel);
        _emulated = MicroVm.Create(Misbehaving.LoopsImage(), new MicroVmOptions { Kvm = _emuKvm, Timeout = TimeSpan.FromSeconds(30) });
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Iterations)]
    public ulong RealKernel() => Count(_real!);

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong Emulated() => Count(_emulated!);

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
        _emulated?.Dispose();
        _emuKvm?.Dispose();
        _kernel?.Dispose();
    }
}
