// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using KvmSharp.Emulation;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Loader;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// The arm64 counterpart of <see cref="GuestLoop"/>, emulator only (this host has no arm64 KVM): one micro-VM call of a
/// loop of n iterations on the emulated arm64 kernel (<see cref="EmulatorConfig.Arm64()"/>, the A64 interpreter), each
/// iteration LDR, ADD, STR (a counter in a stack slot), SUBS, B.NE — five instructions, two data accesses, no exits
/// inside. <c>count</c> runs as micro-VMs do, with the stage-1 MMU on over the VMM's identity tables (every fetch and
/// data access is translated: a 3-level walk of 4 KiB pages); <c>countMmuOff</c> clears SCTLR_EL1.M around the same
/// loop (addresses are IPAs, no walk). The baseline is <see cref="GuestLoop"/>'s emulated guest_memfd row (x86 DEC/JNZ,
/// two instructions, no data access) in the same run, so Ratio = arm64 / x86 per loop iteration. OperationsPerInvoke =
/// loop iterations, so Mean is the cost PER ITERATION including the call's fixed overhead spread over n.
/// </summary>
[Config(typeof(BenchConfig))]
public class Arm64GuestLoop
{
    private const int Iterations = 200_000;

    /// <summary>SCTLR_EL1 (op0 3, op1 0, CRn 1, CRm 0, op2 0) as MRS/MSR encode it (KVM's ARM64_SYS_REG field layout).</summary>
    private const ulong SctlrEl1 = (3UL << 14) | (1UL << 7);

    private EmulatedKernel? _x86Kernel;
    private Kvm? _x86Kvm;
    private MicroVm? _x86;
    private EmulatedKernel? _armKernel;
    private Kvm? _armKvm;
    private MicroVm? _arm;

    [GlobalSetup]
    public void Setup()
    {
        _x86Kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        _x86Kvm = Kvm.Open(_x86Kernel);
        _x86 = MicroVm.Create(Misbehaving.LoopsImage(), Options(_x86Kvm));
        _armKernel = new EmulatedKernel(EmulatorConfig.Arm64());
        _armKvm = Kvm.Open(_armKernel);
        _arm = MicroVm.Create(LoopImage(), Options(_armKvm));
    }

    private static MicroVmOptions Options(Kvm kvm) =>
        new() { Kvm = kvm, Timeout = TimeSpan.FromSeconds(60), Memory = GuestMemoryBacking.GuestMemfd };

    /// <summary>
    /// <c>count(n)</c> and <c>countMmuOff(n)</c> (x0 = n ≥ 1, returns the counter, n): a 16-byte stack slot holds the
    /// counter; the loop loads it, adds 1, stores it back, counts x0 down and branches while it is not zero.
    /// </summary>
    public static GuestImage LoopImage()
    {
        var p = new Arm64Program();
        var a = p.Asm;
        A64Label start = p.Export("_start"), count = p.Export("count"), countMmuOff = p.Export("countMmuOff");
        a.Bind(start);
        p.ExitWith(0);

        a.Bind(count);
        Loop(a);
        a.Ret();

        // SCTLR_EL1.M off around the loop (x5 keeps the old value; x6 = x5 & ~M), ISB after each MSR.
        a.Bind(countMmuOff);
        a.Mrs(X(5), SctlrEl1);
        a.MovImm(X(7), ~1UL);
        a.And(X(6), X(5), X(7));
        a.Msr(SctlrEl1, X(6));
        a.Emit(0xD503_3FDF); // ISB
        Loop(a);
        a.Msr(SctlrEl1, X(5));
        a.Emit(0xD503_3FDF);
        a.Ret();
        return p.Build(start);
    }

    private static void Loop(A64Assembler a)
    {
        A64Label loop = a.CreateLabel();
        a.SubImm(Sp, Sp, 16);
        a.Str(Xzr, Sp);
        a.Bind(loop);
        a.Ldr(X(3), Sp);
        a.AddImm(X(3), X(3), 1);
        a.Str(X(3), Sp);
        a.SubsImm(X(0), X(0), 1);
        a.B(A64Condition.NE, loop);
        a.Ldr(X(0), Sp);
        a.AddImm(Sp, Sp, 16);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Iterations)]
    public ulong X86Emulated() => Count(_x86!, "count");

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong Arm64MmuOn() => Count(_arm!, "count");

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong Arm64MmuOff() => Count(_arm!, "countMmuOff");

    private static ulong Count(MicroVm vm, string name)
    {
        var r = vm.Call(name, Iterations);
        if (r.Value != Iterations) throw new InvalidOperationException($"{name}({Iterations}) ended as {r}");
        return r.Value.Value;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _x86?.Dispose();
        _x86Kvm?.Dispose();
        _x86Kernel?.Dispose();
        _arm?.Dispose();
        _armKvm?.Dispose();
        _armKernel?.Dispose();
    }
}
