// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE loads, stores and floating point (Arm ARM C4.1 SVE encodings; C8.2 pseudocode): LD1B…LD1D and the
/// sign-extending LD1S* (scalar plus scalar, scalar plus immediate), LD1R*, the gathers with 32-bit and 64-bit
/// offsets or a vector base plus immediate (their first-fault forms in A64Interpreter.SveFirstFault.cs), ST1B…ST1D
/// (scalar plus scalar, scalar plus immediate; structures and scatters in A64Interpreter.SveStructures.cs), LDR/STR of
/// Z and P; FADD/FSUB/FMUL (unpredicated), the predicated FP arithmetic (vectors and immediates),
/// FMLA/FMLS/FNMLA/FNMLS/FMAD/FMSB/FNMAD/FNMSB, FADDA, FADDV/FMAXV/FMINV/FMAXNMV/FMINNMV, FP compares (vectors and
/// with zero), FSQRT — half (A64Interpreter.SveHalf.cs), single and double precision; SCVTF/UCVTF/FCVTZS/FCVTZU
/// (half, single and double), FCVT (between any two of half, single, double). Every element access goes through
/// <see cref="MemoryAccess"/> with the element's alignment; an inactive element is not accessed (so it cannot fault). A fault leaves the destination unchanged.
/// </summary>
internal sealed partial class A64Interpreter
{
    private readonly byte[] _sveElem = new byte[8];

    /// <summary>LD1*/ST1* dtype (bits 24:21, or dtypeh:dtypel for LD1R*): memory bytes, element bytes, sign-extension.</summary>
    private static (int Mbytes, int Esz, bool Signed) Dtype(uint dtype) => dtype switch
    {
        0 => (1, 1, false), 1 => (1, 2, false), 2 => (1, 4, false), 3 => (1, 8, false),
        4 => (4, 8, true), 5 => (2, 2, false), 6 => (2, 4, false), 7 => (2, 8, false),
        8 => (2, 8, true), 9 => (2, 4, true), 10 => (4, 4, false), 11 => (4, 8, false),
        12 => (1, 8, true), 13 => (1, 4, true), 14 => (1, 2, true), _ => (8, 8, false),
    };

