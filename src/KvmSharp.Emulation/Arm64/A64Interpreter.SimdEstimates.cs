// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The reciprocal estimates and steps of Advanced SIMD (Arm ARM DDI 0487 C7.2 FRECPE, FRSQRTE, FRECPS, FRSQRTS,
/// FRECPX, URECPE, URSQRTE; shared pseudocode FPRecipEstimate, FPRSqrtEstimate, RecipEstimate, RecipSqrtEstimate,
/// UnsignedRecipEstimate, UnsignedRSqrtEstimate, FPRecipStepFused, FPRSqrtStepFused, FPRecpX) at every precision,
/// vector and scalar, and FCVTXN/FCVTXN2 (FPConvert with FPRounding_ODD). The estimates are the pseudocode's exact
/// table-free integer algorithms (no FEAT_RPRES/FEAT_AFP: FPCR.AH is RES0 here, so the 8-bit estimates). The half
/// forms sit in the FP16 groups ("Advanced SIMD (scalar) three same FP16", "(scalar) two-register miscellaneous FP16")
/// and are UNDEFINED unless ID_AA64PFR0_EL1.AdvSIMD (bits 23:20) is 1 (FEAT_FP16). <see cref="TrySimdEstimates"/> is
/// the last decoder of <see cref="TrySimdFp"/>'s chain; it also hands on to the polynomial multiplies
/// (A64Interpreter.SimdPolynomial.cs), ADDHN/SUBHN/RADDHN/RSUBHN (A64Interpreter.SimdNarrowHigh.cs) and the
/// cryptographic extension (A64Interpreter.SimdCrypto.cs).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ID_AA64PFR0_EL1.AdvSIMD (bits 23:20) = 1: Advanced SIMD with half-precision arithmetic (FEAT_FP16).</summary>
    private bool HasAdvSimdFp16 => ((cpu.IdRegs.Model.Aa64Pfr0 >> 20) & 0xF) == 1;

    /// <summary>The estimate-group operations, per lane.</summary>
    private enum Est { RecipEstimate, RSqrtEstimate, RecpX, URecipEstimate, URSqrtEstimate, RecipStep, RSqrtStep }

    private bool TrySimdEstimates(uint insn)
    {
        // Advanced SIMD (scalar) two-register miscellaneous: 0 Q U 01110 a sz 10000 opcode 10 Rn Rd / 01 U 11110 ….
        if ((insn & 0x9F3E_0C00) == 0x0E20_0800) return SimdEstimateMisc(insn, scalar: false, half: false);
        if ((insn & 0xDF3E_0C00) == 0x5E20_0800) return SimdEstimateMisc(insn, scalar: true, half: false);
        // The FP16 forms: 0 Q U 01110 a 111100 opcode 10 Rn Rd / 01 U 11110 a 111100 opcode 10 Rn Rd.
        if ((insn & 0x9F7E_0C00) == 0x0E78_0800) return SimdEstimateMisc(insn, scalar: false, half: true);
        if ((insn & 0xDF7E_0C00) == 0x5E78_0800) return SimdEstimateMisc(insn, scalar: true, half: true);
        // FRECPS (a 0) / FRSQRTS (a 1), (scalar) three same: 0 Q 0 01110 a sz 1 Rm 11111 1 Rn Rd / 01 0 11110 ….
        if ((insn & 0xBF20_FC00) == 0x0E20_FC00) return SimdEstimateStep(insn, scalar: false, half: false);
        if ((insn & 0xFF20_FC00) == 0x5E20_FC00) return SimdEstimateStep(insn, scalar: true, half: false);
        // The FP16 three same forms: 0 Q 0 01110 a 10 Rm 00 111 1 Rn Rd / 01 0 11110 a 10 Rm 00 111 1 Rn Rd.
        if ((insn & 0xBF60_FC00) == 0x0E40_3C00) return SimdEstimateStep(insn, scalar: false, half: true);
        if ((insn & 0xFF60_FC00) == 0x5E40_3C00) return SimdEstimateStep(insn, scalar: true, half: true);
        return TrySimdPolynomial(insn) || TrySimdNarrowHigh(insn) || TrySimdCrypto(insn);
    }

    /// <summary>
    /// FRECPE (U 0 a 1 opcode 11101), FRSQRTE (U 1 a 1 11101), FRECPX (scalar only, U 0 a 1 11111), URECPE (vector, U 0
    /// a 1 sz 0 11100), URSQRTE (vector, U 1 a 1 sz 0 11100) and FCVTXN (U 1 a 0 sz 1 10110). sz 1 with Q 0 (a .1D
    /// vector), URECPE/URSQRTE with sz 1 and FCVTXN with sz 0 are unallocated. False for every other opcode.
    /// </summary>
    private bool SimdEstimateMisc(uint insn, bool scalar, bool half)
    {
        bool q = ((insn >> 30) & 1) != 0, u = ((insn >> 29) & 1) != 0, a = ((insn >> 23) & 1) != 0, sz = ((insn >> 22) & 1) != 0;
        uint opcode = (insn >> 12) & 31;
        if (!half && !a && u && opcode == 0x16) return SimdFcvtxn(insn, scalar, sz);
        Est? op = (opcode, u, a) switch
        {
            (0x1D, false, true) => Est.RecipEstimate,
            (0x1D, true, true) => Est.RSqrtEstimate,
            (0x1F, false, true) when scalar => Est.RecpX,
            (0x1C, false, true) when !scalar && !half => Est.URecipEstimate,
            (0x1C, true, true) when !scalar && !half => Est.URSqrtEstimate,
            _ => null,
        };
        if (op is null) return false;
        bool unallocated = half ? !HasAdvSimdFp16
            : op is Est.URecipEstimate or Est.URSqrtEstimate ? sz : sz && !q && !scalar;
        if (unallocated) return UndefinedTrue();
        if (FpTrapped()) return true;
        int esize = half ? 16 : sz ? 64 : 32;
        SimdEstimateLanes(insn, op.Value, esize, scalar, 0);
        return true;
    }

    /// <summary>FRECPS (a 0) and FRSQRTS (a 1): a .1D vector (sz 1, Q 0) is unallocated; the FP16 forms need FEAT_FP16.</summary>
    private bool SimdEstimateStep(uint insn, bool scalar, bool half)
    {
        bool q = ((insn >> 30) & 1) != 0, a = ((insn >> 23) & 1) != 0, sz = ((insn >> 22) & 1) != 0;
        if (half ? !HasAdvSimdFp16 : sz && !q && !scalar) return UndefinedTrue();
        if (FpTrapped()) return true;
        SimdEstimateLanes(insn, a ? Est.RSqrtStep : Est.RecipStep, half ? 16 : sz ? 64 : 32, scalar, cpu.Vregs[(insn >> 16) & 31]);
        return true;
    }

    /// <summary>Each lane of Vn (and Vm for the steps) through <paramref name="op"/>; a scalar result zeroes the rest of Vd, Q = 0 the upper half.</summary>
    private void SimdEstimateLanes(uint insn, Est op, int esize, bool scalar, UInt128 m)
    {
        bool q = ((insn >> 30) & 1) != 0;
        int elements = scalar ? 1 : (q ? 128 : 64) / esize;
        UInt128 n = cpu.Vregs[(insn >> 5) & 31], result = 0;
        for (int i = 0; i < elements; i++)
        {
            ulong x = Elem(n, i, esize);
            ulong r = op switch
            {
                Est.RecipEstimate => FpRecipEstimate(x, esize),
                Est.RSqrtEstimate => FpRSqrtEstimate(x, esize),
                Est.RecpX => FpRecpX(x, esize),
                Est.URecipEstimate => UnsignedRecipEstimate((uint)x),
                Est.URSqrtEstimate => UnsignedRSqrtEstimate((uint)x),
                Est.RecipStep => FpRecipStepFused(x, Elem(m, i, esize), esize),
                _ => FpRSqrtStepFused(x, Elem(m, i, esize), esize),
            };
            result = WithElem(result, i, esize, r);
        }
        SetV((int)(insn & 31), scalar ? result & LaneMask(esize) : q ? result : result & ulong.MaxValue);
        Next();
    }

    /// <summary>FPUnpack's input flush at N bits: FPCR.FZ16 for half (no IDC), FPCR.FZ for single and double (IDC).</summary>
    private ulong FpFlushInN(ulong op, int n) => n == 16 ? HalfFlushIn(op) : FpFlushIn(op, n == 64);

    /// <summary>FPProcessNaN at N bits: IOC for a signalling NaN, then FPCR.DN's default NaN or the NaN quietened.</summary>
    private ulong FpProcessNanN(ulong op, int n)
    {
        if (n != 16) return FpProcessNan(op, n == 64);
        if ((op & 0x200) == 0) FpFlag(FpsrIoc);
        return FpDefaultNan ? HalfDefaultNan : op | 0x200;
    }

    /// <summary>The exponent and fraction widths of an N-bit format (5/10, 8/23, 11/52).</summary>
    private static (int ExpBits, int FracBits) FpFormat(int n) => n switch { 16 => (5, 10), 32 => (8, 23), _ => (11, 52) };

    /// <summary>
    /// FPRecipEstimate (shared pseudocode): a NaN processed; ±∞ → ±0; ±0 → ±∞ with DZC; |x| below 2^−16, 2^−128,
    /// 2^−1024 (a denormal whose fraction's top two bits are 0) overflows — ∞ or the largest normal as FPCR.RMode rounds
    /// toward that sign (RN: ∞, RP: ∞ when positive, RM: ∞ when negative, RZ: never), OFC and IXC; under FPCR.FZ
    /// (FZ16 for half) |x| ≥ 2^14, 2^126, 2^1022 gives ±0 with UFC alone; else RecipEstimate of the fraction's top 8 bits
    /// scaled to [0.5, 1), the result exponent 2·bias − 1 − exp, with the denormal results (exponent 0 or −1) shifted in.
    /// </summary>
    private ulong FpRecipEstimate(ulong op, int n)
    {
        var (ebits, fbits) = FpFormat(n);
        op = FpFlushInN(op, n);
        ulong sign = (op >> (n - 1)) & 1, emax = (1UL << ebits) - 1, fraction = op & ((1UL << fbits) - 1);
        int exp = (int)((op >> fbits) & emax), bias = (int)(emax >> 1);
        if (exp == (int)emax && fraction != 0) return FpProcessNanN(op, n);
        if (exp == (int)emax) return sign << (n - 1);
        if (exp == 0 && fraction == 0)
        {
            FpFlag(FpsrDzc);
            return (sign << (n - 1)) | (emax << fbits);
        }
        if (exp == 0 && fraction < 1UL << (fbits - 2))
        {
            uint mode = FpRMode;
            bool toInfinity = mode == 0 || (mode == 1 && sign == 0) || (mode == 2 && sign != 0);
            FpFlag(FpsrOfc | FpsrIxc);
            return (sign << (n - 1)) | (toInfinity ? emax << fbits : ((emax - 1) << fbits) | ((1UL << fbits) - 1));
        }
        bool flush = n == 16 ? (cpu.Fpcr & FpcrFz16) != 0 : FpFlushToZero;
        if (flush && exp >= 2 * bias - 1)
        {
            FpFlag(FpsrUfc);
            return sign << (n - 1);
        }
        ulong frac52 = fraction << (52 - fbits);
        if (exp == 0)
        {
            if ((frac52 >> 51) == 0)
            {
                exp = -1;
                frac52 <<= 2;
            }
            else
            {
                frac52 <<= 1;
            }
        }
        uint estimate = RecipEstimate(256 | (uint)((frac52 >> 44) & 0xFF)); // A64Interpreter.Sve2Integer.cs
        int resultExp = 2 * bias - 1 - exp;
        frac52 = (ulong)(estimate & 0xFF) << 44;
        if (resultExp == 0)
        {
            frac52 = (1UL << 51) | (frac52 >> 1);
        }
        else if (resultExp == -1)
        {
            frac52 = (1UL << 50) | (frac52 >> 2);
            resultExp = 0;
        }
        return (sign << (n - 1)) | ((ulong)resultExp << fbits) | (frac52 >> (52 - fbits));
    }

    /// <summary>
    /// FPRSqrtEstimate (shared pseudocode): a NaN processed; ±0 → ±∞ with DZC; a negative number → the default NaN with
    /// IOC; +∞ → +0; else a denormal normalised (the exponent decremented per shift), the fraction scaled to [0.25, 1)
    /// keeping the exponent's parity ('1':fraction&lt;51:44&gt; for an even exponent, '01':fraction&lt;51:45&gt; for an
    /// odd one), RecipSqrtEstimate, the exponent (3·bias − 1 − exp) DIV 2. FPCR.FZ/FZ16 flush a denormal operand first.
    /// </summary>
    private ulong FpRSqrtEstimate(ulong op, int n)
    {
        var (ebits, fbits) = FpFormat(n);
        op = FpFlushInN(op, n);
        ulong sign = (op >> (n - 1)) & 1, emax = (1UL << ebits) - 1, fraction = op & ((1UL << fbits) - 1);
        int exp = (int)((op >> fbits) & emax), bias = (int)(emax >> 1);
        if (exp == (int)emax && fraction != 0) return FpProcessNanN(op, n);
        if (exp == 0 && fraction == 0)
        {
            FpFlag(FpsrDzc);
            return (sign << (n - 1)) | (emax << fbits);
        }
        if (sign != 0)
        {
            FpFlag(FpsrIoc);
            return n == 16 ? HalfDefaultNan : FpDefaultNanBits(n == 64);
        }
        if (exp == (int)emax) return 0;
        ulong frac52 = fraction << (52 - fbits);
        const ulong Mask52 = (1UL << 52) - 1;
        if (exp == 0)
        {
            while ((frac52 >> 51) == 0)
            {
                frac52 = (frac52 << 1) & Mask52;
                exp--;
            }
            frac52 = (frac52 << 1) & Mask52;
        }
        uint scaled = (exp & 1) == 0 ? 256 | (uint)((frac52 >> 44) & 0xFF) : 128 | (uint)((frac52 >> 45) & 0x7F);
        int resultExp = (3 * bias - 1 - exp) / 2; // 44, 380, 3068 − exp: positive, so C#'s division is DIV
        ulong estimate = RecipSqrtEstimate(scaled) & 0xFF; // A64Interpreter.Sve2Integer.cs
        return ((ulong)resultExp << fbits) | (estimate << (fbits - 8));
    }

    /// <summary>UnsignedRecipEstimate: an operand below 2^31 gives all ones; else RecipEstimate(operand&lt;31:23&gt;) in bits 31:23.</summary>
    private static ulong UnsignedRecipEstimate(uint x) => (x >> 31) == 0 ? 0xFFFF_FFFFUL : (ulong)RecipEstimate(x >> 23) << 23;

    /// <summary>UnsignedRSqrtEstimate: an operand below 2^30 gives all ones; else RecipSqrtEstimate(operand&lt;31:23&gt;) in bits 31:23.</summary>
    private static ulong UnsignedRSqrtEstimate(uint x) => (x >> 30) == 0 ? 0xFFFF_FFFFUL : (ulong)RecipSqrtEstimate(x >> 23) << 23;

    /// <summary>
    /// FPRecpX (shared pseudocode): a NaN processed; otherwise the sign, the exponent field inverted (a zero or
    /// denormal: the largest normal exponent, emax − 1) and a zero fraction. FPUnpack still flushes (IDC under FPCR.FZ).
    /// </summary>
    private ulong FpRecpX(ulong op, int n)
    {
        var (ebits, fbits) = FpFormat(n);
        ulong flushed = FpFlushInN(op, n), emax = (1UL << ebits) - 1;
        ulong exp = (op >> fbits) & emax, sign = op & (1UL << (n - 1));
        if (exp == emax && (op & ((1UL << fbits) - 1)) != 0) return FpProcessNanN(flushed, n);
        return sign | ((exp == 0 ? emax - 1 : ~exp & emax) << fbits);
    }

    /// <summary>
    /// FPRecipStepFused(op1, op2) = 2 − op1 × op2, fused: op1 negated (FPNeg, a NaN too) before FPProcessNaNs; ∞ × 0
    /// gives +2.0 (no IOC); otherwise FPMulAdd(2.0, −op1, op2), whose exact zero is −0 under RM only.
    /// </summary>
    private ulong FpRecipStepFused(ulong op1, ulong op2, int n)
    {
        ulong sign = 1UL << (n - 1);
        ulong a = FpFlushInN(op1, n) ^ sign, b = FpFlushInN(op2, n);
        int esz = n / 8;
        if (!FpIsNanN(a, n) && !FpIsNanN(b, n) && FpInfTimesZero(a, b, n)) return FpConstE(2.0, esz);
        return n == 64 ? StepMulAddDouble(2.0, a, b) : FpMulAddE(FpConstE(2.0, esz), a, b, esz);
    }

    /// <summary>
    /// FPRSqrtStepFused(op1, op2) = (3 − op1 × op2) / 2, fused and rounded once: op1 negated before FPProcessNaNs;
    /// ∞ × 0 gives +1.5; ∞ × finite the infinity. Otherwise computed as FPMulAdd(1.5, −op1 / 2, op2) with the halving
    /// applied to an operand it is exact for (half operands in double always; else one whose exponent field is ≥ 2).
    /// When neither is (both below 2^(2 − bias)), |op1 × op2| is far below an ulp of 1.5 and FPMulAdd(1.5, −op1, op2)
    /// rounds to the same value with the same flags. The halved sum (3 + p) / 2 is never tiny (the exact product's
    /// granularity keeps it ≥ 2^−105 when not 0), so it rounds as FPRound would; overflow is that of the halved value.
    /// </summary>
    private ulong FpRSqrtStepFused(ulong op1, ulong op2, int n)
    {
        ulong sign = 1UL << (n - 1);
        ulong a = FpFlushInN(op1, n) ^ sign, b = FpFlushInN(op2, n);
        int esz = n / 8;
        if (FpIsNanN(a, n) || FpIsNanN(b, n)) return FpMulAddE(FpConstE(1.5, esz), a, b, esz);
        if (FpInfTimesZero(a, b, n)) return FpConstE(1.5, esz);
        if (n == 16)
        {
            uint before = cpu.Fpsr;
            ulong x = BitConverter.DoubleToUInt64Bits(BitConverter.UInt64BitsToDouble(HalfToDouble(a)) * 0.5);
            return HalfOut(FpMulAdd(BitConverter.DoubleToUInt64Bits(1.5), x, HalfToDouble(b), dbl: true), before);
        }
        var (ebits, fbits) = FpFormat(n);
        ulong emax = (1UL << ebits) - 1, one = 1UL << fbits;
        ulong expA = (a >> fbits) & emax, expB = (b >> fbits) & emax;
        // Halving a finite normal with exponent field ≥ 2 decrements the field; an infinity stays itself.
        if (expA >= 2 && expA != emax) a -= one;
        else if (expB >= 2 && expB != emax) b -= one;
        return n == 64 ? StepMulAddDouble(1.5, a, b) : FpMulAdd(FpConstE(1.5, esz), a, b, dbl: false);
    }

    /// <summary>
    /// FPMulAdd(<paramref name="addend"/>, x, y) at double for the steps (operands flushed, not NaN, not ∞ × 0). A
    /// non-zero product below 2^−900 (from the exponents: the double product itself may underflow) is far below an ulp
    /// of the addend (2.0 or 1.5): the result is the addend or its neighbour toward the product's sign as FPCR.RMode
    /// says, inexact (IXC; the exact error is known, so no directed mode is refused). Otherwise FpMulAdd.
    /// </summary>
    private ulong StepMulAddDouble(double addend, ulong x, ulong y)
    {
        double a = BitConverter.UInt64BitsToDouble(x), b = BitConverter.UInt64BitsToDouble(y);
        if (a != 0 && b != 0 && double.IsFinite(a) && double.IsFinite(b) && Math.ILogB(a) + Math.ILogB(b) + 2 <= -900)
        {
            FpFlag(FpsrIxc);
            int direction = double.IsNegative(a) != double.IsNegative(b) ? -1 : 1;
            return BitConverter.DoubleToUInt64Bits(FpDirected(addend, direction, FpRMode));
        }
        return FpMulAdd(BitConverter.DoubleToUInt64Bits(addend), x, y, dbl: true);
    }

    private static bool FpIsNanN(ulong x, int n)
    {
        var (ebits, fbits) = FpFormat(n);
        ulong emax = (1UL << ebits) - 1;
        return ((x >> fbits) & emax) == emax && (x & ((1UL << fbits) - 1)) != 0;
    }

    /// <summary>One operand an infinity and the other a zero (after the input flush).</summary>
    private static bool FpInfTimesZero(ulong a, ulong b, int n)
    {
        ulong magnitude = (1UL << (n - 1)) - 1;
        var (_, fbits) = FpFormat(n);
        ulong inf = magnitude & ~((1UL << fbits) - 1);
        ulong ma = a & magnitude, mb = b & magnitude;
        return (ma == inf && mb == 0) || (ma == 0 && mb == inf);
    }

    /// <summary>
    /// FCVTXN/FCVTXN2 (vector: each .D lane of Vn to a .S lane of the low — or, for the "2" form, the high — half of Vd,
    /// the other half kept for FCVTXN2 and zeroed for FCVTXN) and FCVTXN (scalar, Sd from Dn): FPConvert(…, FPCR,
    /// FPRounding_ODD). sz 0 is unallocated.
    /// </summary>
    private bool SimdFcvtxn(uint insn, bool scalar, bool sz)
    {
        if (!sz) return UndefinedTrue();
        if (FpTrapped()) return true;
        bool q = ((insn >> 30) & 1) != 0;
        int rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31];
        if (scalar)
        {
            SetVScalar(rd, FpConvertToSingleOdd((ulong)n), 32); // A64Interpreter.Sve2Fp.cs
        }
        else
        {
            ulong low = FpConvertToSingleOdd((ulong)n) | (FpConvertToSingleOdd((ulong)(n >> 64)) << 32);
            SetV(rd, q ? ((UInt128)low << 64) | (ulong)cpu.Vregs[rd] : low);
        }
        Next();
        return true;
    }
}
