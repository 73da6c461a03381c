// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The polynomial (carry-less) multiplies of Advanced SIMD (Arm ARM DDI 0487 C7.2 PMUL, PMULL/PMULL2; shared
/// pseudocode PolynomialMult): PMUL on bytes (size 00; other sizes unallocated) and PMULL/PMULL2 8 → 16 (size 00) and
/// 64 → 128 (size 11: FEAT_PMULL, "if size == '11' &amp;&amp; !HavePMULL() then UNDEFINED", ID_AA64ISAR0_EL1.AES bits
/// 7:4 = 2 — every preset's model, from Arm64HostCpu.Aa64Isar0). Reached through <see cref="TrySimdEstimates"/>.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ID_AA64ISAR0_EL1.AES (bits 7:4): 1 AESE/AESD/AESMC/AESIMC, 2 also PMULL/PMULL2 on .1D.</summary>
    private uint Isar0Aes => (uint)(cpu.IdRegs.Model.Aa64Isar0 >> 4) & 0xF;

    private bool TrySimdPolynomial(uint insn)
    {
        // PMUL: "Advanced SIMD three same" 0 Q 1 01110 size 1 Rm 10011 1 Rn Rd.
        if ((insn & 0xBF20_FC00) == 0x2E20_9C00) return SimdPmul(insn);
        // PMULL/PMULL2: "Advanced SIMD three different" 0 Q 0 01110 size 1 Rm 1110 00 Rn Rd.
        if ((insn & 0xBF20_FC00) == 0x0E20_E000) return SimdPmull(insn);
        return false;
    }

    /// <summary>PMUL: each byte the low 8 bits of PolynomialMult(Vn.B, Vm.B); size ≠ 00 is unallocated.</summary>
    private bool SimdPmul(uint insn)
    {
        if (((insn >> 22) & 3) != 0) return UndefinedTrue();
        if (FpTrapped()) return true;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], result = 0;
        for (int i = 0; i < 16; i++) result = WithElem(result, i, 8, PolyMul(Elem(n, i, 8), Elem(m, i, 8), 8));
        SetVq((int)(insn & 31), result, insn);
        Next();
        return true;
    }

    /// <summary>
    /// PMULL (Q 0: the low 64 bits of Vn and Vm) / PMULL2 (Q 1: the high 64 bits): size 00 eight 16-bit products of
    /// bytes, size 11 one 128-bit product of doublewords (FEAT_PMULL); sizes 01 and 10 are unallocated.
    /// </summary>
    private bool SimdPmull(uint insn)
    {
        uint size = (insn >> 22) & 3;
        if (size is 1 or 2 || (size == 3 && Isar0Aes < 2)) return UndefinedTrue();
        if (FpTrapped()) return true;
        int shift = ((insn >> 30) & 1) != 0 ? 64 : 0;
        ulong n = (ulong)(cpu.Vregs[(insn >> 5) & 31] >> shift), m = (ulong)(cpu.Vregs[(insn >> 16) & 31] >> shift);
        UInt128 result = 0;
        if (size == 0)
        {
            for (int i = 0; i < 8; i++) result = WithElem(result, i, 16, PolyMul(Elem(n, i, 8), Elem(m, i, 8), 8));
        }
        else
        {
            for (int i = 0; i < 64; i++) if (((m >> i) & 1) != 0) result ^= (UInt128)n << i;
        }
        SetV((int)(insn & 31), result);
        Next();
        return true;
    }
}