    private bool SveMemory(uint insn)
    {
        int zt = (int)(insn & 31), rn = (int)((insn >> 5) & 31), rm = (int)((insn >> 16) & 31);
        uint top = insn >> 25;
        uint sub = (insn >> 13) & 7;
        // LDR (vector / predicate), STR (vector / predicate): 1x000101 10 imm9h 0x0 imm9l Rn Zt|Pt.
        if ((insn & 0xFFC0_E000) is 0x8580_4000 or 0xE580_4000 || (insn & 0xFFC0_E010) is 0x8580_0000 or 0xE580_0000)
        {
            bool store = (insn >> 30) == 3, vector = (insn & 0x4000) != 0;
            long imm9 = ((int)(insn << 10) >> 26 << 3) | (int)((insn >> 10) & 7);
            int length = vector ? _vl : _vl / 8;
            ulong address = cpu.RegOrSp(rn) + (ulong)(imm9 * length);
            var buf = vector ? Z(zt, _z0) : P(zt & 15, _p0);
            for (int i = 0; i < length; i++)
            {
                if (!MemoryAccess(address + (ulong)i, buf.AsSpan(i, 1), store, default, isvValid: false, alignment: 1)) return true;
            }
            if (!store)
            {
                if (vector) SetZ(zt, buf);
                else SetP(zt & 15, buf);
            }
            Next();
            return true;
        }
        switch (top)
        {
            case 0x52: // 1010010: contiguous loads
            {
                var (mbytes, esz, signed) = Dtype((insn >> 21) & 15);
                int elements = Elements(esz);
                ulong baseAddress = cpu.RegOrSp(rn);
                Func<int, ulong> address;
                if (sub is 6 or 7) return SveStructure(insn, store: false);
                if (sub is 2 or 3) { ulong off = cpu.Reg(rm); address = e => baseAddress + (off + (ulong)e) * (ulong)mbytes; }
                else if (sub == 5)
                {
                    long imm4 = (int)(insn << 12) >> 28;
                    address = e => baseAddress + (ulong)((imm4 * elements + e) * mbytes);
                }
                else return false;
                // LDFF1 (scalar plus scalar, bits 15:13 = 011) and LDNF1 (scalar plus immediate with bit 20 = 1):
                // A64Interpreter.SveFirstFault.cs.
                if (sub == 3 || ((insn >> 20) & 1) != 0) return FirstFaultLoad(insn, zt, mbytes, esz, signed, address, nonFault: sub == 5);
                return ContiguousLoad(insn, zt, mbytes, esz, signed, address);
            }
            case 0x72: // 1110010: contiguous stores
            {
                // Structures, non-temporal and scatter stores: A64Interpreter.SveStructures.cs.
                if (sub == 3 || (sub == 7 && ((insn >> 20) & 1) != 0)) return SveStructure(insn, store: true);
                if (sub is 4 or 5 or 6) return SveScatter(insn);
                int mbytes = 1 << (int)((insn >> 23) & 3), esz = 1 << (int)((insn >> 21) & 3);
                if (esz < mbytes) return false;
                int elements = Elements(esz);
                ulong baseAddress = cpu.RegOrSp(rn);
                Func<int, ulong> address;
                if (sub == 2) { ulong off = cpu.Reg(rm); address = e => baseAddress + (off + (ulong)e) * (ulong)mbytes; }
                else if (sub == 7 && ((insn >> 20) & 1) == 0)
                {
                    long imm4 = (int)(insn << 12) >> 28;
                    address = e => baseAddress + (ulong)((imm4 * elements + e) * mbytes);
                }
                else return false;
                var p = P((int)((insn >> 10) & 7), _p0);
                var z = Z(zt, _z0);
                for (int e = 0; e < elements; e++)
                {
                    if (!Act(p, e, esz)) continue;
                    ulong v = E(z, e, esz);
                    for (int i = 0; i < mbytes; i++) _sveElem[i] = (byte)(v >> (8 * i));
                    if (!MemoryAccess(address(e), _sveElem.AsSpan(0, mbytes), true, default, isvValid: false, alignment: mbytes)) return true;
                }
                Next();
                return true;
            }
            case 0x42 when ((insn >> 22) & 1) != 0 && ((insn >> 15) & 1) != 0: // LD1R*: 1000010 1 dtypeh 1 imm6 1 dtypel Pg Rn Zt
            {
                var (mbytes, esz, signed) = Dtype((((insn >> 23) & 3) << 2) | ((insn >> 13) & 3));
                var p = P((int)((insn >> 10) & 7), _p0);
                ulong address = cpu.RegOrSp(rn) + ((insn >> 16) & 0x3F) * (ulong)mbytes;
                bool any = false;
                for (int e = 0; e < Elements(esz); e++) any |= Act(p, e, esz);
                ulong v = 0;
                if (any)
                {
                    if (!MemoryAccess(address, _sveElem.AsSpan(0, mbytes), false, default, isvValid: false, alignment: mbytes)) return true;
                    v = Load(mbytes, signed);
                }
                var d = _z1;
                for (int e = 0; e < Elements(esz); e++) SetE(d, e, esz, Act(p, e, esz) ? v : 0);
                SetZ(zt, d);
                Next();
                return true;
            }
            case 0x42: // 32-bit gathers: 1000010 msz xs scaled Zm 0 U ff Pg Rn Zt
            case 0x62: // 64-bit gathers: 1100010 msz … (64-bit offsets: 22:21 = 1x, bit 15 = 1; unpacked 32-bit: bit 15 = 0)
            {
                bool wide = top == 0x62, scaled = ((insn >> 21) & 1) != 0, unsigned = ((insn >> 14) & 1) != 0;
                int msz = (int)((insn >> 23) & 3);
                bool offsets64 = ((insn >> 15) & 1) != 0, firstFault = ((insn >> 13) & 1) != 0;
                // Vector plus immediate (32-bit: bits 22:21 = 01 with bit 15 = 1; 64-bit: 22:21 = 01 with bit 15 = 1):
                // addr = ZeroExtend(Zn[e]) + imm5 × mbytes.
                bool vectorBase = offsets64 && ((insn >> 21) & 3) == 1;
                if (!wide && offsets64 && !vectorBase) return false;
                if (wide && offsets64 && !vectorBase && ((insn >> 22) & 1) == 0) return false;
                if (msz == 0 && scaled && !vectorBase) return false; // the prefetch encodings
                int esz = wide ? 8 : 4, mbytes = 1 << msz;
                if (mbytes > esz || (mbytes == esz && !unsigned)) return false;
                bool xs = ((insn >> 22) & 1) != 0;
                ulong baseAddress = cpu.RegOrSp(rn), imm5 = ((insn >> 16) & 31) * (ulong)mbytes;
                var offsets = Z(vectorBase ? rn : rm, _z2);
                Func<int, ulong> address = vectorBase ? e => E(offsets, e, esz) + imm5 : e =>
                {
                    ulong off = E(offsets, e, esz);
                    if (!offsets64) off = xs ? (ulong)(long)(int)off : (uint)off;
                    return baseAddress + (scaled ? off << msz : off);
                };
                if (firstFault) return FirstFaultLoad(insn, zt, mbytes, esz, !unsigned, address, nonFault: false);
                return ContiguousLoad(insn, zt, mbytes, esz, !unsigned, address);
            }
            default:
                return false;
        }
    }

