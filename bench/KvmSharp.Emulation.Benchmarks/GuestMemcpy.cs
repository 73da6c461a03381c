// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using Iced.Intel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// A guest memcpy of 256 KiB (REP MOVSB, and REP MOVSQ as kvmsharp_guest.h's memcpy does it) in a micro-VM, on the
/// real kernel (kvm_pvm takes a REP string instruction about one element per microsecond) and on the emulator (the
/// interpreter copies page runs, X86Emulator.StringFast.cs FastMovs), per byte, in one run.
/// </summary>
[Config(typeof(BenchConfig))]
public class GuestMemcpy
{
    private const int Bytes = 256 << 10;
    private const ulong Source = 0x20_0000, Destination = 0x30_0000; // the second 2 MiB of a 4 MiB micro-VM

    private MicroVmPair? _vms;

    /// <summary><c>movsb(n)</c> and <c>movsq(n)</c>: n bytes from Source to Destination; return RCX left (0).</summary>
    private static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), bytes = p.Export("movsb"), qwords = p.Export("movsq");
        p.Place(ref start);
        p.ExitWith(0);
        p.Place(ref bytes);
        a.mov(rcx, rdi);
        a.mov(rsi, (long)Source);
        a.mov(rdi, (long)Destination);
        a.rep.movsb();
        a.mov(rax, rcx);
        a.ret();
        p.Place(ref qwords);
        a.mov(rcx, rdi);
        a.shr(rcx, 3);
        a.mov(rsi, (long)Source);
        a.mov(rdi, (long)Destination);
        a.rep.movsq();
        a.mov(rax, rcx);
        a.ret();
        return p.Build(start);
    }

    [GlobalSetup]
    public void Setup() => _vms = new MicroVmPair(Image());

    [Benchmark(Baseline = true, OperationsPerInvoke = Bytes)]
    public ulong RealKernelMovsb() => Copy(_vms!.Real, "movsb");

    [Benchmark(OperationsPerInvoke = Bytes)]
    public ulong RealKernelMovsq() => Copy(_vms!.Real, "movsq");

    [Benchmark(OperationsPerInvoke = Bytes)]
    public ulong EmulatedMovsb() => Copy(_vms!.Emulated, "movsb");

    [Benchmark(OperationsPerInvoke = Bytes)]
    public ulong EmulatedMovsq() => Copy(_vms!.Emulated, "movsq");

    private static ulong Copy(MicroVm vm, string function)
    {
        var r = vm.Call(function, Bytes);
        if (r.Value != 0) throw new InvalidOperationException($"{function}({Bytes}) ended as {r}");
        return r.Value.Value;
    }

    [GlobalCleanup]
    public void Cleanup() => _vms?.Dispose();
}
