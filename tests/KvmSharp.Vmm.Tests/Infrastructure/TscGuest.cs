// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>
/// A guest that reads what it can observe of its TSC:
/// <list type="bullet">
/// <item><c>rdtscp()</c> → ECX of RDTSCP (TSC_AUX, zero-extended).</item>
/// <item><c>rdpid()</c> → RDPID's register (TSC_AUX).</item>
/// <item><c>cpuid(leaf)</c>, <c>cpuid_ecx(leaf)</c>, <c>cpuid_edx(leaf)</c> → EAX, ECX, EDX of CPUID leaf (subleaf 0):
/// 0x40000010 EAX is the TSC rate in kHz, 0x80000001 EDX bit 27 RDTSCP, 7 ECX bit 22 RDPID.</item>
/// <item><c>wrmsr(index, value)</c> → 0; <c>rdmsr(index)</c> → the value (a refused MSR is a #GP outcome).</item>
/// </list>
/// </summary>
public static class TscGuest
{
    public static GuestImage Image()
    {
        var p = new GuestProgram();
        Assembler a = p.Asm;
        Label start = p.Export("_start"), rdtscp = p.Export("rdtscp"), rdpid = p.Export("rdpid"), cpuid = p.Export("cpuid");
        Label cpuidEcx = p.Export("cpuid_ecx"), cpuidEdx = p.Export("cpuid_edx");

        p.Place(ref start);
        p.ExitWith(0);

        p.Place(ref rdtscp);
        a.rdtscp();
        a.mov(eax, ecx); // zero-extends into RAX
        a.ret();

        p.Place(ref rdpid);
        a.rdpid(rax);
        a.ret();

        p.Place(ref cpuid);
        Cpuid(a);
        a.ret();

        p.Place(ref cpuidEcx);
        Cpuid(a);
        a.mov(eax, ecx);
        a.ret();

        p.Place(ref cpuidEdx);
        Cpuid(a);
        a.mov(eax, edx);
        a.ret();

        p.AddMsrFunctions();
        return p.Build(start);
    }

    /// <summary>CPUID of leaf EDI, subleaf 0; RBX kept (the SysV ABI has the callee keep it).</summary>
    private static void Cpuid(Assembler a)
    {
        a.push(rbx);
        a.mov(eax, edi);
        a.xor(ecx, ecx);
        a.cpuid();
        a.pop(rbx);
    }
}
