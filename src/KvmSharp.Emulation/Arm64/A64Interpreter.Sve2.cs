// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE2 (FEAT_SVE2, Arm ARM DDI 0487 C4.1 "SVE encodings": the SVE2 classes; semantics from each instruction's C8
/// pseudocode). <see cref="TrySve2"/> is called by <see cref="TrySve"/> before the SVE groups: an encoding of the
/// table below is an SVE2 instruction. The CPU implements SVE2 when the emulated host's ID_AA64ZFR0_EL1.SVEver
/// (bits 3:0) is at least 1 (<see cref="Arm64CpuModel.SveFeatures"/>); otherwise the encodings are UNDEFINED ("if
/// !HaveSVE2() then UNDEFINED" comes in the decode, before CheckSVEEnabled). A guest's writable ID_AA64ZFR0_EL1 does
/// not change what the CPU executes (KVM cannot trap SVE2 instructions). Groups: this file (predicate-producing
/// WHILEGE/GT/HS/HI and WHILEWR/RW, two-vector TBL and TBX, MATCH/NMATCH, HISTCNT/HISTSEG, non-temporal
/// gathers and scatters), A64Interpreter.Sve2Integer.cs (predicated, multiply, bitwise ternary, shift-accumulate,
/// complex add), A64Interpreter.Sve2Widening.cs (long, wide, interleaved, carry and narrowing forms),
/// A64Interpreter.Sve2Indexed.cs (indexed multiplies; CDOT, CMLA, SQRDCMLAH), A64Interpreter.Sve2Fp.cs (floating
/// point) and A64Interpreter.Sve2Crypto.cs (the optional BitPerm, AES, PMULL128, SHA3 and SM4 extensions).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>One SVE2 encoding class: insn &amp; Mask == Value; Run false means the class's reserved encoding (UNDEFINED).</summary>
    private readonly record struct Sve2Class(uint Mask, uint Value, Func<A64Interpreter, uint, bool> Run);

    private static readonly Sve2Class[] Sve2Classes =
    [
        // C4.1 "SVE Integer Compare - Scalars": WHILEGE/WHILEGT/WHILEHS/WHILEHI (bit 10 lt = 0) and WHILEWR/WHILERW.
        new(0xFF20_E400, 0x2520_0000, (c, i) => c.WhileDown(i)),
        new(0xFF20_FC00, 0x2520_3000, (c, i) => c.WhileConflict(i)),
        // C4.1 "SVE Permute Vector - Unpredicated": TBL (two vectors), TBX.
        new(0xFF20_F800, 0x0520_2800, (c, i) => c.Sve2Table(i)),
        // C4.1 "SVE2 character match", "SVE2 Histogram Computation": MATCH/NMATCH, HISTCNT, HISTSEG.
        new(0xFF20_E000, 0x4520_8000, (c, i) => c.Sve2Match(i)),
        new(0xFF20_E000, 0x4520_C000, (c, i) => c.Sve2HistCount(i)),
        new(0xFF20_FC00, 0x4520_A000, (c, i) => c.Sve2HistSegment(i)),
        // C4.1 "SVE Memory - 32-bit Gather and Unsized Contiguous" / "64-bit Gather": LDNT1* (vector plus scalar);
        // "SVE Memory - Non-temporal and Multi-register Contiguous Store": STNT1* (vector plus scalar).
        new(0xFE60_C000, 0x8400_8000, (c, i) => c.Sve2NonTemporalGather(i, wide: false)),
        new(0xFE60_A000, 0xC400_8000, (c, i) => c.Sve2NonTemporalGather(i, wide: true)),
        new(0xFE60_E000, 0xE440_2000, (c, i) => c.Sve2NonTemporalScatter(i, wide: false)),
        new(0xFE60_E000, 0xE400_2000, (c, i) => c.Sve2NonTemporalScatter(i, wide: true)),
        // A64Interpreter.Sve2Integer.cs.
        new(0xFF20_E000, 0x4400_8000, (c, i) => c.Sve2IntPredicated(i)),   // halving, saturating, shifts by vector
        new(0xFF20_E000, 0x4400_A000, (c, i) => c.Sve2IntPredicatedUnary(i)), // SADALP/UADALP, SQABS/SQNEG, pairwise
        // SQSHL/UQSHL (opc 011x), SRSHR/URSHR (110x), SQSHLU (1111) of "SVE Bitwise Shift - Predicated" (immediate).
        new(0xFF3E_E000, 0x0406_8000, (c, i) => c.Sve2ShiftImmPredicated(i)),
        new(0xFF3E_E000, 0x040C_8000, (c, i) => c.Sve2ShiftImmPredicated(i)),
        new(0xFF3F_E000, 0x040F_8000, (c, i) => c.Sve2ShiftImmPredicated(i)),
        new(0xFF20_F000, 0x0420_6000, (c, i) => c.Sve2MulUnpredicated(i)),
        new(0xFF20_F800, 0x0420_7000, (c, i) => c.Sve2MulUnpredicated(i)),
        new(0xFF20_F800, 0x4400_7000, (c, i) => c.Sve2RoundingMulAdd(i)),
        new(0xFF20_F800, 0x0420_3800, (c, i) => c.Sve2BitwiseTernary(i)),
        new(0xFF20_FC00, 0x0420_3400, (c, i) => c.Sve2Xar(i)),
        new(0xFF20_F000, 0x4500_E000, (c, i) => c.Sve2ShiftAccumulate(i)),
        new(0xFF20_F800, 0x4500_F000, (c, i) => c.Sve2ShiftInsert(i)),
        new(0xFF20_F800, 0x4500_F800, (c, i) => c.Sve2AbsDiffAccumulate(i)),
        new(0xFF3E_F800, 0x4500_D800, (c, i) => c.Sve2ComplexAdd(i)),
        // A64Interpreter.Sve2Widening.cs.
        new(0xFF20_C000, 0x4500_0000, (c, i) => c.Sve2LongAddSub(i)),
        new(0xFF20_E000, 0x4500_4000, (c, i) => c.Sve2WideAddSub(i)),
        new(0xFF20_E000, 0x4500_6000, (c, i) => c.Sve2MulLong(i)),
        new(0xFF20_E000, 0x4400_4000, (c, i) => c.Sve2MulAddLong(i)),
        new(0xFF20_F000, 0x4400_6000, (c, i) => c.Sve2SatMulAddLong(i)),
        new(0xFF20_F800, 0x4400_0800, (c, i) => c.Sve2SatMulAddInterleavedLong(i)),
        new(0xFF20_F000, 0x4500_C000, (c, i) => c.Sve2AbsDiffAccumulateLong(i)),
        new(0xFF20_F000, 0x4500_8000, (c, i) => c.Sve2InterleavedLong(i)),
        new(0xFF20_F800, 0x4500_9000, (c, i) => c.Sve2InterleavedEor(i)),
        new(0xFF20_F800, 0x4500_D000, (c, i) => c.Sve2CarryLong(i)),
        new(0xFFA0_F000, 0x4500_A000, (c, i) => c.Sve2ShiftLeftLong(i)),
        new(0xFFA0_C000, 0x4520_0000, (c, i) => c.Sve2ShiftRightNarrow(i)),
        new(0xFFA7_E000, 0x4520_4000, (c, i) => c.Sve2ExtractNarrow(i)),
        new(0xFF20_E000, 0x4520_6000, (c, i) => c.Sve2HighNarrow(i)),
        // A64Interpreter.Sve2Indexed.cs: C4.1 "SVE Multiply - Indexed" (SVE2 classes) and CDOT/CMLA/SQRDCMLAH (vectors).
        new(0xFF20_F800, 0x4420_0800, (c, i) => c.Sve2MulAddIndexed(i)),
        new(0xFF20_F800, 0x4420_1000, (c, i) => c.Sve2RoundingMulAddIndexed(i)),
        new(0xFF20_E000, 0x4420_2000, (c, i) => c.Sve2SatMulAddLongIndexed(i)),
        new(0xFF20_F000, 0x4420_4000, (c, i) => c.Sve2ComplexDotIndexed(i)),
        new(0xFF20_E000, 0x4420_6000, (c, i) => c.Sve2ComplexMulAddIndexed(i)),
        new(0xFF20_C000, 0x4420_8000, (c, i) => c.Sve2MulAddLongIndexed(i)),
        new(0xFF20_E000, 0x4420_C000, (c, i) => c.Sve2MulLongIndexed(i)),
        new(0xFF20_F000, 0x4420_E000, (c, i) => c.Sve2SatMulLongIndexed(i)),
        new(0xFF20_F800, 0x4420_F000, (c, i) => c.Sve2MulIndexed(i)),
        new(0xFF20_FC00, 0x4420_F800, (c, i) => c.Sve2MulIndexed(i)),
        new(0xFF20_F000, 0x4400_1000, (c, i) => c.Sve2ComplexDotVectors(i)),
        new(0xFF20_E000, 0x4400_2000, (c, i) => c.Sve2ComplexMulAddVectors(i)),
        // A64Interpreter.Sve2Crypto.cs: "SVE2 bitwise permute", "SVE2 crypto" (each UNDEFINED without its ID_AA64ZFR0_EL1 field).
        new(0xFF20_F000, 0x4500_B000, (c, i) => c.Sve2BitPermute(i)),
        new(0xFFE0_FC00, 0x4520_F400, (c, i) => c.Sve2Rax1(i)),
        new(0xFFFF_FBE0, 0x4520_E000, (c, i) => c.Sve2AesMix(i)),
        new(0xFFFF_F800, 0x4522_E000, (c, i) => c.Sve2AesRound(i)),
        new(0xFFE0_FC00, 0x4520_F000, (c, i) => c.Sve2Sm4(i, key: true)),
        new(0xFFFF_FC00, 0x4523_E000, (c, i) => c.Sve2Sm4(i, key: false)),
        // A64Interpreter.Sve2Fp.cs: "SVE2 floating-point pairwise operations", "… convert precision odd elements", FLOGB,
        // "… multiply-add long" (vectors and indexed).
        new(0xFF38_E000, 0x6410_8000, (c, i) => c.Sve2FpPairwise(i)),
        new(0xFFF9_E000, 0x6518_A000, (c, i) => c.Sve2FpLogb(i)),
        new(0xFFFF_E000, 0x6488_A000, (c, i) => c.Sve2FpConvertOdd(i)),
        new(0xFFFF_E000, 0x6489_A000, (c, i) => c.Sve2FpConvertOdd(i)),
        new(0xFFFF_E000, 0x64CA_A000, (c, i) => c.Sve2FpConvertOdd(i)),
        new(0xFFFF_E000, 0x64CB_A000, (c, i) => c.Sve2FpConvertOdd(i)),
        new(0xFFFF_E000, 0x640A_A000, (c, i) => c.Sve2FpConvertOdd(i)),
        new(0xFFFF_E000, 0x650A_A000, (c, i) => c.Sve2FpConvertOdd(i)),
        new(0xFFE0_D800, 0x64A0_8000, (c, i) => c.Sve2FpMulAddLong(i, indexed: false)),
        new(0xFFE0_D000, 0x64A0_4000, (c, i) => c.Sve2FpMulAddLong(i, indexed: true)),
    ];

    /// <summary>HaveSVE2(): the emulated host's ID_AA64ZFR0_EL1.SVEver ≥ 1.</summary>
    private bool HaveSve2 => cpu.IdRegs.Model.HasSve2;

    /// <summary>
    /// An SVE2 encoding: UNDEFINED without SVE2 (or for a class's reserved encodings), else CheckSVEEnabled and
    /// execute. False: not an SVE2 encoding (the SVE groups decode it).
    /// </summary>
    private bool TrySve2(uint insn, Arm64SveState sve)
    {
        Sve2Class? match = null;
        foreach (var c in Sve2Classes)
        {
            if ((insn & c.Mask) != c.Value) continue;
            match = c;
            break;
        }
        if (match is not { } cls) return false;
        if (!HaveSve2)
        {
            Undefined();
            return true;
        }
        if (SveTrapped()) return true;
        _vl = SveVl(sve);
        if (!cls.Run(this, insn)) Undefined();
        return true;
    }

    // ---- Shared SVE2 helpers ----

    /// <summary>SignedSat(v, esize) (Arm ARM shared pseudocode SatQ without the QC side effect: SVE has none).</summary>
    private static ulong SatS(Int128 v, int esz)
    {
        Int128 max = esz == 8 ? long.MaxValue : (Int128)((1L << (8 * esz - 1)) - 1), min = -max - 1;
        return (ulong)(long)(v > max ? max : v < min ? min : v) & EMask(esz);
    }

    /// <summary>UnsignedSat(v, esize).</summary>
    private static ulong SatU(Int128 v, int esz)
    {
        Int128 max = EMask(esz);
        return (ulong)(v > max ? max : v < 0 ? 0 : v);
    }

    /// <summary>Int(Elem[z, e, esize], unsigned) as a wide integer.</summary>
    private static Int128 Ev(byte[] z, int e, int esz, bool unsigned) => unsigned ? E(z, e, esz) : Sx(E(z, e, esz), esz);

    /// <summary>
    /// WHILEGE/WHILEGT/WHILEHS/WHILEHI (C8.2, 00100101 size 1 Rm 000 sf U 0 Rn eq Pd): from the last element down,
    /// while operand1 (decremented per element, in the register size) ≥ / &gt; operand2 the element is true;
    /// NZCV = PredTest(all, result).
    /// </summary>
    private bool WhileDown(uint insn)
    {
        int esz = Esz(insn);
        bool sf = ((insn >> 12) & 1) != 0, unsigned = ((insn >> 11) & 1) != 0, strict = ((insn >> 4) & 1) != 0;
        ulong op1 = cpu.Reg((int)((insn >> 5) & 31)), op2 = cpu.Reg((int)((insn >> 16) & 31));
        ulong Narrow(ulong v) => sf ? v : unsigned ? (uint)v : (ulong)(long)(int)v;
        op1 = Narrow(op1);
        op2 = Narrow(op2);
        var p = _p0;
        Array.Clear(p);
        bool last = true;
        for (int e = Elements(esz) - 1; e >= 0; e--)
        {
            bool cond = unsigned ? (strict ? op1 > op2 : op1 >= op2) : (strict ? (long)op1 > (long)op2 : (long)op1 >= (long)op2);
            last = last && cond;
            SetAct(p, e, esz, last);
            op1 = Narrow(op1 - 1);
        }
        SetP((int)(insn & 15), p);
        var all = _p1;
        Array.Fill(all, (byte)0xFF);
        PredTest(all, p, esz);
        Next();
        return true;
    }

    /// <summary>
    /// WHILEWR/WHILERW (C8.2, 00100101 size 1 Rm 001100 Rn rw Pd): the addresses are unsigned (UInt), diff =
    /// UInt(X[m]) − UInt(X[n]) in bytes (WHILERW: its absolute value); every element is true when diff = 0 or, for
    /// WHILEWR, diff &lt; 0; otherwise element e is true when e &lt; diff DIV (esize DIV 8) — so a positive distance
    /// below one element gives no true element (all measured on qemu-aarch64 -cpu max, the oracle of
    /// Arm64Sve2Tests). NZCV = PredTest(all, result).
    /// </summary>
    private bool WhileConflict(uint insn)
    {
        int esz = Esz(insn);
        bool rw = ((insn >> 4) & 1) != 0;
        ulong op1 = cpu.Reg((int)((insn >> 5) & 31)), op2 = cpu.Reg((int)((insn >> 16) & 31));
        bool all = op1 == op2 || (!rw && op2 < op1);
        ulong limit = (op2 >= op1 ? op2 - op1 : op1 - op2) / (ulong)esz;
        var p = _p0;
        Array.Clear(p);
        for (int e = 0; e < Elements(esz); e++) SetAct(p, e, esz, all || (ulong)e < limit);
        SetP((int)(insn & 15), p);
        var ones = _p1;
        Array.Fill(ones, (byte)0xFF);
        PredTest(ones, p, esz);
        Next();
        return true;
    }

    /// <summary>
    /// TBL (two vectors: 00000101 size 1 Zm 001010 Zn Zd): table {Zn, Zn+1}, out-of-range indices give 0; TBX
    /// (001011): Zn alone, out-of-range indices leave Zd's element (C8.2 TBL, TBX).
    /// </summary>
    private bool Sve2Table(uint insn)
    {
        int esz = Esz(insn), zd = (int)(insn & 31), zn = (int)((insn >> 5) & 31), zm = (int)((insn >> 16) & 31);
        bool tbx = ((insn >> 10) & 1) != 0;
        int elements = Elements(esz);
        var t0 = Z(zn, _z0);
        var t1 = Z((zn + 1) % 32, _z1);
        var idx = Z(zm, _z2);
        var d = Z(zd, _z3);
        for (int e = 0; e < elements; e++)
        {
            ulong i = E(idx, e, esz);
            if (i < (ulong)elements) SetE(d, e, esz, E(t0, (int)i, esz));
            else if (!tbx && i < (ulong)(2 * elements)) SetE(d, e, esz, E(t1, (int)i - elements, esz));
            else if (!tbx) SetE(d, e, esz, 0);
        }
        SetZ(zd, d);
        Next();
        return true;
    }

    /// <summary>
    /// MATCH/NMATCH (C8.2, 01000101 size 1 Zm 100 Pg Zn op Pd, bytes and halfwords): an active element is true when
    /// it equals (NMATCH: equals none of) some element of Zm's same 128-bit segment; inactive false; NZCV =
    /// PredTest(Pg, result).
    /// </summary>
    private bool Sve2Match(uint insn)
    {
        int esz = Esz(insn);
        if (esz > 2) return false;
        bool nmatch = ((insn >> 4) & 1) != 0;
        var a = Z((int)((insn >> 5) & 31), _z0);
        var b = Z((int)((insn >> 16) & 31), _z1);
        var g = P((int)((insn >> 10) & 7), _p1);
        var p = _p0;
        Array.Clear(p);
        int perSegment = 16 / esz;
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(g, e, esz)) continue;
            ulong v = E(a, e, esz);
            int seg = e / perSegment * perSegment;
            bool found = false;
            for (int i = 0; i < perSegment && !found; i++) found = E(b, seg + i, esz) == v;
            SetAct(p, e, esz, found != nmatch);
        }
        SetP((int)(insn & 15), p);
        PredTest(g, p, esz);
        Next();
        return true;
    }

    /// <summary>
    /// HISTCNT (C8.2, 01000101 size 1 Zm 110 Pg Zn Zd, words and doublewords): for each active element e, the number
    /// of active elements i ≤ e of Zm equal to Zn[e]; inactive elements zero.
    /// </summary>
    private bool Sve2HistCount(uint insn)
    {
        int esz = Esz(insn);
        if (esz < 4) return false;
        var a = Z((int)((insn >> 5) & 31), _z0);
        var b = Z((int)((insn >> 16) & 31), _z1);
        var g = P((int)((insn >> 10) & 7), _p0);
        var d = _z2;
        for (int e = 0; e < Elements(esz); e++)
        {
            ulong count = 0;
            if (Act(g, e, esz))
            {
                ulong v = E(a, e, esz);
                for (int i = 0; i <= e; i++) if (Act(g, i, esz) && E(b, i, esz) == v) count++;
            }
            SetE(d, e, esz, count);
        }
        SetZ((int)(insn & 31), d);
        Next();
        return true;
    }

    /// <summary>HISTSEG (C8.2, 01000101 00 1 Zm 101000 Zn Zd): per 128-bit segment, how many bytes of Zm's segment equal each byte of Zn's.</summary>
    private bool Sve2HistSegment(uint insn)
    {
        if (Esz(insn) != 1) return false;
        var a = Z((int)((insn >> 5) & 31), _z0);
        var b = Z((int)((insn >> 16) & 31), _z1);
        var d = _z2;
        for (int e = 0; e < _vl; e++)
        {
            int seg = e & ~15, count = 0;
            for (int i = 0; i < 16; i++) if (b[seg + i] == a[e]) count++;
            d[e] = (byte)count;
        }
        SetZ((int)(insn & 31), d);
        Next();
        return true;
    }

    /// <summary>
    /// LDNT1B/H/W/D, LDNT1SB/SH/SW (vector plus scalar, C8.2: 1000010 msz 00 Rm 10U Pg Zn Zt for 32-bit elements,
    /// 1100010 msz 00 Rm 1U0 … for 64-bit; U = 0 sign-extends): address = ZeroExtend(Zn[e]) + X[m] (Rm 31 = XZR), inactive elements
    /// zero; the non-temporal hint changes nothing here.
    /// </summary>
    private bool Sve2NonTemporalGather(uint insn, bool wide)
    {
        int msz = (int)((insn >> 23) & 3), esz = wide ? 8 : 4, mbytes = 1 << msz;
        bool unsigned = ((insn >> (wide ? 14 : 13)) & 1) != 0;
        if (mbytes > esz || (mbytes == esz && !unsigned)) return false;
        var offsets = Z((int)((insn >> 5) & 31), _z2);
        ulong xm = cpu.Reg((int)((insn >> 16) & 31));
        return ContiguousLoad(insn, (int)(insn & 31), mbytes, esz, !unsigned, e => E(offsets, e, esz) + xm);
    }

    /// <summary>STNT1B/H/W/D (vector plus scalar, C8.2): Mem[ZeroExtend(Zn[e]) + X[m]] = Zt[e] for active elements, in element order.</summary>
    private bool Sve2NonTemporalScatter(uint insn, bool wide)
    {
        int msz = (int)((insn >> 23) & 3), esz = wide ? 8 : 4, mbytes = 1 << msz;
        if (mbytes > esz) return false;
        var offsets = Z((int)((insn >> 5) & 31), _z2);
        var z = Z((int)(insn & 31), _z0);
        var p = P((int)((insn >> 10) & 7), _p0);
        ulong xm = cpu.Reg((int)((insn >> 16) & 31));
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(p, e, esz)) continue;
            ulong v = E(z, e, esz);
            for (int i = 0; i < mbytes; i++) _sveElem[i] = (byte)(v >> (8 * i));
            if (!MemoryAccess(E(offsets, e, esz) + xm, _sveElem.AsSpan(0, mbytes), true, default, isvValid: false, alignment: mbytes)) return true;
        }
        Next();
        return true;
    }
}
