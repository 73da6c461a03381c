// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE permutes and element moves (Arm ARM C4.1 SVE encodings, bits 31:24 = 0x05; C8.2 pseudocode): DUP, INDEX,
/// INSR, REV, ZIP/UZP/TRN, UNPK*, SEL, LASTA/LASTB, CLASTA/CLASTB, CPY.
/// </summary>
internal sealed partial class A64Interpreter
{
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
        // The 0x05 bit 21 = 1, bits 15:13 = 10x group: LASTA/B, CLASTA/B, CPY (scalar / SIMD&FP), REVB/H/W, RBIT.
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
    /// LASTA/LASTB (scalar, SIMD&amp;FP), CLASTA/CLASTB (scalar, SIMD&amp;FP, vectors), CPY (scalar, SIMD&amp;FP) and
    /// REVB/REVH/REVW/RBIT (C8.2): LASTB takes the last active element (the last element when none is active), LASTA the one after it
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
            case (2, 4): // REVB/REVH: 00000101 size 1001 0 H 100 Pg Zn Zd
            case (3, 4): // REVW/RBIT: 00000101 size 1001 1 R 100 Pg Zn Zd
            {
                // C8.2 REVB/REVH/REVW (a container narrower than the element: H, S, D and wider only; a smaller
                // size is unallocated) and RBIT (any size), merging: inactive elements keep Zd.
                int op = (int)(sel & 3), container = 1 << op;
                if (op < 3 && esz <= container) return false;
                var a = Z(zn, _z0);
                var d = Z(rd, _z1);
                for (int e = 0; e < n; e++)
                {
                    if (!Act(p, e, esz)) continue;
                    ulong x = E(a, e, esz);
                    SetE(d, e, esz, op == 3 ? ReverseBits(x, 8 * esz) : ReverseContainers(x, esz, container));
                }
                SetZ(rd, d);
                break;
            }
            case (4, 4): // CLASTA/CLASTB (vectors): 00000101 size 101000 B 100 Pg Zm Zdn
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

    /// <summary>The element's <paramref name="container"/>-byte pieces in reverse order (REVB 1, REVH 2, REVW 4).</summary>
    private static ulong ReverseContainers(ulong x, int esz, int container)
    {
        ulong r = 0, mask = container == 8 ? ulong.MaxValue : (1UL << (8 * container)) - 1;
        int pieces = esz / container;
        for (int i = 0; i < pieces; i++)
            r |= ((x >> (8 * container * i)) & mask) << (8 * container * (pieces - 1 - i));
        return r;
    }
}
