// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Tests.Infrastructure;

/// <summary>Tiny real-mode guests for SDK tests: where the vCPU starts, and code assembled with Iced.</summary>
internal static class RealMode
{
    /// <summary>CS = 0 (base 0), IP = <paramref name="rip"/>, RFLAGS = 2: the vCPU starts at that physical address
    /// (the reset vector has no memory in these tests).</summary>
    public static void StartAt(Vcpu vcpu, ulong rip)
    {
        var sregs = vcpu.GetSregs();
        sregs.cs.@base = 0;
        sregs.cs.selector = 0;
        vcpu.SetSregs(sregs);
        var regs = vcpu.GetRegs();
        regs.rip = rip;
        regs.rflags = 2;
        vcpu.SetRegs(regs);
    }

    /// <summary>16-bit code assembled at <paramref name="origin"/>.</summary>
    public static byte[] Assemble(ulong origin, Action<Assembler> emit)
    {
        var asm = new Assembler(16);
        emit(asm);
        var code = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(code), origin);
        return code.ToArray();
    }
}
