// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE2 widening and narrowing instructions (Arm ARM C4.1 "SVE2 Widening Integer Arithmetic", "SVE2 Integer
/// Multiply-Add - Unpredicated" (long forms), "SVE2 Accumulate" (ABAL, ADCL/SBCL), "SVE2 Misc" (interleaved long
/// add/subtract, EORBT/EORTB), "SVE2 Narrowing"; C8.2 pseudocode). The
/// bottom (B, T = 0) forms read the even-numbered half-size source elements, the top (T = 1) forms the odd ones;
/// narrowing B forms write the even-numbered half-size elements and zero the odd ones, T forms write the odd ones
/// and keep the even ones.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>
    /// Runs <paramref name="op"/>(Zd[e], Zn half-size element 2e + T, Zm half-size element 2e + T) for every element of the
    /// double-size destination (size 00 reserved) and writes Zd; <paramref name="unsigned"/> picks how the sources extend.
    /// </summary>
    private bool Sve2Long(uint insn, bool unsigned, bool top, Func<Int128, Int128, Int128, int, ulong> op)
    {
        int esz = Esz(insn);
        if (esz == 1) return false;
        int half = esz / 2, t = top ? 1 : 0, zd = (int)(insn & 31);
        var d = Z(zd, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z((int)((insn >> 16) & 31), _z2);
        for (int e = 0; e < Elements(esz); e++)
        {
            SetE(d, e, esz, op(Ev(d, e, esz, unsigned), Ev(n, 2 * e + t, half, unsigned), Ev(m, 2 * e + t, half, unsigned), esz) & EMask(esz));
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>
    /// SADDLB/T, UADDLB/T, SSUBLB/T, USUBLB/T, SABDLB/T, UABDLB/T (01000101 size 0 Zm 00 op S U T Zn Zd; op = 1 with
    /// S = 0 reserved).
    /// </summary>
    private bool Sve2LongAddSub(uint insn)
    {
        bool abd = ((insn >> 13) & 1) != 0, sub = ((insn >> 12) & 1) != 0, u = ((insn >> 11) & 1) != 0, top = ((insn >> 10) & 1) != 0;
        if (abd && !sub) return false;
        return Sve2Long(insn, u, top, (_, a, b, _) => (ulong)(abd ? Int128.Abs(a - b) : sub ? a - b : a + b));
    }

    /// <summary>SADDWB/T, UADDWB/T, SSUBWB/T, USUBWB/T (01000101 size 0 Zm 010 S U T Zn Zd): Zd = Zn ± Zm's half-size element.</summary>
    private bool Sve2WideAddSub(uint insn)
    {
        int esz = Esz(insn);
        if (esz == 1) return false;
        bool sub = ((insn >> 12) & 1) != 0, u = ((insn >> 11) & 1) != 0;
        int half = esz / 2, t = (int)((insn >> 10) & 1);
        var n = Z((int)((insn >> 5) & 31), _z0);
        var m = Z((int)((insn >> 16) & 31), _z1);
        for (int e = 0; e < Elements(esz); e++)
        {
            ulong x = E(n, e, esz), y = (ulong)Ev(m, 2 * e + t, half, u);
            SetE(n, e, esz, (sub ? x - y : x + y) & EMask(esz));
        }
        SetZ((int)(insn & 31), n);
        Next();
        return true;
    }

    /// <summary>
    /// SQDMULLB/T (SignedSat(2 × a × b)), PMULLB/T (carry-less), SMULLB/T, UMULLB/T (01000101 size 0 Zm 011 op U T
    /// Zn Zd).
    /// </summary>
    private bool Sve2MulLong(uint insn)
    {
        bool mul = ((insn >> 12) & 1) != 0, u = ((insn >> 11) & 1) != 0, top = ((insn >> 10) & 1) != 0;
        int esz = Esz(insn);
        if (!mul && u)
        {
            // PMULLB/T: size 01 gives .H from .B, 11 gives .D from .S; 10 is reserved and 00 (.Q from .D) is
            // FEAT_SVE_PMULL128 (ID_AA64ZFR0_EL1.AES = 2; A64Interpreter.Sve2Crypto.cs), UNDEFINED on a CPU without it.
            if (esz == 4) return false;
            if (esz == 1) return Zfr0Field(4) >= 2 && Sve2PolyMulLong128(insn);
            return Sve2Long(insn, true, top, (_, a, b, sz) => PolyMul((ulong)a, (ulong)b, 4 * sz));
        }
        if (!mul) return Sve2Long(insn, false, top, (_, a, b, sz) => SatS(2 * a * b, sz));
        return Sve2Long(insn, u, top, (_, a, b, _) => (ulong)(a * b));
    }

    /// <summary>SMLALB/T, UMLALB/T, SMLSLB/T, UMLSLB/T (01000100 size 0 Zm 010 S U T Zn Zda): Zda ± a × b.</summary>
    private bool Sve2MulAddLong(uint insn)
    {
        bool sub = ((insn >> 12) & 1) != 0, u = ((insn >> 11) & 1) != 0, top = ((insn >> 10) & 1) != 0;
        return Sve2Long(insn, u, top, (acc, a, b, _) => (ulong)(sub ? acc - a * b : acc + a * b));
    }

    /// <summary>
    /// SQDMLALB/T, SQDMLSLB/T (01000100 size 0 Zm 0110 S T Zn Zda): SignedSat(acc ± SignedSat(2 × a × b)) — the
    /// product saturates first.
    /// </summary>
    private bool Sve2SatMulAddLong(uint insn)
    {
        bool sub = ((insn >> 11) & 1) != 0, top = ((insn >> 10) & 1) != 0;
        return Sve2Long(insn, false, top, (acc, a, b, sz) =>
        {
            Int128 p = Sx(SatS(2 * a * b, sz), sz);
            return SatS(sub ? acc - p : acc + p, sz);
        });
    }

    /// <summary>
    /// SQDMLALBT, SQDMLSLBT (01000100 size 0 Zm 00001 S Zn Zda; size 00 reserved; C8.2 "SVE2 saturating multiply-add
    /// interleaved long"): SignedSat(acc ± SignedSat(2 × Zn's even half-size element × Zm's odd one)).
    /// </summary>
    private bool Sve2SatMulAddInterleavedLong(uint insn)
    {
        int esz = Esz(insn);
        if (esz == 1) return false;
        bool sub = ((insn >> 10) & 1) != 0;
        int half = esz / 2, zda = (int)(insn & 31);
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z((int)((insn >> 16) & 31), _z2);
        for (int e = 0; e < Elements(esz); e++)
        {
            Int128 p = Sx(SatS(2 * Ev(n, 2 * e, half, false) * Ev(m, 2 * e + 1, half, false), esz), esz), acc = Ev(d, e, esz, false);
            SetE(d, e, esz, SatS(sub ? acc - p : acc + p, esz));
        }
        SetZ(zda, d);
        Next();
        return true;
    }

    /// <summary>SABALB/T, UABALB/T (01000101 size 0 Zm 1100 U T Zn Zda): Zda += |a − b|.</summary>
    private bool Sve2AbsDiffAccumulateLong(uint insn)
    {
        bool u = ((insn >> 11) & 1) != 0, top = ((insn >> 10) & 1) != 0;
        return Sve2Long(insn, u, top, (acc, a, b, _) => (ulong)(acc + Int128.Abs(a - b)));
    }

    /// <summary>
    /// SSHLLB/T, USHLLB/T (01000101 0 tszh 0 tszl imm3 1010 U T Zn Zd): the extended half-size element shifted left
    /// by UInt(tsz:imm3) − esize (esize the source's, from the highest set bit of tsz).
    /// </summary>
    private bool Sve2ShiftLeftLong(uint insn)
    {
        uint tsz = (((insn >> 22) & 1) << 2) | ((insn >> 19) & 3);
        if (tsz == 0) return false;
        int half = 1 << (31 - BitOperations.LeadingZeroCount(tsz)), esz = 2 * half;
        int shift = (int)((tsz << 3) | ((insn >> 16) & 7)) - 8 * half;
        bool u = ((insn >> 11) & 1) != 0;
        int t = (int)((insn >> 10) & 1);
        var n = Z((int)((insn >> 5) & 31), _z0);
        var d = _z1;
        for (int e = 0; e < Elements(esz); e++) SetE(d, e, esz, ((ulong)Ev(n, 2 * e + t, half, u) << shift) & EMask(esz));
        SetZ((int)(insn & 31), d);
        Next();
        return true;
    }

    /// <summary>Writes narrowed results: B (even elements, odd zeroed) or T (odd elements, even kept).</summary>
    private void Sve2Narrow(uint insn, int half, Func<int, ulong> result)
    {
        int zd = (int)(insn & 31);
        bool top = ((insn >> 10) & 1) != 0;
        var d = Z(zd, _z3);
        for (int e = 0; e < Elements(2 * half); e++)
        {
            ulong r = result(e) & EMask(half);
            if (top) SetE(d, 2 * e + 1, half, r);
            else
            {
                SetE(d, 2 * e, half, r);
                SetE(d, 2 * e + 1, half, 0);
            }
        }
        SetZ(zd, d);
        Next();
    }

    /// <summary>
    /// SQSHRUNB/T, SQRSHRUNB/T, SHRNB/T, RSHRNB/T, SQSHRNB/T, SQRSHRNB/T, UQSHRNB/T, UQRSHRNB/T (01000101 0 tszh 1
    /// tszl imm3 00 op U R T Zn Zd): shift = 2 × esize − UInt(tsz:imm3) with esize the destination's; rounding adds
    /// 1 &lt;&lt; (shift − 1); SHRN truncates, SQSHRUN saturates a signed source to unsigned, SQSHRN signed, UQSHRN unsigned.
    /// </summary>
    private bool Sve2ShiftRightNarrow(uint insn)
    {
        uint tsz = (((insn >> 22) & 1) << 2) | ((insn >> 19) & 3);
        if (tsz == 0) return false;
        int half = 1 << (31 - BitOperations.LeadingZeroCount(tsz)), esz = 2 * half;
        int shift = 16 * half - (int)((tsz << 3) | ((insn >> 16) & 7));
        bool op = ((insn >> 13) & 1) != 0, u = ((insn >> 12) & 1) != 0, round = ((insn >> 11) & 1) != 0;
        bool srcUnsigned = u, satSigned = op && !u;
        var n = Z((int)((insn >> 5) & 31), _z0);
        Sve2Narrow(insn, half, e =>
        {
            Int128 v = Ev(n, e, esz, srcUnsigned);
            if (round) v += (Int128)1 << (shift - 1);
            v >>= shift;
            if (!op && u) return (ulong)v;
            return satSigned ? SatS(v, half) : SatU(v, half);
        });
        return true;
    }

    /// <summary>
    /// SQXTNB/T, UQXTNB/T, SQXTUNB/T (01000101 0 tszh 1 tszl 000 010 opc T Zn Zd; tsz one-hot gives the destination
    /// size): the source saturated to the half size (SQXTUN: signed source, unsigned result).
    /// </summary>
    private bool Sve2ExtractNarrow(uint insn)
    {
        uint tsz = (((insn >> 22) & 1) << 2) | ((insn >> 19) & 3);
        uint opc = (insn >> 11) & 3;
        if (tsz is not (1 or 2 or 4) || opc == 3) return false;
        int half = (int)tsz, esz = 2 * half;
        var n = Z((int)((insn >> 5) & 31), _z0);
        Sve2Narrow(insn, half, e => opc switch
        {
            0 => SatS(Ev(n, e, esz, false), half),
            1 => SatU(Ev(n, e, esz, true), half),
            _ => SatU(Ev(n, e, esz, false), half),
        });
        return true;
    }

    /// <summary>
    /// ADDHNB/T, RADDHNB/T, SUBHNB/T, RSUBHNB/T (01000101 size 1 Zm 011 S R T Zn Zd): the high half of Zn ± Zm
    /// (plus 1 &lt;&lt; (esize − 1) when rounding), esize the destination's.
    /// </summary>
    private bool Sve2HighNarrow(uint insn)
    {
        int esz = Esz(insn);
        if (esz == 1) return false;
        int half = esz / 2;
        bool sub = ((insn >> 12) & 1) != 0, round = ((insn >> 11) & 1) != 0;
        var n = Z((int)((insn >> 5) & 31), _z0);
        var m = Z((int)((insn >> 16) & 31), _z1);
        Sve2Narrow(insn, half, e =>
        {
            UInt128 a = E(n, e, esz), b = E(m, e, esz);
            UInt128 v = (sub ? a - b : a + b) + (round ? (UInt128)1 << (8 * half - 1) : 0);
            return (ulong)(v >> (8 * half));
        });
        return true;
    }

    /// <summary>
    /// SADDLBT (Zn even + Zm odd), SSUBLBT (Zn even − Zm odd), SSUBLTB (Zn odd − Zm even) (01000101 size 0 Zm 1000 S
    /// tb Zn Zd; S = 0 with tb = 1 reserved; C8.2 "SVE2 integer add/subtract interleaved long").
    /// </summary>
    private bool Sve2InterleavedLong(uint insn)
    {
        int esz = Esz(insn);
        bool sub = ((insn >> 11) & 1) != 0, tb = ((insn >> 10) & 1) != 0;
        if (esz == 1 || (!sub && tb) || ((insn >> 12) & 1) != 0) return false;
        int half = esz / 2;
        var n = Z((int)((insn >> 5) & 31), _z0);
        var m = Z((int)((insn >> 16) & 31), _z1);
        var d = _z2;
        for (int e = 0; e < Elements(esz); e++)
        {
            Int128 a = Ev(n, 2 * e + (tb ? 1 : 0), half, false), b = Ev(m, 2 * e + (tb ? 0 : 1), half, false);
            SetE(d, e, esz, (ulong)(sub ? a - b : a + b) & EMask(esz));
        }
        SetZ((int)(insn & 31), d);
        Next();
        return true;
    }

    /// <summary>
    /// EORBT (Zd[2e] = Zn[2e] ⊕ Zm[2e + 1]) and EORTB (Zd[2e + 1] = Zn[2e + 1] ⊕ Zm[2e]); the other elements of Zd are
    /// kept (01000101 size 0 Zm 10010 tb Zn Zd; C8.2).
    /// </summary>
    private bool Sve2InterleavedEor(uint insn)
    {
        int esz = Esz(insn), zd = (int)(insn & 31), t = (int)((insn >> 10) & 1);
        var n = Z((int)((insn >> 5) & 31), _z0);
        var m = Z((int)((insn >> 16) & 31), _z1);
        var d = Z(zd, _z2);
        for (int e = 0; e < Elements(esz) / 2; e++) SetE(d, 2 * e + t, esz, E(n, 2 * e + t, esz) ^ E(m, 2 * e + 1 - t, esz));
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>
    /// ADCLB/ADCLT, SBCLB/SBCLT (01000101 0 S 0 sz Zm 11010 T Zn Zda, words or doublewords; C8.2): for each pair,
    /// AddWithCarry(Zda[2e], Zn[2e + T] (inverted for SBCL), Zm[2e + 1]&lt;0&gt;) into Zda[2e], the carry out into Zda[2e + 1].
    /// </summary>
    private bool Sve2CarryLong(uint insn)
    {
        bool sbc = ((insn >> 23) & 1) != 0;
        int esz = ((insn >> 22) & 1) != 0 ? 8 : 4, zda = (int)(insn & 31), t = (int)((insn >> 10) & 1);
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z((int)((insn >> 16) & 31), _z2);
        for (int e = 0; e < Elements(esz) / 2; e++)
        {
            ulong x = E(n, 2 * e + t, esz);
            if (sbc) x = ~x & EMask(esz);
            UInt128 sum = (UInt128)E(d, 2 * e, esz) + x + (E(m, 2 * e + 1, esz) & 1);
            SetE(d, 2 * e, esz, (ulong)sum & EMask(esz));
            SetE(d, 2 * e + 1, esz, (ulong)(sum >> (8 * esz)) & 1);
        }
        SetZ(zda, d);
        Next();
        return true;
    }
}