    private ulong Load(int mbytes, bool signed)
    {
        ulong v = 0;
        for (int i = 0; i < mbytes; i++) v |= (ulong)_sveElem[i] << (8 * i);
        return signed ? (ulong)Sx(v, mbytes) : v;
    }

    /// <summary>A predicated element-by-element load (inactive elements zero), Zt written only when no element faulted.</summary>
    private bool ContiguousLoad(uint insn, int zt, int mbytes, int esz, bool signed, Func<int, ulong> address)
    {
        var p = P((int)((insn >> 10) & 7), _p0);
        var d = _z1;
        for (int e = 0; e < Elements(esz); e++)
        {
            ulong v = 0;
            if (Act(p, e, esz))
            {
                if (!MemoryAccess(address(e), _sveElem.AsSpan(0, mbytes), false, default, isvValid: false, alignment: mbytes)) return true;
                v = Load(mbytes, signed);
            }
            SetE(d, e, esz, v & EMask(esz));
        }
        SetZ(zt, d);
        Next();
        return true;
    }

    // ---- Floating point (bits 31:24 = 0x65) ----

    private bool SveFp(uint insn)
    {
        if ((insn >> 24) != 0x65) return false;
        int esz = Esz(insn);
        bool dbl = esz == 8;
        int zd = (int)(insn & 31), zn = (int)((insn >> 5) & 31), zm = (int)((insn >> 16) & 31);
        uint sub = (insn >> 13) & 7;
        if (((insn >> 21) & 1) != 0)
        {
            if (esz < 2) return false;
            return FpMulAddGroup(insn, esz, dbl, zd, zn, zm);
        }
        if (sub == 5) return FpUnary(insn, zd, zn);
        if (esz < 2) return false; // size 00 is unallocated; 01 is half precision (A64Interpreter.SveHalf.cs)
        switch (sub)
        {
            case 0:
            {
                // FADD/FSUB/FMUL (vectors, unpredicated): 01100101 size 0 Zm 000 opc Zn Zd.
                uint opc = (insn >> 10) & 7;
                if (opc > 2) return false;
                var a = Z(zn, _z0);
                var b = Z(zm, _z1);
                for (int e = 0; e < Elements(esz); e++) SetE(a, e, esz, FpArithE((FpOp)opc, E(a, e, esz), E(b, e, esz), esz));
                SetZ(zd, a);
                Next();
                return true;
            }
            case 1:
                return FpReduceOrCompareZero(insn, esz, dbl, zd, zn, zm);
            case 4:
                return FpBinaryPredicated(insn, esz, dbl, zd, zn);
            default:
                return FpCompare(insn, esz, dbl, zn, zm, zero: false);
        }
    }

