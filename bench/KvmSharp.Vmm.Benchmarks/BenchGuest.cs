// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// The guest both sides run, assembled once with Iced and handed to the C reference as bytes:
/// <c>spin_io(n)</c>: n OUTs to COM1 (n port-I/O exits), then returns 42. After it (C# only, the C reference has no
/// host functions) <c>spin_hostcall(n)</c>: n host calls of <see cref="EchoId"/> with arg0 = n … 1, then returns 42.
/// </summary>
internal static class BenchGuest
{
    public const ulong MemorySize = MicroVmOptions.DefaultMemorySize;

    /// <summary>The host function spin_hostcall calls: echo(arg0) → arg0.</summary>
    public const uint EchoId = 1;

    private static readonly (byte[] Code, ulong HostCallOffset, ulong StoreIoOffset) Assembled = Assemble();

    public static byte[] Code => Assembled.Code;

    public static ulong Entry => Layout.ImageBase;

    public static GuestImage Image() => GuestImage.FromFlat(Code, 0, new Dictionary<string, ulong>
    {
        ["spin_io"] = 0,
        ["spin_hostcall"] = Assembled.HostCallOffset,
        ["spin_store_io"] = Assembled.StoreIoOffset,
    });

    /// <summary>Set to <c>host</c> or <c>guest_memfd</c>, forces that memory on both sides (vmm_ref.c reads it too).</summary>
    public const string ForceVariable = "VMM_REF_MEMORY";

    private static readonly Lazy<(GuestMemoryBacking Backing, string Why)> s_memory = new(() =>
    {
        switch (Environment.GetEnvironmentVariable(ForceVariable))
        {
            case "host": return (GuestMemoryBacking.HostMemory, $"{ForceVariable}=host");
            case "guest_memfd": return (GuestMemoryBacking.GuestMemfd, $"{ForceVariable}=guest_memfd");
        }
        using var kvm = Kvm.Open();
        using var vm = kvm.CreateVm();
        string? why = GuestMemory.GuestMemfdUnavailableReason(vm);
        return why is null
            ? (GuestMemoryBacking.GuestMemfd, "the best /dev/kvm offers")
            : (GuestMemoryBacking.HostMemory, why);
    });

    /// <summary>
    /// The guest memory both sides use: the best this host's /dev/kvm offers (a guest_memfd, else host memory on a
    /// kernel without guest_memfd), decided once, or what <see cref="ForceVariable"/> says. The C side decides the same
    /// way (vmm_ref_open) and <see cref="CReferenceVmm.Open"/> checks that it did.
    /// </summary>
    public static GuestMemoryBacking Memory => s_memory.Value.Backing;

    /// <summary>One line for the benchmark output: which memory, and why.</summary>
    public static string DescribeMemory() => s_memory.Value.Backing == GuestMemoryBacking.HostMemory
        ? $"guest memory: host memory (MAP_PRIVATE anonymous, plain slot) on both sides: {s_memory.Value.Why}"
        : $"guest memory: guest_memfd (MMAP|INIT_SHARED) on both sides: {s_memory.Value.Why}";

    /// <summary>Options for the C# side: one shared /dev/kvm like the C side, no console capture (C only counts).</summary>
    public static MicroVmOptions Options(Kvm kvm)
    {
        var functions = new HostFunctions();
        functions.Add(EchoId, "echo", c => c.Args[0]);
        return new() { Kvm = kvm, ConsoleCapacity = 0, Timeout = TimeSpan.FromSeconds(10), HostFunctions = functions, Memory = Memory };
    }

    private static (byte[], ulong, ulong) Assemble()
    {
        var a = new Assembler(64);
        Label loop = a.CreateLabel(), hostcall = a.CreateLabel(), again = a.CreateLabel(), storeIo = a.CreateLabel(), store = a.CreateLabel();
        a.mov(ecx, edi);
        a.mov(dx, Ports.Com1);
        a.Label(ref loop);
        a.@out(dx, al);
        a.dec(ecx);
        a.jnz(loop);
        a.mov(eax, 42);
        a.ret();

        // The least a guest does per host call: the id once, arg0 and the OUT per call (GUEST-ABI.md, "Host calls").
        a.Label(ref hostcall);
        a.mov(ecx, edi);
        a.mov(r11, HostCallBlock.Base);
        a.mov(__qword_ptr[r11 + (int)HostCallBlock.Function], (int)EchoId);
        a.mov(dx, Ports.HostCall);
        a.Label(ref again);
        a.mov(__qword_ptr[r11 + (int)HostCallBlock.Args], rcx);
        a.@out(dx, al);
        a.dec(ecx);
        a.jnz(again);
        a.mov(eax, 42);
        a.ret();
        // For the probe only: the guest half of spin_hostcall (a store to the block, an OUT) sent to COM1 instead, to
        // split a host call's extra cost between the guest's store and the host-call device.
        a.Label(ref storeIo);
        a.mov(ecx, edi);
        a.mov(r11, HostCallBlock.Base);
        a.mov(dx, Ports.Com1);
        a.Label(ref store);
        a.mov(__qword_ptr[r11 + (int)HostCallBlock.Args], rcx);
        a.@out(dx, al);
        a.dec(ecx);
        a.jnz(store);
        a.mov(eax, 42);
        a.ret();
        using var stream = new MemoryStream();
        var result = a.Assemble(new StreamCodeWriter(stream), Layout.ImageBase, BlockEncoderOptions.ReturnNewInstructionOffsets);
        return (stream.ToArray(), result.GetLabelRIP(hostcall) - Layout.ImageBase, result.GetLabelRIP(storeIo) - Layout.ImageBase);
    }
}
