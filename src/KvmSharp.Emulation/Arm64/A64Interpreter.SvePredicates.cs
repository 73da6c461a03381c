// SPDX-License-Identifier: MIT

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE predicate instructions (Arm ARM C4.1 SVE encodings, the 0x25 space and friends; C8.2 pseudocode): PTRUE,
/// PFALSE, PTEST, WHILE*, predicate logical operations, PUNPK*, CNTP and the integer compares that produce predicates.
/// </summary>
internal sealed partial class A64Interpreter
{
    private bool SvePredicateGroup(uint insn)
    {
        if ((insn >> 24 & 0x1F) == 0x04) return SveCompare(insn);
        // From here bits 28:24 = 0b00101.
        int esz = Esz(insn);
        // WHILELT/WHILELE/WHILELO/WHILELS: 00100101 size 1 Rm 000 sf U lt Rn eq Pd (lt = 1; lt = 0 is SVE2).
        if ((insn & 0xFF20_E000) == 0x2520_0000)
        {
            if (((insn >> 10) & 1) == 0) return false;
            While(insn, esz);
            return true;
        }
        // PTRUE / PTRUES: 00100101 size 011 00 S 111000 pattern 0 Pd.
        if ((insn & 0xFF3E_FC10) == 0x2518_E000)
        {
            var p = _p0;
            Array.Clear(p);
            int count = PredCount((insn >> 5) & 31, esz);
            for (int e = 0; e < Elements(esz); e++) SetAct(p, e, esz, e < count);
            SetP((int)(insn & 15), p);
            if (((insn >> 16) & 1) != 0)
            {
                var all = _p1;
                Array.Fill(all, (byte)0xFF);
                PredTest(all, p, esz);
            }
            Next();
            return true;
        }
        // PFALSE: 0x2518E400 | Pd.
        if ((insn & 0xFFFF_FFF0) == 0x2518_E400)
        {
            Array.Clear(_p0);
            SetP((int)(insn & 15), _p0);
            Next();
            return true;
        }
        // PTEST: 00100101 01 010000 11 Pg 0 Pn 0 0000.
        if ((insn & 0xFFFF_C21F) == 0x2550_C000)
        {
            PredTest(P((int)((insn >> 10) & 15), _p0), P((int)((insn >> 5) & 15), _p1), 1);
            Next();
            return true;
        }
        // Predicate logical: 00100101 op S 00 Pm 01 Pg o2 Pn o3 Pd.
        if ((insn & 0xFF30_C000) == 0x2500_4000)
        {
            PredicateLogical(insn);
            return true;
        }
        // CNTP: 00100101 size 100000 10 Pg 0 Pn Rd.
        if ((insn & 0xFF3F_C200) == 0x2520_8000)
        {
            var pg = P((int)((insn >> 10) & 15), _p0);
            var pn = P((int)((insn >> 5) & 15), _p1);
            int count = 0;
            for (int e = 0; e < Elements(esz); e++) if (Act(pg, e, esz) && Act(pn, e, esz)) count++;
            cpu.SetReg((int)(insn & 31), (ulong)count);
            Next();
            return true;
        }
        // INCP/DECP (scalar): 00100101 size 10110 D 10001 00 Pm Rdn.
        if ((insn & 0xFF3E_FE00) == 0x252C_8800)
        {
            var pm = P((int)((insn >> 5) & 15), _p0);
            ulong count = 0;
            for (int e = 0; e < Elements(esz); e++) if (Act(pm, e, esz)) count++;
            int rdn = (int)(insn & 31);
            cpu.SetReg(rdn, ((insn >> 16) & 1) != 0 ? cpu.Reg(rdn) - count : cpu.Reg(rdn) + count);
            Next();
            return true;
        }
        // Wide immediates, unpredicated: 00100101 size 1 xxxxx 11 ...
        if ((insn & 0xFF20_C000) == 0x2520_C000) return SveWideImmediate(insn, esz);
        // Integer compare with signed immediate: 00100101 size 0 imm5 op 0 o2 Pg Zn ne Pd.
        if ((insn & 0xFF20_4000) == 0x2500_0000) return SveCompare(insn);
        return false;
    }

    /// <summary>
    /// WHILELT/LE/LO/LS (C8.2 WHILELO etc.): for each element, while the comparison of operand1 (incremented per
    /// element, wrapping at the register size) with operand2 holds, the element is true; NZCV = PredTest(all, result).
    /// </summary>
    private void While(uint insn, int esz)
    {
        bool sf = ((insn >> 12) & 1) != 0, unsigned = ((insn >> 11) & 1) != 0, eq = ((insn >> 4) & 1) != 0;
        ulong op1 = cpu.Reg((int)((insn >> 5) & 31)), op2 = cpu.Reg((int)((insn >> 16) & 31));
        if (!sf)
        {
            op1 = unsigned ? (uint)op1 : (ulong)(long)(int)op1;
            op2 = unsigned ? (uint)op2 : (ulong)(long)(int)op2;
        }
        var p = _p0;
        Array.Clear(p);
        bool last = true;
        for (int e = 0; e < Elements(esz); e++)
        {
            bool cond = unsigned ? (eq ? op1 <= op2 : op1 < op2) : (eq ? (long)op1 <= (long)op2 : (long)op1 < (long)op2);
            last = last && cond;
            SetAct(p, e, esz, last);
            op1++;
            if (!sf) op1 = unsigned ? (uint)op1 : (ulong)(long)(int)op1;
        }
        SetP((int)(insn & 15), p);
        var all = _p1;
        Array.Fill(all, (byte)0xFF);
        PredTest(all, p, esz);
        Next();
    }

