// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// The guest both sides run, assembled once with Iced and handed to the C reference as bytes:
/// <c>spin_io(n)</c>: n OUTs to COM1 (n port-I/O exits), then returns 42.
/// </summary>
internal static class BenchGuest
{
    public const ulong MemorySize = MicroVmOptions.DefaultMemorySize;

    public static byte[] Code { get; } = Assemble();

    public static ulong Entry => Layout.ImageBase;

    public static GuestImage Image() => GuestImage.FromFlat(Code, 0, new Dictionary<string, ulong> { ["spin_io"] = 0 });

    /// <summary>Options for the C# side: one shared /dev/kvm like the C side, no console capture (C only counts).</summary>
    public static MicroVmOptions Options(Kvm kvm) => new() { Kvm = kvm, ConsoleCapacity = 0, Timeout = TimeSpan.FromSeconds(10) };

    private static byte[] Assemble()
    {
        var a = new Assembler(64);
        Label loop = a.CreateLabel();
        a.mov(ecx, edi);
        a.mov(dx, Ports.Com1);
        a.Label(ref loop);
        a.@out(dx, al);
        a.dec(ecx);
        a.jnz(loop);
        a.mov(eax, 42);
        a.ret();
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), Layout.ImageBase);
        return stream.ToArray();
    }
}
