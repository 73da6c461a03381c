// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using KvmSharp.Conformance.Guests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Guest-code pieces the TD tests (<see cref="TdxModuleCallTests"/>, <see cref="TdCpuidMsrVeTests"/>) write around
/// their programs: the end of a program and the start of a #VE handler that reports what the TDX module said.
/// </summary>
internal static class TdTestCode
{
    /// <summary>JMP to itself: the end of a test program (the test stops at its last report; the vCPU must not run on into the handlers assembled after it).</summary>
    public static void SpinForever(Assembler a)
    {
        var spin = a.CreateLabel();
        a.Label(ref spin);
        a.jmp(spin);
    }

    /// <summary>
    /// TDG.VP.VEINFO.GET (RAX = status, RCX = exit reason, RDX = qualification, R8 = GLA, R9 = GPA, R10 = length |
    /// info), then a report of each of <paramref name="registers"/> in order.
    /// </summary>
    public static void ReportVeInfo(Assembler a, params AssemblerRegister64[] registers)
    {
        a.mov(eax, TdGuest.TdgVpVeinfoGet);
        a.tdcall();
        foreach (var r in registers) TdGuest.Report(a, r);
    }

    /// <summary>
    /// Installs #VE and #GP handlers that record the outcome of the faulting two-byte instruction in R15 and skip it:
    /// #VE: TDG.VP.VEINFO.GET, R15 = 20 &lt;&lt; 32 | exit reason; #GP: R15 = 13 &lt;&lt; 32 | error code. The handlers
    /// are bound by <see cref="EmitOutcomeHandlers"/> after the program.
    /// </summary>
    public static (Label Ve, Label Gp) InstallOutcomeHandlers(Assembler a)
    {
        Label ve = a.CreateLabel(), gp = a.CreateLabel();
        TdGuest.InstallHandler(a, 20, ve);
        TdGuest.InstallHandler(a, 13, gp);
        return (ve, gp);
    }

    /// <summary>The handlers <see cref="InstallOutcomeHandlers"/> pointed the IDT at.</summary>
    public static void EmitOutcomeHandlers(Assembler a, (Label Ve, Label Gp) handlers)
    {
        var (ve, gp) = handlers;
        a.Label(ref ve);
        a.push(rax);
        a.push(rcx);
        a.push(rdx);
        a.mov(eax, TdGuest.TdgVpVeinfoGet);
        a.tdcall();
        a.mov(r15, 20UL << 32);
        a.or(r15, rcx);
        a.pop(rdx);
        a.pop(rcx);
        a.pop(rax);
        a.add(__qword_ptr[rsp], 2);
        a.iretq();

        a.Label(ref gp);
        a.pop(r14); // error code
        a.mov(r15, 13UL << 32);
        a.or(r15, r14);
        a.add(__qword_ptr[rsp], 2);
        a.iretq();
    }
}
