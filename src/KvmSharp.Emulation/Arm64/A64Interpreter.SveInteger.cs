// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE integer instructions (Arm ARM C4.1 SVE encodings, bits 31:24 = 0x04; C8.2 pseudocode): predicated and
/// unpredicated arithmetic, reductions, multiply-add, shifts, unary operations, element counts and the wide
/// immediates.
/// </summary>
internal sealed partial class A64Interpreter
{
    private bool SveIntegerGroup(uint insn)
    {
        if ((insn >> 24) != 0x04) return false;
        int esz = Esz(insn);
        int zd = (int)(insn & 31), zn = (int)((insn >> 5) & 31), zm = (int)((insn >> 16) & 31);
        if (((insn >> 21) & 1) == 0)
        {
            uint op = (insn >> 13) & 7;
            int pg = (int)((insn >> 10) & 7);
            switch (op)
            {
                case 0: return IntBinaryPredicated(insn, esz, pg, zd, zn);
                case 1: return IntReduction(insn, esz, pg, zd, zn);
                case 2 or 3 or 6 or 7: return IntMulAdd(insn, esz, pg, zd, zn, zm);
                case 4: return ShiftPredicated(insn, esz, pg, zd, zn);
                default: return IntUnaryPredicated(insn, esz, pg, zd, zn);
            }
        }
        uint g = (insn >> 10) & 0x3F;
        // Integer add/subtract, unpredicated: 00000100 size 1 Zm 000 opc Zn Zd.
        if ((g >> 3) == 0) return IntArithUnpredicated(insn, esz, zd, zn, zm, g & 7);
        // Bitwise logical, unpredicated: 00000100 opc 1 Zm 001100 Zn Zd.
        if (g == 0x0C)
        {
            var a = Z(zn, _z0);
            var b = Z(zm, _z1);
            uint opc = (insn >> 22) & 3;
            for (int i = 0; i < _vl; i++) a[i] = opc switch { 0 => (byte)(a[i] & b[i]), 1 => (byte)(a[i] | b[i]), 2 => (byte)(a[i] ^ b[i]), _ => (byte)(a[i] & ~b[i]) };
            SetZ(zd, a);
            Next();
            return true;
        }
        // MOVPRFX (unpredicated): 00000100 00 1 00000 101111 Zn Zd.
        if ((insn & 0xFFFF_FC00) == 0x0420_BC00)
        {
            SetZ(zd, Z(zn, _z0));
            Next();
            return true;
        }
        // INDEX: 00000100 size 1 xxxxx 0100 ab xxxxx Zd.
        if ((g >> 2) == 4)
        {
            long imm5 = (int)(insn << 22) >> 27, imm5b = (int)(insn << 11) >> 27;
            long start = (g & 1) != 0 ? (long)cpu.Reg(zn) : imm5;
            long step = (g & 2) != 0 ? (long)cpu.Reg(zm) : imm5b;
            var d = _z0;
            for (int e = 0; e < Elements(esz); e++) SetE(d, e, esz, (ulong)(start + e * step));
            SetZ(zd, d);
            Next();
            return true;
        }
        // ADDVL / ADDPL / RDVL: 00000100 0 op 1 Rn 01010 imm6 Rd (RDVL: 00000100 101 11111 01010 imm6 Rd).
        if ((g >> 1) == 10)
        {
            long imm6 = (int)(insn << 21) >> 26;
            uint top = (insn >> 22) & 3;
            if (top == 2 && zm == 31) cpu.SetReg(zd, (ulong)(imm6 * _vl));
            else if (top == 0) cpu.SetRegOrSp(zd, cpu.RegOrSp(zm) + (ulong)(imm6 * _vl));
            else if (top == 1) cpu.SetRegOrSp(zd, cpu.RegOrSp(zm) + (ulong)(imm6 * (_vl / 8)));
            else return false;
            Next();
            return true;
        }
        // ADR: 00000100 opc 1 Zm 1010 msz Zn Zd.
        if ((g >> 2) == 10)
        {
            uint opc = (insn >> 22) & 3;
            int msz = (int)(g & 3);
            int e2 = opc == 2 ? 4 : 8;
            var a = Z(zn, _z0);
            var b = Z(zm, _z1);
            for (int e = 0; e < Elements(e2); e++)
            {
                ulong off = E(b, e, e2);
                off = opc switch { 0 => (ulong)(long)(int)off, 1 => (uint)off, _ => off };
                SetE(a, e, e2, E(a, e, e2) + (off << msz));
            }
            SetZ(zd, a);
            Next();
            return true;
        }
        // Shift by immediate, unpredicated: 00000100 tszh 1 tszl imm3 1001 opc Zn Zd.
        if ((g >> 2) == 9) return ShiftImmediate(insn, zd, zn, (insn >> 10) & 3, tsize: ((insn >> 20) & 0xC) | ((insn >> 19) & 3), imm3: (insn >> 16) & 7, pg: -1);
        // Element count: 00000100 size 1 x imm4 11 ...
        if ((g >> 4) == 3) return ElementCount(insn, esz, zd);
        return false;
    }

