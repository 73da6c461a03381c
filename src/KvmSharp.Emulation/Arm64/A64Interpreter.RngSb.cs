// SPDX-License-Identifier: MIT
using System.Security.Cryptography;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// FEAT_RNG (ID_AA64ISAR0_EL1.RNDR, bits 63:60): the RNDR and RNDRRS registers (Arm ARM DDI 0487 D23 / C5.2
/// "RNDR, Random Number" and "RNDRRS, Reseeded Random Number"), and FEAT_SB (ID_AA64ISAR1_EL1.SB, bits 39:36): the SB
/// speculation barrier (C6.2 SB). KVM sets no HCR_EL2 trap for either (RNDR has none; SCR_EL3.TRNDR is EL3's), so the
/// vCPU answers them itself; without the feature the encodings are unallocated: UNDEFINED.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>op0:op1:CRn:CRm:op2 of RNDR (S3_3_C2_C4_0) and RNDRRS (S3_3_C2_C4_1).</summary>
    private const ushort RndrEncoding = 0xD920, RndrrsEncoding = 0xD921;

    /// <summary>
    /// MRS/MSR on RNDR or RNDRRS; null for any other register. The registers are readable at EL0 and EL1 (no enable
    /// bit); writing them is UNDEFINED (read-only, "MSR … is UNDEFINED" as for an unallocated encoding), and so is any
    /// access without FEAT_RNG. A read gives 64 random bits with NZCV = 0000 — the host's CSPRNG, as Arm64Trng uses,
    /// always has entropy, so the "no entropy" answer (Xt = 0, NZCV = 0100) never comes.
    /// </summary>
    private A64Outcome? TryRandomNumber(bool read, ushort encoding, int rt)
    {
        if (encoding is not (RndrEncoding or RndrrsEncoding)) return null;
        if (((cpu.IdRegs.Model.Aa64Isar0 >> 60) & 0xF) == 0 || !read) return UndefinedContinue();
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        cpu.SetReg(rt, BitConverter.ToUInt64(bytes));
        cpu.Pstate &= ~0xF000_0000UL; // PSTATE.NZCV = '0000': a valid random number
        Next();
        return A64Outcome.Continue;
    }

    /// <summary>
    /// SB: 11010101 00000011 0011 CRm 111 11111 (barriers, op2 111). C6.2 SB: "if !IsFeatureImplemented(FEAT_SB) then
    /// UNDEFINED"; CRm is (0000), so a non-zero CRm is CONSTRAINED UNPREDICTABLE, taken as UNDEFINED (as qemu does).
    /// The interpreter does not speculate, so the barrier has nothing to do.
    /// </summary>
    private A64Outcome SpeculationBarrier(uint insn)
    {
        if (((cpu.IdRegs.Model.Aa64Isar1 >> 36) & 0xF) == 0 || ((insn >> 8) & 0xF) != 0) return UndefinedContinue();
        Next();
        return A64Outcome.Continue;
    }
}
