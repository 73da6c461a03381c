// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// A tiny real-mode guest for the dirty ring tests (the same layout as the conformance suite's HostMemoryGuest): code
/// in one page of anonymous memory as slot 0 at <see cref="CodeGpa"/>, CS = DS = that base, vCPU 0 at its first byte.
/// </summary>
internal sealed class DirtyRingGuest : IDisposable
{
    public const ulong CodeGpa = 0x10000;

    private DirtyRingGuest(AnonymousMemory code, MemorySlot slot, KvmSharp.Vcpu vcpu)
    {
        Code = code;
        Slot = slot;
        Vcpu = vcpu;
    }

    public AnonymousMemory Code { get; }

    public MemorySlot Slot { get; }

    public KvmSharp.Vcpu Vcpu { get; }

    /// <summary>The DS offset of <paramref name="gpa"/> (within 64 KiB above <see cref="CodeGpa"/>).</summary>
    public static ushort Offset(ulong gpa) => checked((ushort)(gpa - CodeGpa));

    public static DirtyRingGuest Create(Vm vm, Action<Assembler> program)
    {
        var asm = new Assembler(16);
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), 0);
        var code = vm.AllocateMemory((ulong)Environment.SystemPageSize);
        code.Write(0, stream.ToArray());
        var slot = vm.AddMemorySlot(0, CodeGpa, code);
        var vcpu = vm.CreateVcpu(0);
        var sregs = vcpu.GetSregs();
        sregs.cs.@base = sregs.ds.@base = CodeGpa;
        sregs.cs.selector = sregs.ds.selector = (ushort)(CodeGpa >> 4);
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
        return new DirtyRingGuest(code, slot, vcpu);
    }

    public void Dispose()
    {
        Vcpu.Dispose();
        Slot.Dispose();
        Code.Dispose();
    }
}
