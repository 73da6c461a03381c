// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using Iced.Intel;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// (j) A guest printing a buffer on the real kernel, three ways, side by side: one OUT to COM1 per byte (the baseline,
/// what kvmsharp_guest.h's kvms_write did before GUEST-ABI v5), one REP OUTSB (KVM's instruction emulator still makes
/// it one exit per byte), and one OUT to the console-write port (v5: the whole buffer in one exit). Each invocation is
/// a micro-VM call that prints <see cref="Bytes"/> bytes, captured as every call's console is.
/// </summary>
[Config(typeof(VmmBenchConfig))]
[MemoryDiagnoser]
public class ConsoleWriteBenchmarks : IDisposable
{
    [Params(64, 1024)]
    public int Bytes { get; set; }

    private Kvm? _kvm;
    private MicroVm? _vm;

    [GlobalSetup]
    public void Setup()
    {
        _kvm = Kvm.Open();
        _vm = MicroVm.Create(Image(), BenchGuest.Options(_kvm) with { ConsoleCapacity = 64 * 1024 });
        foreach (string f in new[] { "out_per_byte", "rep_outsb", "console_write" })
        {
            var r = _vm.Call(f, (ulong)Bytes);
            if (!r.IsSuccess || r.Console.Length != Bytes) throw new InvalidOperationException($"{f}({Bytes}) ended as {r}");
        }
    }

    [Benchmark(Baseline = true, Description = "OUT to COM1 per byte")]
    public long OutPerByte() => Print("out_per_byte");

    [Benchmark(Description = "REP OUTSB to COM1")]
    public long RepOutsb() => Print("rep_outsb");

    [Benchmark(Description = "console-write port, one OUT")]
    public long ConsoleWrite() => Print("console_write");

    private long Print(string function) => _vm!.Call(function, (ulong)Bytes).Exits;

    [GlobalCleanup]
    public void Dispose()
    {
        _vm?.Dispose();
        _kvm?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Three exported functions f(n) printing the first n bytes of a 4 KiB text (n ≤ 4096).</summary>
    private static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), text = a.CreateLabel("text");
        p.Place(ref start);
        p.ExitWith(0);

        Label perByte = p.Export("out_per_byte");
        p.Place(ref perByte);
        a.lea(rsi, __[text]);
        p.PrintOneOutPerByte();
        a.ret();

        Label rep = p.Export("rep_outsb");
        p.Place(ref rep);
        a.lea(rsi, __[text]);
        a.mov(rcx, rdi);
        a.mov(dx, Ports.Com1);
        a.rep.outsb();
        a.ret();

        Label batch = p.Export("console_write");
        p.Place(ref batch);
        a.lea(rsi, __[text]);
        a.mov(rcx, rdi);
        p.ConsoleWrite();
        a.ret();

        a.Label(ref text);
        a.db([.. Enumerable.Range(0, 4096).Select(i => (byte)"0123456789abcdefghijklmnopqrstuvwxyz"[i % 36])]);
        return p.Build(start);
    }
}