    private ulong FpBinary(uint opc, ulong x, ulong y, bool dbl) => opc switch
    {
        0 => FpArith(FpOp.Add, x, y, dbl),
        1 => FpArith(FpOp.Sub, x, y, dbl),
        2 => FpArith(FpOp.Mul, x, y, dbl),
        3 => FpArith(FpOp.Sub, y, x, dbl),
        4 => FpMinMax(x, y, dbl, max: true, numeric: true),
        5 => FpMinMax(x, y, dbl, max: false, numeric: true),
        6 => FpMinMax(x, y, dbl, max: true, numeric: false),
        7 => FpMinMax(x, y, dbl, max: false, numeric: false),
        8 => FpArith(FpOp.Sub, x, y, dbl) & ~SignBit(dbl),
        12 => FpArith(FpOp.Div, y, x, dbl),
        _ => FpArith(FpOp.Div, x, y, dbl),
    };

    private static ulong SignBit(bool dbl) => dbl ? 1UL << 63 : 1UL << 31;

    /// <summary>
    /// FADD…FDIV (vectors, predicated): 01100101 size 00 opc4 100 Pg Zm Zdn; the immediate forms: 01100101 size 011
    /// opc 100 Pg 0000 i1 Zdn (FADD/FSUB/FSUBR #0.5 or #1.0, FMUL #0.5 or #2.0, FMAXNM/FMINNM/FMAX/FMIN #0.0 or #1.0).
    /// </summary>
    private bool FpBinaryPredicated(uint insn, int esz, bool dbl, int zdn, int zm)
    {
        uint sel = (insn >> 16) & 0x1F;
        var p = P((int)((insn >> 10) & 7), _p0);
        var a = Z(zdn, _z0);
        if ((sel >> 4) == 0)
        {
            uint opc = sel & 15;
            if (opc is 9 or 10 or 11 or >= 14) return false;
            var b = Z(zm, _z1);
            for (int e = 0; e < Elements(esz); e++) if (Act(p, e, esz)) SetE(a, e, esz, FpBinaryE(opc, E(a, e, esz), E(b, e, esz), esz));
        }
        else if ((sel >> 3) == 3 && ((insn >> 6) & 15) == 0)
        {
            uint opc = sel & 7;
            bool i1 = ((insn >> 5) & 1) != 0;
            double c = opc switch { 0 or 1 or 3 => i1 ? 1.0 : 0.5, 2 => i1 ? 2.0 : 0.5, _ => i1 ? 1.0 : 0.0 };
            ulong imm = FpConstE(c, esz);
            for (int e = 0; e < Elements(esz); e++) if (Act(p, e, esz)) SetE(a, e, esz, FpBinaryE(opc, E(a, e, esz), imm, esz));
        }
        else
        {
            return false;
        }
        SetZ(zdn, a);
        Next();
        return true;
    }

