// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using Iced.Intel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// A guest memset and memchr of 1 MiB (REP STOSB, then REPNE SCASB for a byte that is not there) in a micro-VM, on
/// the real kernel (the CPU runs them) and on the emulator (the interpreter takes them a page at a time), per byte,
/// in one run.
/// </summary>
[Config(typeof(BenchConfig))]
public class GuestMemset
{
    private const int Bytes = 1 << 20;
    private const ulong Buffer = 0x20_0000; // the second 2 MiB of a 4 MiB micro-VM: free, identity-mapped

    private MicroVmPair? _vms;

    /// <summary><c>fill(n)</c>: memset(Buffer, 0x5A, n), then scan it for 0x00 (none): returns what RCX is left (0).</summary>
    private static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), fill = p.Export("fill");
        p.Place(ref start);
        p.ExitWith(0);
        p.Place(ref fill);
        a.mov(rcx, rdi);
        a.mov(rdx, rdi);
        a.mov(rdi, (long)Buffer);
        a.mov(al, 0x5A);
        a.rep.stosb();
        a.mov(rcx, rdx);
        a.mov(rdi, (long)Buffer);
        a.xor(eax, eax);
        a.repne.scasb();
        a.mov(rax, rcx);
        a.ret();
        return p.Build(start);
    }

    [GlobalSetup]
    public void Setup() => _vms = new MicroVmPair(Image());

    [Benchmark(Baseline = true, OperationsPerInvoke = Bytes)]
    public ulong RealKernel() => Fill(_vms!.Real);

    [Benchmark(OperationsPerInvoke = Bytes)]
    public ulong Emulated() => Fill(_vms!.Emulated);

    private static ulong Fill(MicroVm vm)
    {
        var r = vm.Call("fill", Bytes);
        if (r.Value != 0) throw new InvalidOperationException($"fill({Bytes}) ended as {r}");
        return r.Value.Value;
    }

    [GlobalCleanup]
    public void Cleanup() => _vms?.Dispose();
}
