// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Emulation;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// A halted vCPU woken by its APIC timer, the same guest on both kernels: a real-mode guest with an in-kernel irqchip
/// (Conformance/Guests/HaltTimerGuest.cs) arms a 100 µs one-shot APIC timer and halts, <see cref="Halts"/> times, then
/// writes a port; KVM_CAP_HALT_POLL 0, so every halt sleeps (kvm_vcpu_block) until apic_timer_fn wakes it. Mean is
/// per halt: the 100 µs, the wake-up latency and the guest's few instructions. Ratio = emulated / real: how close the
/// emulator's futex sleep (KvmVcpu.WaitForKick) comes to the kernel's hrtimer wake-up.
/// </summary>
[Config(typeof(BenchConfig))]
public class HaltWake
{
    private const int Halts = 20;

    private Guest? _real;
    private Guest? _emulated;

    [GlobalSetup]
    public void Setup()
    {
        _real = new Guest(null);
        _emulated = new Guest(new EmulatedKernel(EmulatorConfig.LikeThisHost()));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _emulated?.Dispose();
        _real?.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Halts)]
    public uint RealKernel() => _real!.RunHalts();

    [Benchmark(OperationsPerInvoke = Halts)]
    public uint EmulatedKernel() => _emulated!.RunHalts();

    /// <summary>One VM with an in-kernel irqchip, the halt guest in a slot at GPA 0 and one vCPU.</summary>
    private sealed class Guest : IDisposable
    {
        private readonly EmulatedKernel? _kernel;
        private readonly Kvm _kvm;
        private readonly Vm _vm;
        private readonly AnonymousMemory _mem;
        private readonly Vcpu _vcpu;

        public Guest(EmulatedKernel? kernel)
        {
            _kernel = kernel;
            _kvm = kernel is null ? Kvm.Open() : Kvm.Open(kernel);
            _vm = _kvm.CreateVm();
            _vm.CreateIrqchip();
            _vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, 0);
            _mem = _vm.AllocateMemory(HaltTimerGuest.MemSize);
            _vm.AddMemorySlot(0, 0, _mem);
            HaltTimerGuest.Load(_mem, HaltTimerGuest.HaltLoop(Halts, HaltTimerGuest.TimerVector,
                HaltTimerGuest.OneShot(100_000)));
            _vcpu = _vm.CreateVcpu(0);
        }

        /// <summary>Runs the guest from its start to the port write; returns the timer interrupts it counted.</summary>
        public uint RunHalts()
        {
            _mem.Write(HaltTimerGuest.Count, 0u);
            HaltTimerGuest.SetUp(_vcpu);
            var exit = _vcpu.Run();
            if (exit.Reason != KvmExitReason.KVM_EXIT_IO || exit.IoPort != HaltTimerGuest.DonePort)
                throw new InvalidOperationException($"the halt guest ended with {exit.Reason}");
            return _mem.Read<uint>(HaltTimerGuest.Count);
        }

        public void Dispose()
        {
            _vcpu.Dispose();
            _mem.Dispose();
            _vm.Dispose();
            _kvm.Dispose();
            _kernel?.Dispose();
        }
    }
}