    /// <summary>FMLA/FMLS/FNMLA/FNMLS (Zda ± Zn × Zm) and FMAD/FMSB/FNMAD/FNMSB (Za ± Zdn × Zm): FPMulAdd, negations first.</summary>
    private bool FpMulAddGroup(uint insn, int esz, bool dbl, int zd, int zn, int zm)
    {
        bool mad = ((insn >> 15) & 1) != 0;
        uint opc = (insn >> 13) & 3;
        bool negProduct = opc is 1 or 2, negAddend = opc is 2 or 3;
        var p = P((int)((insn >> 10) & 7), _p0);
        var d = Z(zd, _z0);
        var n = Z(zn, _z1);
        var m = Z(zm, _z2);
        ulong sign = SignBitE(esz);
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(p, e, esz)) continue;
            // FMLA: op1 = Zn, op2 = Zm, addend = Zda. FMAD: op1 = Zdn, op2 = Zm (bits 9:5), addend = Za (bits 20:16).
            ulong op1 = mad ? E(d, e, esz) : E(n, e, esz), op2 = mad ? E(n, e, esz) : E(m, e, esz);
            ulong addend = mad ? E(m, e, esz) : E(d, e, esz);
            if (negProduct) op1 ^= sign;
            if (negAddend) addend ^= sign;
            SetE(d, e, esz, FpMulAddE(addend, op1, op2, esz));
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    private bool FpReduceOrCompareZero(uint insn, int esz, bool dbl, int vd, int zn, int zm)
    {
        uint grp = (insn >> 19) & 7, opc = (insn >> 16) & 7;
        var p = P((int)((insn >> 10) & 7), _p0);
        if (grp == 2) return FpCompare(insn, esz, dbl, zn, zm, zero: true);
        if (grp == 3 && opc == 0)
        {
            // FADDA: 01100101 size 011 000 001 Pg Zm Vdn — strictly in element order.
            var a = Z(zn, _z0);
            ulong acc = (ulong)cpu.Vregs[vd] & EMask(esz);
            for (int e = 0; e < Elements(esz); e++) if (Act(p, e, esz)) acc = FpArithE(FpOp.Add, acc, E(a, e, esz), esz);
            SetVScalar(vd, acc, 8 * esz);
            Next();
            return true;
        }
        if (grp != 0 || opc is 1 or 2 or 3) return false;
        // FADDV/FMAXNMV/FMINNMV/FMAXV/FMINV: ReducePredicated — inactive elements and the elements beyond VL up to
        // CeilPow2(VL) are the identity (+0.0, the default NaN, −∞ or +∞), then the pairwise Reduce tree.
        var z = Z(zn, _z0);
        int p2 = 1;
        while (p2 < _vl) p2 <<= 1;
        int count = p2 / esz;
        ulong identity = opc switch
        {
            0 => 0,
            4 or 5 => esz == 2 ? HalfDefaultNan : FpDefaultNanBits(dbl),
            6 => FpConstE(double.NegativeInfinity, esz),
            _ => FpConstE(double.PositiveInfinity, esz),
        };
        var values = new ulong[count];
        for (int e = 0; e < count; e++) values[e] = e < Elements(esz) && Act(p, e, esz) ? E(z, e, esz) : identity;
        uint op = opc switch { 0 => 0u, 4 => 4, 5 => 5, 6 => 6, _ => 7 };
        ulong Reduce(int lo, int n) => n == 1 ? values[lo] : FpBinaryE(op, Reduce(lo, n / 2), Reduce(lo + n / 2, n / 2), esz);
        SetVScalar(vd, Reduce(0, count), 8 * esz);
        Next();
        return true;
    }

