// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The stage-1 MMU switch-on the arm64 guest tests share: MAIR_EL1 = 0xFF (Attr0 Normal Write-Back, Attr1
/// Device-nGnRnE), TCR_EL1, TTBR0_EL1 (and TTBR1_EL1), ISB, then SCTLR_EL1 with bits set and cleared, ISB. Each test
/// keeps its own tables and TCR value; this is only the register sequence (Arm ARM D8.2, "Translation table walk
/// controls"). Clobbers x1 and x2.
/// </summary>
internal static class Arm64MmuSetup
{
    /// <summary>SCTLR_EL1.M: the stage-1 MMU on.</summary>
    public const ulong SctlrM = 1;

    /// <summary>SCTLR_EL1.A: alignment checks on every data access.</summary>
    public const ulong SctlrA = 2;

    private static ulong Enc(int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(3, op1, crn, crm, op2);

    private static readonly ulong Sctlr = Enc(0, 1, 0, 0), Ttbr0 = Enc(0, 2, 0, 0), Ttbr1 = Enc(0, 2, 0, 1),
        Tcr = Enc(0, 2, 0, 2), Mair = Enc(0, 10, 2, 0);

    private const uint Isb = 0xD503_3FDF;

    /// <summary>The sequence above with SCTLR_EL1 |= <paramref name="set"/>, &amp;= ~<paramref name="clear"/>.</summary>
    public static void Emit(A64Assembler a, ulong tcr, ulong ttbr0, ulong set = SctlrM, ulong clear = 0, ulong? ttbr1 = null)
    {
        a.MovImm(X(1), 0xFF);
        a.Msr(Mair, X(1));
        a.MovImm(X(1), tcr);
        a.Msr(Tcr, X(1));
        a.MovImm(X(1), ttbr0);
        a.Msr(Ttbr0, X(1));
        if (ttbr1 is ulong high)
        {
            a.MovImm(X(1), high);
            a.Msr(Ttbr1, X(1));
        }
        a.Emit(Isb);
        a.Mrs(X(1), Sctlr);
        if (set != 0)
        {
            a.MovImm(X(2), set);
            a.Orr(X(1), X(1), X(2));
        }
        if (clear != 0)
        {
            a.MovImm(X(2), ~clear);
            a.And(X(1), X(1), X(2));
        }
        a.Msr(Sctlr, X(1));
        a.Emit(Isb);
    }
}
