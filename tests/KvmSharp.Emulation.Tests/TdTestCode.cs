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
}