    /// <summary>
    /// FCMGE/FCMGT/FCMEQ/FCMNE/FCMUO/FACGE/FACGT (vectors) and FCMGE/GT/LT/LE/EQ/NE (zero): inactive elements false;
    /// GE/GT/LT/LE and the absolute compares signal on any NaN (FPCompareGE/GT), EQ/NE/UO only on a signalling one.
    /// These set no flags.
    /// </summary>
    private bool FpCompare(uint insn, int esz, bool dbl, int zn, int zm, bool zero)
    {
        uint o3 = (insn >> 4) & 1;
        int cond; // 0 GE, 1 GT, 2 EQ, 3 NE, 4 UO, 5 ACGE, 6 ACGT, 7 LT, 8 LE
        if (zero)
        {
            cond = (((insn >> 16) & 3) << 1 | o3) switch { 0 => 0, 1 => 1, 2 => 7, 3 => 8, 4 => 2, 6 => 3, _ => -1 };
            if (((insn >> 18) & 1) != 0) return false;
        }
        else
        {
            cond = (((insn >> 15) & 1) << 2 | ((insn >> 13) & 1) << 1 | o3) switch { 0 => 0, 1 => 1, 2 => 2, 3 => 3, 4 => 4, 5 => 5, 7 => 6, _ => -1 };
        }
        if (cond < 0) return false;
        var p = P((int)((insn >> 10) & 7), _p0);
        var a = Z(zn, _z0);
        var b = zero ? null : Z(zm, _z1);
        var result = _p1;
        Array.Clear(result);
        ulong sign = SignBitE(esz);
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(p, e, esz)) continue;
            ulong x = E(a, e, esz), y = b is null ? 0 : E(b, e, esz);
            if (cond is 5 or 6) { x &= ~sign; y &= ~sign; }
            bool signal = cond is 0 or 1 or 5 or 6 or 7 or 8;
            uint f = FpCompareFlagsE(x, y, esz, signal);
            bool r = cond switch
            {
                0 or 5 => f is 0b0010 or 0b0110,
                1 or 6 => f == 0b0010,
                2 => f == 0b0110,
                3 => f != 0b0110,
                4 => f == 0b0011,
                7 => f == 0b1000,
                _ => f is 0b1000 or 0b0110,
            };
            SetAct(result, e, esz, r);
        }
        SetP((int)(insn & 15), result);
        Next();
        return true;
    }

    /// <summary>
    /// 01100101 opc xxx xxx 101 Pg Zn Zd: SCVTF/UCVTF and FCVTZS/FCVTZU (with half precision, opc 01, in
    /// A64Interpreter.SveHalf.cs; the 32-bit source or result in a 64-bit
    /// element is its low half; an integer result is extended by its signedness, an FP result zero-extended), FCVT
    /// single ↔ double and half ↔ single/double, FSQRT. Merging.
    /// </summary>
    private bool FpUnary(uint insn, int zd, int zn)
    {
        uint opc = (insn >> 22) & 3, sel = (insn >> 16) & 0x3F;
        int esz;
        Func<ulong, ulong> op;
        if ((sel >> 3) is 2 or 3)
        {
            bool toInt = (sel >> 3) == 3, unsigned = (sel & 1) != 0;
            uint opc2 = (sel >> 1) & 3;
            // (opc, opc2) → (fp is double, integer is 64-bit): 10 10 s/w; 11 00 d/w; 11 10 s/x; 11 11 d/x.
            (bool fpD, bool intX)? kind = (opc, opc2) switch
            {
                (2, 2) => (false, false),
                (3, 0) => (true, false),
                (3, 2) => (false, true),
                (3, 3) => (true, true),
                _ => null,
            };
            if (opc == 1 && opc2 != 0)
            {
                // Half precision (C8.2 SCVTF/UCVTF/FCVTZS/FCVTZU, opc 01): opc2 01 .H ↔ 16-bit, 10 .S ↔ 32-bit, 11 .D ↔
                // 64-bit integers, the half in the element's low 16 bits (A64Interpreter.SveHalf.cs).
                esz = 1 << (int)opc2;
                int bits = 8 * esz;
                op = toInt ? x => HalfToFixed(x, bits, unsigned) : x => FixedToHalf(x, bits, unsigned);
                return FpUnaryElements(insn, zd, zn, esz, op);
            }
            if (kind is not var (fpD, intX)) return false;
            esz = opc == 2 ? 4 : 8;
            if (toInt)
            {
                op = x =>
                {
                    ulong r = FpToInteger(fpD ? x : (uint)x, fpD, intX, unsigned, MidpointRounding.ToZero);
                    return intX || esz == 4 ? r : unsigned ? (uint)r : (ulong)(long)(int)r;
                };
            }
            else
            {
                op = x =>
                {
                    Int128 v = intX ? (unsigned ? (Int128)x : (long)x) : (unsigned ? (uint)x : (int)(uint)x);
                    return FixedToFp(v, fpD);
                };
            }
        }
        else if (opc >= 2 && sel is 0x08 or 0x09)
        {
            // FCVT with half precision (C8.2 FCVT, FPConvert): opc 10 single ↔ half, 11 double ↔ half; sel 0x08 to
            // half (the result zero-extended in the element), 0x09 from half (the element's low 16 bits).
            RefuseAlternativeHalf();
            bool wide = opc == 3;
            esz = wide ? 8 : 4;
            op = sel == 0x08 ? x => FpToHalf(wide ? x : (uint)x, wide) : x => FpFromHalf((ushort)x, wide);
        }
        else if (opc == 3 && sel == 0x0B) { esz = 8; op = x => FpConvertToDouble((uint)x); }
        else if (opc == 3 && sel == 0x0A) { esz = 8; op = x => FpConvertToSingle(x); }
        else if (opc >= 1 && sel == 0x0D) { esz = 1 << (int)opc; op = x => FpSqrtE(x, esz); }
        else return false;
        return FpUnaryElements(insn, zd, zn, esz, op);
    }

    /// <summary>Zd = <paramref name="op"/>(Zn) in each element of <paramref name="esz"/> bytes active in Pg (merging).</summary>
    private bool FpUnaryElements(uint insn, int zd, int zn, int esz, Func<ulong, ulong> op)
    {
        var p = P((int)((insn >> 10) & 7), _p0);
        var a = Z(zn, _z0);
        var d = Z(zd, _z1);
        for (int e = 0; e < Elements(esz); e++) if (Act(p, e, esz)) SetE(d, e, esz, op(E(a, e, esz)));
        SetZ(zd, d);
        Next();
        return true;
    }
}