    /// <summary>
    /// AND, BIC, EOR, SEL, ORR, ORN, NOR, NAND (predicates) and the flag-setting ANDS…NANDS (C8.2): per bit, zero
    /// where Pg is false (SEL takes Pm there); the S forms set NZCV = PredTest(Pg, result, 8).
    /// </summary>
    private void PredicateLogical(uint insn)
    {
        uint op = (insn >> 23) & 1, s = (insn >> 22) & 1, o2 = (insn >> 9) & 1, o3 = (insn >> 4) & 1;
        var pg = P((int)((insn >> 10) & 15), _p0);
        var pn = P((int)((insn >> 5) & 15), _p1);
        var pm = P((int)((insn >> 16) & 15), _p2);
        uint which = (op << 2) | (o2 << 1) | o3;
        int bytes = _vl / 8;
        for (int i = 0; i < bytes; i++)
        {
            int g = pg[i], n = pn[i], m = pm[i];
            int r = which switch
            {
                0 => n & m,
                1 => n & ~m,
                2 => n ^ m,
                3 => (n & g) | (m & ~g),
                4 => n | m,
                5 => n | ~m,
                6 => ~(n | m),
                _ => ~(n & m),
            };
            pn[i] = (byte)(which == 3 ? r : r & g);
        }
        if (which == 3 && s != 0)
        {
            throw new UnsupportedInstructionStop(insn); // SELS is unallocated
        }
        SetP((int)(insn & 15), pn);
        if (s != 0) PredTest(pg, pn, 1);
        Next();
    }

    /// <summary>
    /// Integer compares into a predicate (C8.2 CMP&lt;cc&gt; (vectors), (wide elements), (immediate)): each active
    /// element's comparison, inactive elements false; NZCV = PredTest(Pg, result, esize).
    /// </summary>
    private bool SveCompare(uint insn)
    {
        int esz = Esz(insn);
        int zn = (int)((insn >> 5) & 31);
        uint ne = (insn >> 4) & 1;
        var pg = P((int)((insn >> 10) & 7), _p0);
        var a = Z(zn, _z0);
        // cond: 0 EQ, 1 NE, 2 GE, 3 GT, 4 LT, 5 LE, 6 HS, 7 HI, 8 LO, 9 LS
        int cond;
        Func<int, ulong> operand2;
        bool wide = false;
        if ((insn & 0xFF20_0000) == 0x2400_0000)
        {
            var b = Z((int)((insn >> 16) & 31), _z1);
            uint op = (insn >> 15) & 1, bit14 = (insn >> 14) & 1, o2 = (insn >> 13) & 1;
            if (bit14 == 0)
            {
                cond = ((op << 2) | (o2 << 1) | ne) switch { 0 => 6, 1 => 7, 2 => 0, 3 => 1, 4 => 2, 5 => 3, 6 => 0, _ => 1 };
                wide = op == 0 && o2 == 1;
            }
            else
            {
                cond = ((op << 2) | (o2 << 1) | ne) switch { 0 => 2, 1 => 3, 2 => 4, 3 => 5, 4 => 6, 5 => 7, 6 => 8, _ => 9 };
                wide = true;
            }
            if (wide && esz == 8) return false;
            operand2 = wide ? e => E(b, e * esz / 8, 8) : e => E(b, e, esz);
        }
        else if ((insn & 0xFF20_0000) == 0x2420_0000)
        {
            // Unsigned immediate: 00100100 size 1 imm7 lt Pg Zn ne Pd.
            ulong imm = (insn >> 14) & 0x7F;
            cond = ((((insn >> 13) & 1) << 1) | ne) switch { 0 => 6, 1 => 7, 2 => 8, _ => 9 };
            operand2 = _ => imm;
        }
        else
        {
            // Signed immediate: 00100101 size 0 imm5 op 0 o2 Pg Zn ne Pd.
            ulong imm = (ulong)((long)((int)(insn << 11) >> 27));
            uint op = (insn >> 15) & 1, o2 = (insn >> 13) & 1;
            cond = ((op << 2) | (o2 << 1) | ne) switch { 0 => 2, 1 => 3, 2 => 4, 3 => 5, 4 => 0, 5 => 1, _ => -1 };
            if (cond < 0) return false;
            operand2 = _ => imm;
        }
        var result = _p1;
        Array.Clear(result);
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(pg, e, esz)) continue;
            ulong x = E(a, e, esz), y = operand2(e);
            long sx = Sx(x, esz), sy = wide ? (long)y : Sx(y & EMask(esz), esz);
            ulong ux = x, uy = wide ? y : y & EMask(esz);
            bool r = cond switch
            {
                0 => wide ? sx == sy : ux == uy,
                1 => wide ? sx != sy : ux != uy,
                2 => sx >= sy,
                3 => sx > sy,
                4 => sx < sy,
                5 => sx <= sy,
                6 => ux >= uy,
                7 => ux > uy,
                8 => ux < uy,
                _ => ux <= uy,
            };
            SetAct(result, e, esz, r);
        }
        SetP((int)(insn & 15), result);
        PredTest(pg, result, esz);
        Next();
        return true;
    }
}
