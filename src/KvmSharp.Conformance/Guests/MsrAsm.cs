// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Guests;

/// <summary>Guest code for the MSR cases: WRMSR of an immediate value (ECX = index, EDX:EAX = value).</summary>
internal static class MsrAsm
{
    public static void Wrmsr(Assembler a, uint msr, ulong value)
    {
        a.mov(ecx, unchecked((int)msr));
        a.mov(eax, unchecked((int)(uint)value));
        a.mov(edx, unchecked((int)(uint)(value >> 32)));
        a.wrmsr();
    }
}
