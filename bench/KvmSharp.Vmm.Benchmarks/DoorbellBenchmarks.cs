// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// A guest doorbell (an OUT to a port) two ways on the real kernel, side by side: taken in the kernel by an ioeventfd
/// (KVM_IOEVENTFD: the guest goes on; the host reads the eventfd's count once per batch) against a KVM_EXIT_IO round
/// trip per doorbell (KVM_RUN → exit → KVM_RUN). One invocation is <see cref="Doorbells"/> OUTs, so each reported time
/// is per doorbell. The exit round trip is the baseline.
/// </summary>
[Config(typeof(VmmBenchConfig))]
[MemoryDiagnoser]
public class DoorbellBenchmarks : IDisposable
{
    public const int Doorbells = 1000;
    private const ushort RegisteredPort = 0x10, ExitPort = 0x11;

    private Kvm? _kvm;
    private Vm? _vm;
    private AnonymousMemory? _memory;
    private MemorySlot? _slot;
    private Vcpu? _vcpu;
    private EventFd? _eventFd;
    private IoEventFdRegistration? _registration;

    /// <summary>Real mode at GPA 0: <c>mov cx, N; l: out PORT, al; dec cx; jnz l; hlt</c> for both ports.</summary>
    private static byte[] Program()
    {
        var a = new Assembler(16);
        foreach (ushort port in new[] { RegisteredPort, ExitPort })
        {
            var loop = a.CreateLabel();
            a.mov(cx, Doorbells);
            a.Label(ref loop);
            a.@out((byte)port, al);
            a.dec(cx);
            a.jnz(loop);
            a.hlt();
        }
        var code = new MemoryStream();
        a.Assemble(new StreamCodeWriter(code), 0);
        return code.ToArray();
    }

    /// <summary>Where the ExitPort loop starts: after the first loop's 8 bytes (mov cx 3, out 2, dec 1, jnz 2) and hlt.</summary>
    private const ulong ExitLoop = 9;

    [GlobalSetup]
    public void Setup()
    {
        _kvm = Kvm.Open(LinuxKernel.Instance);
        _vm = _kvm.CreateVm();
        _memory = _vm.AllocateMemory(0x1000);
        _memory.Write(0, Program());
        _slot = _vm.AddMemorySlot(0, 0, _memory);
        _vcpu = _vm.CreateVcpu();
        var sregs = _vcpu.GetSregs();
        sregs.cs.@base = 0;
        sregs.cs.selector = 0;
        _vcpu.SetSregs(sregs);
        _eventFd = _kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        _registration = _vm.RegisterIoEventFd(_eventFd, IoEventFdSpace.Pio, RegisteredPort, 1);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Doorbells, Description = "port-I/O exit per doorbell")]
    public int ExitRoundTrip()
    {
        var vcpu = _vcpu!;
        vcpu.SetRegs(new kvm_regs { rip = ExitLoop, rflags = 2 });
        int exits = 0;
        while (vcpu.Run().Reason == KvmExitReason.KVM_EXIT_IO) exits++;
        return exits == Doorbells ? exits : throw new InvalidOperationException($"{exits} exits");
    }

    [Benchmark(OperationsPerInvoke = Doorbells, Description = "ioeventfd doorbell")]
    public ulong IoEventFd()
    {
        var vcpu = _vcpu!;
        vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
        var exit = vcpu.Run().Reason;
        if (exit != KvmExitReason.KVM_EXIT_HLT) throw new InvalidOperationException($"exit {exit}");
        ulong count = _eventFd!.Read();
        return count == Doorbells ? count : throw new InvalidOperationException($"count {count}");
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _registration?.Dispose();
        _eventFd?.Dispose();
        _vcpu?.Dispose();
        _slot?.Dispose();
        _memory?.Dispose();
        _vm?.Dispose();
        _kvm?.Dispose();
        GC.SuppressFinalize(this);
    }
}
