// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// A tiny real-mode guest whose code lives in ordinary anonymous host memory: slot 0 at <see cref="CodeGpa"/>,
/// CS = DS = that base, so a 16-bit data address is <c>gpa - CodeGpa</c> (<see cref="Offset"/>). The case owns the VM
/// (any VM type) and adds its own data slots above the code page. Code is assembled with Iced, never hand-typed.
/// </summary>
public sealed class HostMemoryGuest : IDisposable
{
    public const ulong CodeGpa = 0x10000;

    /// <summary>One x86 page of code.</summary>
    public const ulong CodeSize = 0x1000;

    private HostMemoryGuest(AnonymousMemory code, MemorySlot codeSlot, Vcpu vcpu)
    {
        Code = code;
        CodeSlot = codeSlot;
        Vcpu = vcpu;
    }

    public AnonymousMemory Code { get; }

    public MemorySlot CodeSlot { get; }

    public Vcpu Vcpu { get; }

    /// <summary>The DS offset of guest-physical address <paramref name="gpa"/> (which must lie in the first 64 KiB above <see cref="CodeGpa"/>).</summary>
    public static ushort Offset(ulong gpa) =>
        gpa >= CodeGpa && gpa - CodeGpa <= ushort.MaxValue ? (ushort)(gpa - CodeGpa) : throw new ArgumentOutOfRangeException(nameof(gpa));

    /// <summary>Assembles <paramref name="program"/> into a code slot of <paramref name="vm"/> and creates vCPU 0 at its first byte.</summary>
    public static HostMemoryGuest Create(Vm vm, Action<Assembler> program)
    {
        ArgumentNullException.ThrowIfNull(vm);
        var code = vm.AllocateMemory(CodeSize);
        MemorySlot? slot = null;
        try
        {
            code.Write(0, RealModeGuest.Assemble(program));
            slot = vm.AddMemorySlot(0, CodeGpa, code);
            var vcpu = vm.CreateVcpu(0);
            var sregs = vcpu.GetSregs();
            sregs.cs.@base = sregs.ds.@base = CodeGpa;
            sregs.cs.selector = sregs.ds.selector = (ushort)(CodeGpa >> 4);
            vcpu.SetSregs(sregs);
            vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
            return new HostMemoryGuest(code, slot, vcpu);
        }
        catch
        {
            slot?.Dispose();
            code.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Vcpu.Dispose();
        CodeSlot.Dispose();
        Code.Dispose();
    }
}
