// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The optional floating-point instructions of Armv8.2–8.5 (Arm ARM DDI 0487 C7.2 and the shared pseudocode):
/// FEAT_FHM (FMLAL, FMLAL2, FMLSL, FMLSL2, vector and by element; ID_AA64ISAR0_EL1.FHM bits 51:48), FEAT_FCMA
/// (FCMLA vector and by element, FCADD; ID_AA64ISAR1_EL1.FCMA bits 19:16; the half-precision forms also need
/// FEAT_FP16, ID_AA64PFR0_EL1.FP = 1), FEAT_JSCVT (FJCVTZS; ISAR1.JSCVT bits 15:12) and FEAT_FRINTTS (FRINT32Z,
/// FRINT32X, FRINT64Z, FRINT64X, scalar and vector; ISAR1.FRINTTS bits 35:32). <see cref="TryFpExtensions"/> runs first
/// in <see cref="TrySimdFp"/>: an encoding of these groups is UNDEFINED ("if !HaveFHMExt() / !HaveFCADDExt() /
/// !HaveFJCVTZSExt() / !HaveFrintExt() then UNDEFINED", and the unallocated sizes, Q and index combinations) before
/// CheckFPAdvSIMDEnabled64 (<see cref="FpTrapped"/>), as the emulated host's ID registers say — not the guest's
/// writable copy. The element operations are the existing ones: FPMulAddH (<see cref="FpMulAddHalfWide"/>), FPMulAdd
/// and FPAdd at every precision (<see cref="FpMulAddE"/>, <see cref="FpArithE"/>), so FPCR.RMode, FZ, FZ16 and DN and
/// the FPSR cumulative flags follow them; FPToFixedJS and FPRoundIntN are here (A64Interpreter.FpComplex.cs has the
/// FMLAL and complex forms).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ID_AA64ISAR0_EL1.FHM (bits 51:48); ID_AA64ISAR1_EL1.JSCVT (15:12), FCMA (19:16), FRINTTS (35:32).</summary>
    private const int Isar0Fhm = 48, Isar1Jscvt = 12, Isar1Fcma = 16, Isar1Frintts = 32;

    /// <summary>
    /// One encoding class: insn &amp; Mask == Value; the ID field (ISAR0 when <c>Isar0</c>, else ISAR1) at Shift must be
    /// ≥ 1; Unallocated: the class's own UNDEFINED encodings (sizes, Q, index); Run executes (after the FPEN check).
    /// </summary>
    private readonly record struct FpExtensionClass(uint Mask, uint Value, bool Isar0, int Shift,
        Func<A64Interpreter, uint, bool> Unallocated, Action<A64Interpreter, uint> Run);

    private static readonly FpExtensionClass[] FpExtensionClasses =
    [
        // "Advanced SIMD three same": FMLAL (0 Q 0 01110 0 sz 1 Rm 11101 1 Rn Rd), FMLSL (S = bit 23 = 1), FMLAL2/FMLSL2
        // (U = 1, opcode 11001); sz (bit 22) = 1 is UNDEFINED (C7.2 FMLAL, FMLAL2 (vector)).
        new(0xBF20_FC00, 0x0E20_EC00, true, Isar0Fhm, (c, i) => (i & (1u << 22)) != 0, (c, i) => c.SimdFpMulAddLong(i, indexed: false)),
        new(0xBF20_FC00, 0x2E20_CC00, true, Isar0Fhm, (c, i) => (i & (1u << 22)) != 0, (c, i) => c.SimdFpMulAddLong(i, indexed: false)),
        // "Advanced SIMD vector x indexed element" (0 Q U 01111 size L M Rm opcode H 0 Rn Rd), size 10: FMLAL (U 0
        // opcode 0000), FMLSL (0 0100), FMLAL2 (1 1000), FMLSL2 (1 1100); Rm is V0–V15, the index H:L:M.
        new(0xBFC0_B400, 0x0F80_0000, true, Isar0Fhm, (c, i) => false, (c, i) => c.SimdFpMulAddLong(i, indexed: true)),
        new(0xBFC0_B400, 0x2F80_8000, true, Isar0Fhm, (c, i) => false, (c, i) => c.SimdFpMulAddLong(i, indexed: true)),
        // "Advanced SIMD three same (extra)" (0 Q U 01110 size 0 Rm 1 opcode 1 Rn Rd), U 1: FCMLA (opcode 10 rot),
        // FCADD (opcode 11 rot 0). Size 00, and 11 with Q = 0, are UNDEFINED; size 01 needs FEAT_FP16.
        new(0xBF20_E400, 0x2E00_C400, false, Isar1Fcma, (c, i) => c.ComplexUnallocated(i), (c, i) => c.SimdFcmla(i, indexed: false)),
        new(0xBF20_EC00, 0x2E00_E400, false, Isar1Fcma, (c, i) => c.ComplexUnallocated(i), (c, i) => c.SimdFcadd(i)),
        // "Advanced SIMD vector x indexed element", U 1 opcode 0 rot 1: FCMLA (by element), size 01 (index H:L, H = 1
        // needs Q = 1) or 10 (index H, L = 0 and Q = 1); sizes 00 and 11 are UNDEFINED.
        new(0xBF00_9400, 0x2F00_1000, false, Isar1Fcma, (c, i) => c.ComplexIndexedUnallocated(i), (c, i) => c.SimdFcmla(i, indexed: true)),
        // "Conversion between floating-point and integer": FJCVTZS (0 0 0 11110 01 1 11 110 000000 Rn Rd).
        new(0xFFFF_FC00, 0x1E7E_0000, false, Isar1Jscvt, (c, i) => false, (c, i) => c.Fjcvtzs(i)),
        // "Floating-point data-processing (1 source)": FRINT32Z/32X/64Z/64X (0 0 0 11110 ftype 1 0100 op 10000 Rn Rd,
        // opcode 0100 op), ftype 00 (single) or 01 (double); 1x is UNDEFINED.
        new(0xFF3E_7C00, 0x1E28_4000, false, Isar1Frintts, (c, i) => (i & (1u << 23)) != 0, (c, i) => c.FpRoundIntNScalar(i)),
        // "Advanced SIMD two-register miscellaneous": FRINT32Z (0 Q 0 01110 0 sz 10000 11110 10), FRINT64Z (opcode
        // 11111), FRINT32X/64X (U = 1); sz 1 with Q = 0 is UNDEFINED.
        new(0x9FBF_EC00, 0x0E21_E800, false, Isar1Frintts, (c, i) => (i & (1u << 22)) != 0 && (i & (1u << 30)) == 0, (c, i) => c.SimdRoundIntN(i)),
    ];

    /// <summary>
    /// FEAT_FHM, FEAT_FCMA, FEAT_JSCVT and FEAT_FRINTTS: UNDEFINED without the feature or for an unallocated encoding of
    /// its group, else CheckFPAdvSIMDEnabled64, then execute. False (fast, on the mask tests alone): not one of these.
    /// </summary>
    private bool TryFpExtensions(uint insn)
    {
        FpExtensionClass? match = null;
        foreach (var c in FpExtensionClasses)
        {
            if ((insn & c.Mask) != c.Value) continue;
            match = c;
            break;
        }
        if (match is not { } cls) return false;
        ulong id = cls.Isar0 ? cpu.IdRegs.Model.Aa64Isar0 : cpu.IdRegs.Model.Aa64Isar1;
        if (((id >> cls.Shift) & 0xF) == 0 || cls.Unallocated(this, insn)) return UndefinedTrue();
        if (FpTrapped()) return true;
        cls.Run(this, insn);
        Next();
        return true;
    }

    /// <summary>
    /// FJCVTZS Wd, Dn (C7.2 FJCVTZS; shared pseudocode FPToFixedJS): the double truncated toward zero, taken modulo
    /// 2^32; PSTATE.NZCV = 0 Z 0 0 where Z = 1 only for an exact, in-range conversion of a number that is not −0 and
    /// not a positive denormal flushed by FPCR.FZ. A NaN gives 0 with IOC; an infinity 0 with IOC; out of the 32-bit
    /// signed range the wrapped value with IOC (no IXC); an inexact in-range value IXC. FPUnpack flushes a denormal
    /// under FPCR.FZ (IDC).
    /// </summary>
    private void Fjcvtzs(uint insn)
    {
        ulong op = (ulong)cpu.Vregs[(insn >> 5) & 31];
        ulong a = FpFlushIn(op, dbl: true);
        double x = BitConverter.UInt64BitsToDouble(a);
        bool z = true;
        uint result = 0;
        if (double.IsNaN(x) || double.IsInfinity(x))
        {
            // FPUnpack's value of a NaN is 0 (int_result 0); an infinity is out of range and gives 0.
            FpFlag(FpsrIoc);
            z = false;
        }
        else
        {
            double t = Math.Truncate(x); // RoundDown, then +1 for a negative inexact value: toward zero
            result = (uint)((BigInteger)t & uint.MaxValue);
            if (t < -2147483648.0 || t > 2147483647.0)
            {
                FpFlag(FpsrIoc);
                z = false;
            }
            else if (t != x)
            {
                FpFlag(FpsrIxc);
                z = false;
            }
            else if (x == 0 && (double.IsNegative(x) || (op & 0x000F_FFFF_FFFF_FFFFUL) != 0))
            {
                z = false; // −0, or a denormal flushed to zero (op<51:0> not zero)
            }
        }
        cpu.SetReg((int)(insn & 31), result);
        SetNzcv(z ? 0b0100u : 0u);
    }

    /// <summary>FRINT32Z/FRINT32X/FRINT64Z/FRINT64X (scalar): Sd or Dd = FPRoundIntN(Sn or Dn), the rest of Vd zeroed.</summary>
    private void FpRoundIntNScalar(uint insn)
    {
        bool dbl = ((insn >> 22) & 1) != 0, exact = ((insn >> 15) & 1) != 0;
        int intsize = ((insn >> 16) & 1) != 0 ? 64 : 32;
        SetVScalar((int)(insn & 31), FpRoundIntN(FpReg((int)((insn >> 5) & 31), dbl), dbl, exact, intsize), dbl ? 64 : 32);
    }

    /// <summary>FRINT32Z/32X/64Z/64X (vector): each S (sz 0) or D (sz 1) element of Vn; Q = 0 zeroes the upper half.</summary>
    private void SimdRoundIntN(uint insn)
    {
        bool dbl = ((insn >> 22) & 1) != 0, exact = ((insn >> 29) & 1) != 0;
        int intsize = ((insn >> 12) & 1) != 0 ? 64 : 32, esize = dbl ? 64 : 32;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], result = 0;
        for (int e = 0; e < (((insn >> 30) & 1) != 0 ? 128 : 64) / esize; e++)
            result = WithElem(result, e, esize, FpRoundIntN(Elem(n, e, esize), dbl, exact, intsize));
        SetVq((int)(insn & 31), result, insn);
    }

    /// <summary>
    /// FPRoundIntN(op, FPCR, rounding, intsize): FRINT32X/64X (<paramref name="exact"/>: the "X" forms) round in
    /// FPCR.RMode, FRINT32Z/64Z toward zero. A NaN (no NaN processing) or an infinity, and a rounded value outside the
    /// signed <paramref name="intsize"/>-bit range, give the most negative integer −2^(intsize−1) with IOC (and no IXC);
    /// a zero is returned, a zero result takes the operand's sign; an in-range value that changed sets IXC in both
    /// forms. FPUnpack flushes a denormal under FPCR.FZ (IDC).
    /// </summary>
    private ulong FpRoundIntN(ulong a, bool dbl, bool exact, int intsize)
    {
        a = FpFlushIn(a, dbl);
        double x = FpToDouble(a, dbl);
        // '1' : (bias + intsize − 1) : Zeros — −2^(intsize−1).
        ulong mostNegative = dbl ? (1UL << 63) | ((ulong)(1022 + intsize) << 52) : (1UL << 31) | ((ulong)(126 + intsize) << 23);
        if (!double.IsFinite(x))
        {
            FpFlag(FpsrIoc);
            return mostNegative;
        }
        if (x == 0) return a;
        double r = Math.Round(x, FpIntegerRounding(exact ? FpRMode : 3));
        double bound = Math.ScaleB(1.0, intsize - 1);
        if (r >= bound || r < -bound)
        {
            FpFlag(FpsrIoc);
            return mostNegative;
        }
        if (r != x) FpFlag(FpsrIxc);
        if (r == 0) r = double.CopySign(0, x);
        // r is an integer of at most the operand's precision: exact in single too.
        return dbl ? BitConverter.DoubleToUInt64Bits(r) : BitConverter.SingleToUInt32Bits((float)r);
    }
}
