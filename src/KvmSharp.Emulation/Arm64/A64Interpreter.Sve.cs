// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE (Arm ARM DDI 0487 chapter C4.1.x "SVE encodings", op0 = 0b0010 at bits 28:25; instruction semantics from the C8
/// pseudocode of each instruction): the subset gcc -O3 -march=armv8.2-a+sve emits for ordinary loops. The enable rule
/// (<see cref="SveTrapped"/>), the effective vector length (<see cref="SveVl"/>), the register accessors and the
/// predicate and integer groups are here; loads, stores and floating point are in A64Interpreter.SveMemoryFp.cs. An
/// SVE encoding outside the subset stops the run as an emulation failure.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ESR_ELx.EC 0x19: "Access to SVE functionality trapped as a result of CPACR_EL1.ZEN" (ISS RES0).</summary>
    private const uint EcSveAccess = 0x19;

    private static readonly int ZcrIndex = Arm64SysRegs.Index("ZCR_EL1");

    // Scratch: four Z registers (up to 2048 bits) and three P registers (up to 256 bits).
    private readonly byte[] _z0 = new byte[256], _z1 = new byte[256], _z2 = new byte[256], _z3 = new byte[256];
    private readonly byte[] _p0 = new byte[32], _p1 = new byte[32], _p2 = new byte[32];

    /// <summary>The current vector length in bytes for the instruction being executed.</summary>
    private int _vl;

    /// <summary>
    /// The top-level SVE group (bits 28:25 = 0010). Without the SVE feature the encodings are unallocated
    /// (UNDEFINED, EC 0x00: Arm ARM C4.1 "if !HaveSVE() then UNDEFINED"); with it, CheckSVEEnabled first.
    /// </summary>
    private bool TrySve(uint insn)
    {
        if (cpu.Sve is not { Finalized: true } sve)
        {
            Undefined();
            return true;
        }
        if (SveTrapped()) return true;
        _vl = SveVl(sve);
        bool done = (insn >> 29) switch
        {
            0 => SveIntegerGroup(insn) || SvePermuteGroup(insn),
            1 => SvePredicateGroup(insn),
            3 => SveFp(insn),
            4 or 5 or 6 or 7 => SveMemory(insn),
            _ => false,
        };
        if (!done) throw new UnsupportedInstructionStop(insn);
        return true;
    }

    /// <summary>
    /// CheckSVEEnabled (Arm ARM D19.2.30 CPACR_EL1.ZEN, pseudocode AArch64.CheckSVEEnabled): ZEN 0b00/0b10 trap EL0
    /// and EL1, 0b01 traps EL0, 0b11 nothing — an SVE access trap to EL1 (EC 0x19); then the FPEN check of
    /// <see cref="FpTrapped"/> (EC 0x07). KVM's own CPTR_EL2 lazy switch is invisible to the guest. True: trapped.
    /// </summary>
    private bool SveTrapped()
    {
        ulong zen = (cpu.SysRegs[CpacrIndex] >> 16) & 3;
        bool trapped = cpu.AtEl0 ? zen != 3 : (zen & 1) == 0;
        if (trapped)
        {
            TakeException(EcSveAccess, cpu.Pc, far: null);
            return true;
        }
        return FpTrapped();
    }

    /// <summary>
    /// CurrentVL / ImplementedSVEVectorLength (Arm ARM D19.2.163 ZCR_EL1.LEN, "Constraining the vector length"): the
    /// requested (LEN + 1) × 128 bits, capped by ZCR_EL2.LEN (KVM sets it from vcpu->arch.sve_max_vl:
    /// sve_cond_update_zcr_vq(vcpu_sve_max_vq(vcpu) - 1, SYS_ZCR_EL2)), rounded down to an implemented length.
    /// </summary>
    private int SveVl(Arm64SveState sve)
    {
        int vq = Math.Min((int)(cpu.SysRegs[ZcrIndex] & 0xF) + 1, sve.MaxVq);
        while (vq > 1 && !cpu.IdRegs.Model.SveVqAvailable(vq)) vq--;
        return vq * 16;
    }

    // ---- Register and element accessors (Arm ARM Z[], P[], Elem[], ElemP[]) ----

    private byte[] Z(int n, byte[] buf)
    {
        var sve = cpu.Sve!;
        sve.ReadZ(cpu, n, buf.AsSpan(0, sve.Vl));
        return buf;
    }

    /// <summary>Z[n] = value: "_Z[n] = ZeroExtend(value, MAX_VL)" (bits beyond the current VL are zeroed).</summary>
    private void SetZ(int n, byte[] buf)
    {
        var sve = cpu.Sve!;
        buf.AsSpan(_vl, sve.Vl - _vl).Clear();
        sve.WriteZ(cpu, n, buf.AsSpan(0, sve.Vl));
    }

    private byte[] P(int n, byte[] buf)
    {
        var sve = cpu.Sve!;
        sve.Preg(n).CopyTo(buf);
        return buf;
    }

    /// <summary>P[n] = value: "_P[n] = ZeroExtend(value, MAX_PL)".</summary>
    private void SetP(int n, byte[] buf)
    {
        var sve = cpu.Sve!;
        buf.AsSpan(_vl / 8, sve.PregBytes - _vl / 8).Clear();
        buf.AsSpan(0, sve.PregBytes).CopyTo(sve.Preg(n));
    }

    private static ulong E(byte[] z, int e, int esz) => esz switch
    {
        1 => z[e],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(z.AsSpan(e * 2)),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(z.AsSpan(e * 4)),
        _ => BinaryPrimitives.ReadUInt64LittleEndian(z.AsSpan(e * 8)),
    };

    private static void SetE(byte[] z, int e, int esz, ulong v)
    {
        switch (esz)
        {
            case 1: z[e] = (byte)v; break;
            case 2: BinaryPrimitives.WriteUInt16LittleEndian(z.AsSpan(e * 2), (ushort)v); break;
            case 4: BinaryPrimitives.WriteUInt32LittleEndian(z.AsSpan(e * 4), (uint)v); break;
            default: BinaryPrimitives.WriteUInt64LittleEndian(z.AsSpan(e * 8), v); break;
        }
    }

    private static long Sx(ulong v, int esz) => esz == 8 ? (long)v : (long)(v << (64 - 8 * esz)) >> (64 - 8 * esz);

    private static ulong EMask(int esz) => esz == 8 ? ulong.MaxValue : (1UL << (8 * esz)) - 1;

    /// <summary>ElemP[pred, e, esize]: the predicate bit of element e is bit e × esize/8.</summary>
    private static bool Act(byte[] p, int e, int esz) => ((p[e * esz >> 3] >> ((e * esz) & 7)) & 1) != 0;

    /// <summary>ElemP[pred, e, esize] = bit: the element's lowest bit, its other bits cleared.</summary>
    private static void SetAct(byte[] p, int e, int esz, bool bit)
    {
        for (int b = e * esz; b < (e + 1) * esz; b++) p[b >> 3] &= (byte)~(1 << (b & 7));
        if (bit) p[e * esz >> 3] |= (byte)(1 << ((e * esz) & 7));
    }

    private int Elements(int esz) => _vl / esz;

    /// <summary>
    /// PredTest(mask, result, esize) (Arm ARM shared pseudocode): N = the first active element is true, Z = no active
    /// element is true, C = NOT (the last active element is true), V = 0.
    /// </summary>
    private void PredTest(byte[] mask, byte[] result, int esz)
    {
        bool n = false, z = true, c = true, first = true;
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(mask, e, esz)) continue;
            bool r = Act(result, e, esz);
            if (first) n = r;
            first = false;
            if (r) z = false;
            c = !r;
        }
        SetNzcv((n ? 8u : 0) | (z ? 4u : 0) | (c ? 2u : 0));
    }

    /// <summary>
    /// DecodePredCount(pattern, esize): POW2, VL1–VL8, VL16–VL256 (0 when there are fewer elements), MUL4, MUL3, ALL;
    /// the unallocated patterns give 0.
    /// </summary>
    private int PredCount(uint pattern, int esz)
    {
        int elements = Elements(esz);
        int Fixed(int n) => elements >= n ? n : 0;
        return pattern switch
        {
            0 => 1 << (31 - BitOperations.LeadingZeroCount((uint)elements)),
            >= 1 and <= 8 => Fixed((int)pattern),
            >= 9 and <= 13 => Fixed(16 << (int)(pattern - 9)),
            29 => elements - elements % 4,
            30 => elements - elements % 3,
            31 => elements,
            _ => 0,
        };
    }

    private static int Esz(uint insn) => 1 << (int)((insn >> 22) & 3);

    // ---- Predicates (0x25 space and friends) ----

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

    // ---- Integer (bits 31:24 = 0x04) ----

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

    // ---- Permutes and element moves (bits 31:24 = 0x05) ----

    private bool SvePermuteGroup(uint insn)
    {
        if ((insn >> 24) != 0x05) return false;
        int esz = Esz(insn);
        int zd = (int)(insn & 31), zn = (int)((insn >> 5) & 31), zm = (int)((insn >> 16) & 31);
        uint b21 = (insn >> 21) & 1;
        // PUNPKLO/PUNPKHI: 00000101 0011000 H 0100000 Pn 0 Pd — the low or high half of Pn's byte elements, widened to halfwords.
        if ((insn & 0xFFFE_FE10) == 0x0530_4000)
        {
            var pn = P((int)((insn >> 5) & 15), _p0);
            var d = _p1;
            Array.Clear(d);
            int n = Elements(2), off = ((insn >> 16) & 1) != 0 ? n : 0;
            for (int e = 0; e < n; e++) SetAct(d, e, 2, Act(pn, off + e, 1));
            SetP((int)(insn & 15), d);
            Next();
            return true;
        }
        if (b21 == 0)
        {
            // Bitwise immediate: 00000101 opc 0000 imm13 Zdn (opc 00 ORR, 01 EOR, 10 AND, 11 DUPM).
            if (((insn >> 18) & 15) == 0)
            {
                uint opc = (insn >> 22) & 3;
                if (!DecodeBitMasks((insn >> 17) & 1, (insn >> 5) & 0x3F, (insn >> 11) & 0x3F, immediate: true, 64, out ulong imm, out _)) return false;
                var z = Z(zd, _z0);
                for (int e = 0; e < Elements(8); e++)
                {
                    ulong x = E(z, e, 8);
                    SetE(z, e, 8, opc switch { 0 => x | imm, 1 => x ^ imm, 2 => x & imm, _ => imm });
                }
                SetZ(zd, z);
                Next();
                return true;
            }
            // CPY (immediate) and FCPY: 00000101 size 01 Pg 0 M sh imm8 Zd / 00000101 size 01 Pg 110 imm8 Zd.
            if (((insn >> 20) & 3) == 1)
            {
                var p = P((int)((insn >> 16) & 15), _p0);
                var z = Z(zd, _z0);
                uint imm8 = (insn >> 5) & 0xFF;
                bool fcpy = ((insn >> 13) & 7) == 6, merge = fcpy || ((insn >> 14) & 1) != 0, sh = ((insn >> 13) & 1) != 0;
                if (!fcpy && (insn & 0x8000) != 0) return false;
                if ((fcpy && esz == 1) || (!fcpy && sh && esz == 1)) return false;
                ulong imm = fcpy ? FpExpand(imm8, esz) : (ulong)((long)(sbyte)imm8 << (sh ? 8 : 0)) & EMask(esz);
                for (int e = 0; e < Elements(esz); e++)
                {
                    if (Act(p, e, esz)) SetE(z, e, esz, imm);
                    else if (!merge) SetE(z, e, esz, 0);
                }
                SetZ(zd, z);
                Next();
                return true;
            }
            return false;
        }
        uint g = (insn >> 10) & 0x3F;
        // SEL (vectors): 00000101 size 1 Zm 11 Pg Zn Zd.
        if ((g >> 4) == 3)
        {
            var p = P((int)((insn >> 10) & 15), _p0);
            var a = Z(zn, _z0);
            var b = Z(zm, _z1);
            for (int e = 0; e < Elements(esz); e++) if (!Act(p, e, esz)) SetE(a, e, esz, E(b, e, esz));
            SetZ(zd, a);
            Next();
            return true;
        }
        // DUP (indexed): 00000101 imm2 1 tsz 001000 Zn Zd.
        if (g == 0x08)
        {
            uint tsz = (insn >> 16) & 0x1F;
            if (tsz == 0) return false;
            int log = BitOperations.TrailingZeroCount(tsz);
            uint imm = (((insn >> 22) & 3) << 5 | tsz) >> (log + 1);
            var a = Z(zn, _z0);
            var d = _z1;
            Array.Clear(d);
            int bytes = 1 << log;
            if ((int)imm * bytes < _vl)
            {
                for (int e = 0; e < _vl / bytes; e++) a.AsSpan((int)imm * bytes, bytes).CopyTo(d.AsSpan(e * bytes));
            }
            SetZ(zd, d);
            Next();
            return true;
        }
        if (g == 0x0E)
        {
            uint sel = (insn >> 16) & 0x1F;
            var d = _z1;
            if (sel == 0)
            {
                ulong x = cpu.RegOrSp(zn); // DUP (scalar)
                for (int e = 0; e < Elements(esz); e++) SetE(d, e, esz, x);
            }
            else if ((sel >> 2) == 4 || (sel >> 2) == 5)
            {
                // SUNPKLO/HI, UUNPKLO/HI: 00000101 size 1100 U H 001110 Zn Zd.
                if (esz == 1) return false;
                bool unsigned = (sel & 2) != 0, hi = (sel & 1) != 0;
                var a = Z(zn, _z0);
                int half = esz / 2, n = Elements(esz), off = hi ? n : 0;
                for (int e = 0; e < n; e++)
                {
                    ulong x = E(a, off + e, half);
                    SetE(d, e, esz, unsigned ? x : (ulong)Sx(x, half));
                }
            }
            else if (sel == 0x18)
            {
                var a = Z(zn, _z0); // REV (vector)
                int n = Elements(esz);
                for (int e = 0; e < n; e++) SetE(d, e, esz, E(a, n - 1 - e, esz));
            }
            else if (sel == 0x04 || sel == 0x14)
            {
                // INSR (scalar / SIMD&FP): shift the vector up one element, the scalar into element 0.
                var a = Z(zd, _z0);
                int n = Elements(esz);
                for (int e = n - 1; e > 0; e--) SetE(d, e, esz, E(a, e - 1, esz));
                SetE(d, 0, esz, sel == 0x04 ? cpu.Reg(zn) : (ulong)cpu.Vregs[zn]);
            }
            else
            {
                return false;
            }
            SetZ(zd, d);
            Next();
            return true;
        }
        // ZIP1/2, UZP1/2, TRN1/2: 00000101 size 1 Zm 011 opc Zn Zd.
        if ((g >> 3) == 3) return Permute(insn, esz, zd, zn, zm, g & 7);
        // The 0x05 bit 21 = 1, bits 15:13 = 10x group: LASTA/B, CLASTA/B, CPY (scalar / SIMD&FP).
        if ((g >> 4) == 2) return ElementMove(insn, esz, zd, zn);
        return false;
    }

    private bool Permute(uint insn, int esz, int zd, int zn, int zm, uint opc)
    {
        if (opc > 5) return false;
        _ = insn;
        var a = Z(zn, _z0);
        var b = Z(zm, _z1);
        var d = _z2;
        int n = Elements(esz), half = n / 2;
        int part = (int)(opc & 1);
        for (int e = 0; e < n; e++)
        {
            ulong v = (opc >> 1) switch
            {
                0 => (e & 1) == 0 ? E(a, part * half + e / 2, esz) : E(b, part * half + e / 2, esz), // ZIP
                1 => e < half ? E(a, 2 * e + part, esz) : E(b, 2 * (e - half) + part, esz), // UZP
                _ => (e & 1) == 0 ? E(a, (e & ~1) + part, esz) : E(b, (e & ~1) + part, esz), // TRN
            };
            SetE(d, e, esz, v);
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>
    /// LASTA/LASTB (scalar, SIMD&amp;FP), CLASTA/CLASTB (scalar, SIMD&amp;FP, vectors) and CPY (scalar, SIMD&amp;FP)
    /// (C8.2): LASTB takes the last active element (the last element when none is active), LASTA the one after it
    /// (wrapping); CLAST* keep the destination when no element is active.
    /// </summary>
    private bool ElementMove(uint insn, int esz, int rd, int zn)
    {
        uint sel = (insn >> 16) & 0x1F, form = (insn >> 13) & 7;
        var p = P((int)((insn >> 10) & 7), _p0);
        int n = Elements(esz);
        int last = -1;
        for (int e = 0; e < n; e++) if (Act(p, e, esz)) last = e;
        bool b = (sel & 1) != 0;
        switch (sel >> 1, form)
        {
            case (0, 5): // LASTA/LASTB (scalar): 00000101 size 10000 B 101 Pg Zn Rd
            case (1, 4): // LASTA/LASTB (SIMD&FP): 00000101 size 10001 B 100 Pg Zn Vd
            {
                var a = Z(zn, _z0);
                int idx = b ? (last < 0 ? n - 1 : last) : (last + 1 == n ? 0 : last + 1);
                ulong v = E(a, idx, esz);
                if (form == 5) cpu.SetReg(rd, v);
                else SetVScalar(rd, v, 8 * esz);
                break;
            }
            case (8, 5): // CLASTA/CLASTB (scalar): 00000101 size 11000 B 101 Pg Zm Rdn
            case (5, 4): // CLASTA/CLASTB (SIMD&FP): 00000101 size 10101 B 100 Pg Zm Vdn
            {
                var a = Z(zn, _z0);
                ulong v;
                if (last < 0) v = form == 5 ? cpu.Reg(rd) & EMask(esz) : (ulong)cpu.Vregs[rd] & EMask(esz);
                else v = E(a, b ? last : (last + 1 == n ? 0 : last + 1), esz);
                if (form == 5) cpu.SetReg(rd, v);
                else SetVScalar(rd, v, 8 * esz);
                break;
            }
            case (2, 4): // CLASTA/CLASTB (vectors): 00000101 size 10100 B 100 Pg Zm Zdn
            {
                if (last < 0) break;
                var a = Z(zn, _z0);
                ulong v = E(a, b ? last : (last + 1 == n ? 0 : last + 1), esz);
                var d = _z1;
                for (int e = 0; e < n; e++) SetE(d, e, esz, v);
                SetZ(rd, d);
                break;
            }
            case (4, 5): // CPY (scalar): 00000101 size 101000 101 Pg Rn Zd
            case (0, 4) when !b: // CPY (SIMD&FP): 00000101 size 100000 100 Pg Vn Zd
            {
                if (b) return false;
                ulong v = form == 5 ? cpu.RegOrSp(zn) : (ulong)cpu.Vregs[zn];
                var d = Z(rd, _z1);
                for (int e = 0; e < n; e++) if (Act(p, e, esz)) SetE(d, e, esz, v);
                SetZ(rd, d);
                break;
            }
            default:
                return false;
        }
        Next();
        return true;
    }
}