    private bool IntBinaryPredicated(uint insn, int esz, int pg, int zdn, int zm)
    {
        uint grp = (insn >> 19) & 3, opc = (insn >> 16) & 7;
        var p = P(pg, _p0);
        var a = Z(zdn, _z0);
        var b = Z(zm, _z1);
        if (grp == 2 && opc is 4 or 5 or 6 or 7 && esz < 4) return false;
        if (grp == 2 && opc == 1) return false;
        ulong mask = EMask(esz);
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(p, e, esz)) continue;
            ulong x = E(a, e, esz), y = E(b, e, esz);
            long sx = Sx(x, esz), sy = Sx(y, esz);
            ulong r;
            switch (grp, opc)
            {
                case (0, 0): r = x + y; break;
                case (0, 1): r = x - y; break;
                case (0, 3): r = y - x; break;
                case (1, 0): r = (ulong)Math.Max(sx, sy); break;
                case (1, 1): r = Math.Max(x, y); break;
                case (1, 2): r = (ulong)Math.Min(sx, sy); break;
                case (1, 3): r = Math.Min(x, y); break;
                case (1, 4): r = (ulong)Math.Abs(sx - sy); break; // SABD: |x - y| of the integer values (esize < 64 cannot overflow long)
                case (1, 5): r = x > y ? x - y : y - x; break;
                case (2, 0): r = x * y; break;
                case (2, 2): r = (ulong)(long)((Int128)sx * sy >> (8 * esz)); break;
                case (2, 3): r = (ulong)((UInt128)x * y >> (8 * esz)); break;
                case (2, 4): r = SDiv(sx, sy); break;
                case (2, 5): r = y == 0 ? 0 : x / y; break;
                case (2, 6): r = SDiv(sy, sx); break;
                case (2, 7): r = x == 0 ? 0 : y / x; break;
                case (3, 0): r = x | y; break;
                case (3, 1): r = x ^ y; break;
                case (3, 2): r = x & y; break;
                case (3, 3): r = x & ~y; break;
                default: return false;
            }
            if (grp == 1 && opc == 4 && esz == 8) r = (ulong)(sx > sy ? (UInt128)(Int128)sx - (UInt128)(Int128)sy : (UInt128)(Int128)sy - (UInt128)(Int128)sx);
            SetE(a, e, esz, r & mask);
        }
        SetZ(zdn, a);
        Next();
        return true;

        // SDIV: RoundTowardsZero(x / y), 0 for y = 0; the most negative value ÷ −1 wraps (the result is truncated).
        static ulong SDiv(long x, long y) => y == 0 ? 0 : y == -1 ? (ulong)(-x) : (ulong)(x / y);
    }

    /// <summary>SADDV, UADDV, SMAXV, UMAXV, SMINV, UMINV, ORV, EORV, ANDV (C8.2) and MOVPRFX (predicated).</summary>
    private bool IntReduction(uint insn, int esz, int pg, int vd, int zn)
    {
        uint grp = (insn >> 19) & 3, opc = (insn >> 16) & 7;
        var p = P(pg, _p0);
        var a = Z(zn, _z0);
        if (grp == 2)
        {
            // MOVPRFX (predicated): 00000100 size 010 00 M 001 Pg Zn Zd.
            if ((opc & 6) != 0) return false;
            var d = Z(vd, _z1);
            for (int e = 0; e < Elements(esz); e++) SetE(d, e, esz, Act(p, e, esz) ? E(a, e, esz) : opc == 1 ? E(d, e, esz) : 0);
            SetZ(vd, d);
            Next();
            return true;
        }
        ulong mask = EMask(esz);
        ulong acc;
        switch (grp, opc)
        {
            case (0, 0) when esz < 8:
            case (0, 1):
                acc = 0;
                for (int e = 0; e < Elements(esz); e++) if (Act(p, e, esz)) acc += opc == 0 ? (ulong)Sx(E(a, e, esz), esz) : E(a, e, esz);
                SetVScalar(vd, acc, 64);
                Next();
                return true;
            case (1, 0): acc = (ulong)Sx(1UL << (8 * esz - 1), esz) & mask; break;
            case (1, 1): acc = 0; break;
            case (1, 2): acc = mask >> 1; break;
            case (1, 3): acc = mask; break;
            case (3, 0): acc = 0; break;
            case (3, 1): acc = 0; break;
            case (3, 2): acc = mask; break;
            default: return false;
        }
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(p, e, esz)) continue;
            ulong x = E(a, e, esz);
            acc = (grp, opc) switch
            {
                (1, 0) => Sx(x, esz) > Sx(acc, esz) ? x : acc,
                (1, 1) => Math.Max(x, acc),
                (1, 2) => Sx(x, esz) < Sx(acc, esz) ? x : acc,
                (1, 3) => Math.Min(x, acc),
                (3, 0) => acc | x,
                (3, 1) => acc ^ x,
                _ => acc & x,
            };
        }
        SetVScalar(vd, acc & mask, 8 * esz);
        Next();
        return true;
    }

    /// <summary>MLA/MLS (Zda ± Zn × Zm) and MAD/MSB (Za ± Zdn × Zm), merging.</summary>
    private bool IntMulAdd(uint insn, int esz, int pg, int zd, int zn, int zm)
    {
        bool mad = ((insn >> 15) & 1) != 0, sub = ((insn >> 13) & 1) != 0;
        var p = P(pg, _p0);
        var d = Z(zd, _z0);
        var n = Z(zn, _z1);
        var m = Z(zm, _z2);
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(p, e, esz)) continue;
            ulong prod = mad ? E(d, e, esz) * E(m, e, esz) : E(n, e, esz) * E(m, e, esz);
            ulong addend = mad ? E(n, e, esz) : E(d, e, esz);
            SetE(d, e, esz, sub ? addend - prod : addend + prod);
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>Shifts, predicated: by immediate (ASR, LSR, LSL, ASRD) and by vector (ASR, LSR, LSL and the reversed forms).</summary>
    private bool ShiftPredicated(uint insn, int esz, int pg, int zdn, int zm)
    {
        uint sel = (insn >> 16) & 0x1F;
        if ((sel >> 2) == 0)
            return ShiftImmediate(insn, zdn, zdn, sel & 3, tsize: ((insn >> 20) & 0xC) | ((insn >> 8) & 3), imm3: (insn >> 5) & 7, pg: pg);
        if ((sel >> 3) != 2) return false;
        uint op = sel & 7;
        if (op is 2 or 6) return false;
        var p = P(pg, _p0);
        var a = Z(zdn, _z0);
        var b = Z(zm, _z1);
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(p, e, esz)) continue;
            ulong x = E(a, e, esz), y = E(b, e, esz);
            if ((op & 4) != 0) (x, y) = (y, x);
            SetE(a, e, esz, Shift(op & 3, x, y, esz));
        }
        SetZ(zdn, a);
        Next();
        return true;
    }

    /// <summary>ASR (0), LSR (1), LSL (3) of an element by an unsigned amount (≥ esize: 0, or the sign for ASR).</summary>
    private static ulong Shift(uint op, ulong x, ulong amount, int esz)
    {
        int bits = 8 * esz;
        int s = amount >= (ulong)bits ? bits : (int)amount;
        return op switch
        {
            0 => (ulong)(s >= bits ? Sx(x, esz) >> 63 : Sx(x, esz) >> s) & EMask(esz),
            1 => s >= bits ? 0 : x >> s,
            _ => s >= bits ? 0 : (x << s) & EMask(esz),
        };
    }

    /// <summary>
    /// Shift by immediate (tsize:imm3 gives esize and the amount: right shifts 2 × esize − tsize:imm3, left shifts
    /// tsize:imm3 − esize). <paramref name="pg"/> &lt; 0: unpredicated. ASRD (op 4) rounds the division towards zero.
    /// </summary>
    private bool ShiftImmediate(uint insn, int zd, int zn, uint op, uint tsize, uint imm3, int pg)
    {
        if (tsize == 0 || op == 2) return false;
        int ebits = 8 << (31 - BitOperations.LeadingZeroCount(tsize));
        int esz = ebits / 8;
        int amount = (int)((tsize << 3) | imm3);
        amount = op == 3 ? amount - ebits : 2 * ebits - amount;
        var p = pg >= 0 ? P(pg, _p0) : null;
        var a = Z(zn, _z0);
        var d = pg >= 0 ? a : Z(zd, _z1);
        for (int e = 0; e < Elements(esz); e++)
        {
            if (p is not null && !Act(p, e, esz)) continue;
            SetE(d, e, esz, Shift(op, E(a, e, esz), (ulong)amount, esz));
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    private bool IntUnaryPredicated(uint insn, int esz, int pg, int zd, int zn)
    {
        uint grp = (insn >> 19) & 3, opc = (insn >> 16) & 7;
        if (grp < 2) return false;
        if (grp == 3 && opc == 7) return false;
        if (grp == 2 && opc < 6 && esz <= 1 << (int)(opc >> 1)) return false;
        if (grp == 3 && opc is 4 or 5 && esz == 1) return false;
        var p = P(pg, _p0);
        var a = Z(zn, _z0);
        var d = Z(zd, _z1);
        int bits = 8 * esz;
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(p, e, esz)) continue;
            ulong x = E(a, e, esz);
            ulong r = (grp, opc) switch
            {
                (2, 0) => (ulong)(long)(sbyte)x,
                (2, 1) => (byte)x,
                (2, 2) => (ulong)(long)(short)x,
                (2, 3) => (ushort)x,
                (2, 4) => (ulong)(long)(int)x,
                (2, 5) => (uint)x,
                (2, 6) => (ulong)Math.Abs(Sx(x, esz)),
                (2, 7) => 0 - x,
                (3, 0) => Cls(x, esz),
                (3, 1) => x == 0 ? (ulong)bits : (ulong)BitOperations.LeadingZeroCount(x << (64 - bits)),
                (3, 2) => (ulong)BitOperations.PopCount(x),
                (3, 3) => x == 0 ? 1UL : 0,
                (3, 4) => x & (EMask(esz) >> 1),
                (3, 5) => x ^ (1UL << (bits - 1)),
                _ => ~x,
            };
            SetE(d, e, esz, r & EMask(esz));
        }
        SetZ(zd, d);
        Next();
        return true;

        // CLS: the leading bits equal to the sign bit, not counting the sign bit.
        static ulong Cls(ulong x, int esz)
        {
            ulong t = (ulong)(Sx(x, esz) ^ (Sx(x, esz) >> 63)) << (64 - 8 * esz);
            return t == 0 ? (ulong)(8 * esz - 1) : (ulong)(BitOperations.LeadingZeroCount(t) - 1);
        }
    }

    /// <summary>ADD, SUB, SQADD, UQADD, SQSUB, UQSUB (vectors, unpredicated).</summary>
    private bool IntArithUnpredicated(uint insn, int esz, int zd, int zn, int zm, uint opc)
    {
        if (opc is 2 or 3) return false;
        var a = Z(zn, _z0);
        var b = Z(zm, _z1);
        for (int e = 0; e < Elements(esz); e++) SetE(a, e, esz, AddSub(opc, E(a, e, esz), E(b, e, esz), esz));
        SetZ(zd, a);
        Next();
        _ = insn;
        return true;
    }

    /// <summary>0 ADD, 1 SUB, 3 SUBR, 4 SQADD, 5 UQADD, 6 SQSUB, 7 UQSUB of two elements (saturating at esize).</summary>
    private static ulong AddSub(uint opc, ulong x, ulong y, int esz)
    {
        ulong mask = EMask(esz);
        Int128 sx = Sx(x, esz), sy = Sx(y, esz);
        Int128 smax = (long)(mask >> 1), smin = -smax - 1;
        return opc switch
        {
            0 => (x + y) & mask,
            1 => (x - y) & mask,
            3 => (y - x) & mask,
            4 => (ulong)(long)Int128.Clamp(sx + sy, smin, smax) & mask,
            5 => (UInt128)x + y > mask ? mask : x + y,
            6 => (ulong)(long)Int128.Clamp(sx - sy, smin, smax) & mask,
            _ => x < y ? 0 : x - y,
        };
    }

    /// <summary>
    /// CNTB/H/W/D, INC/DEC (scalar and vector), SQINC/UQINC/SQDEC/UQDEC (scalar): the count is DecodePredCount(pattern,
    /// esize) × (imm4 + 1).
    /// </summary>
    private bool ElementCount(uint insn, int esz, int rd)
    {
        ulong count = (ulong)PredCount((insn >> 5) & 31, esz) * (((insn >> 16) & 15) + 1);
        uint bit20 = (insn >> 20) & 1, g = (insn >> 10) & 0x3F;
        if (bit20 == 0 && g == 0x38)
        {
            cpu.SetReg(rd, count); // CNT
        }
        else if (bit20 == 1 && (g >> 1) == 0x1C)
        {
            cpu.SetReg(rd, (g & 1) != 0 ? cpu.Reg(rd) - count : cpu.Reg(rd) + count); // INC/DEC (scalar)
        }
        else if (bit20 == 1 && (g >> 1) == 0x18 && esz > 1)
        {
            var z = Z(rd, _z0); // INC/DEC (vector)
            for (int e = 0; e < Elements(esz); e++) SetE(z, e, esz, ((g & 1) != 0 ? E(z, e, esz) - count : E(z, e, esz) + count) & EMask(esz));
            SetZ(rd, z);
        }
        else if ((g >> 2) == 0xF)
        {
            // SQINC/UQINC/SQDEC/UQDEC (scalar): 00000100 size 1 sf imm4 1111 D U pattern Rdn.
            bool dec = (g & 2) != 0, unsigned = (g & 1) != 0, sf = bit20 != 0;
            ulong x = cpu.Reg(rd);
            Int128 v = unsigned ? (sf ? (Int128)x : (uint)x) : (sf ? (long)x : (int)x);
            v = dec ? v - count : v + count;
            Int128 min = unsigned ? 0 : sf ? long.MinValue : int.MinValue;
            Int128 max = unsigned ? (sf ? ulong.MaxValue : uint.MaxValue) : sf ? long.MaxValue : int.MaxValue;
            v = Int128.Clamp(v, min, max);
            // The 32-bit signed forms sign-extend into Xdn, the unsigned ones zero-extend.
            cpu.SetReg(rd, sf ? (ulong)(UInt128)v : unsigned ? (uint)v : (ulong)(long)v);
        }
        else
        {
            return false;
        }
        Next();
        return true;
    }

    /// <summary>
    /// Unpredicated wide immediates: ADD, SUB, SUBR, SQADD, UQADD, SQSUB, UQSUB; SMAX, UMAX, SMIN, UMIN; MUL; DUP;
    /// FDUP (C8.2 "(immediate)" forms).
    /// </summary>
    private bool SveWideImmediate(uint insn, int esz, int? unused = null)
    {
        _ = unused;
        int zd = (int)(insn & 31);
        uint sel = (insn >> 16) & 0x1F;
        uint imm8 = (insn >> 5) & 0xFF;
        bool sh = ((insn >> 13) & 1) != 0;
        var z = Z(zd, _z0);
        if ((sel >> 3) == 0)
        {
            // ADD … UQSUB (immediate): unsigned imm8, optionally << 8.
            if (sel == 2 || (sh && esz == 1)) return false;
            ulong imm = sh ? (ulong)imm8 << 8 : imm8;
            for (int e = 0; e < Elements(esz); e++) SetE(z, e, esz, AddSub(sel, E(z, e, esz), imm & EMask(esz), esz));
        }
        else if ((sel >> 2) == 2 && ((insn >> 13) & 1) == 0)
        {
            // SMAX/UMAX/SMIN/UMIN (immediate): signed or unsigned imm8.
            uint opc = sel & 3;
            long simm = (sbyte)imm8;
            for (int e = 0; e < Elements(esz); e++)
            {
                ulong x = E(z, e, esz);
                ulong r = opc switch
                {
                    0 => (ulong)Math.Max(Sx(x, esz), simm),
                    1 => Math.Max(x, imm8),
                    2 => (ulong)Math.Min(Sx(x, esz), simm),
                    _ => Math.Min(x, imm8),
                };
                SetE(z, e, esz, r & EMask(esz));
            }
        }
        else if (sel == 0x10 && ((insn >> 13) & 1) == 0)
        {
            ulong simm = (ulong)(long)(sbyte)imm8; // MUL (immediate)
            for (int e = 0; e < Elements(esz); e++) SetE(z, e, esz, E(z, e, esz) * simm & EMask(esz));
        }
        else if (sel == 0x18)
        {
            if (sh && esz == 1) return false;
            ulong imm = (ulong)((long)(sbyte)imm8 << (sh ? 8 : 0)); // DUP (immediate)
            for (int e = 0; e < Elements(esz); e++) SetE(z, e, esz, imm & EMask(esz));
        }
        else if (sel == 0x19 && ((insn >> 13) & 1) == 0)
        {
            if (esz == 1) return false;
            ulong imm = FpExpand(imm8, esz); // FDUP
            for (int e = 0; e < Elements(esz); e++) SetE(z, e, esz, imm);
        }
        else
        {
            return false;
        }
        SetZ(zd, z);
        Next();
        return true;
    }

    /// <summary>VFPExpandImm(imm8) at half, single or double precision.</summary>
    private static ulong FpExpand(uint imm8, int esz)
    {
        if (esz != 2) return VfpExpandImm(imm8, esz == 8);
        uint b6 = (imm8 >> 6) & 1;
        uint exp = ((b6 ^ 1) << 4) | (b6 != 0 ? 0xCu : 0) | ((imm8 >> 4) & 3);
        return ((imm8 >> 7) << 15) | (exp << 10) | ((imm8 & 15) << 6);
    }
}
