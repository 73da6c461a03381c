// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// FP/SIMD instruction encodings for the arm64 emulator tests, built from the Arm ARM (DDI 0487) C4.1 field layouts
/// (the conformance assembler has no FP/SIMD instructions). Register arguments are numbers: V registers for Vd/Vn/Vm/Vt,
/// X registers (31 = SP or XZR as the instruction defines) for Rn/Rm of addresses and general operands.
/// </summary>
internal static class A64SimdEncoder
{
    public const uint S = 0, D = 1, Q = 2; // LDP/STP opc; ftype S = 00, D = 01

    private static uint R(int n) => (uint)n & 31;

    /// <summary>LDP/STP/LDNP/STNP (SIMD&amp;FP): opc 101 1 0 mode L imm7 Rt2 Rn Rt; mode 00 LDNP/STNP, 01 post, 10 offset, 11 pre.</summary>
    public static uint Pair(bool load, uint opc, uint mode, int rt, int rt2, int rn, int offset) =>
        (opc << 30) | 0x2C00_0000 | (mode << 23) | (load ? 1u << 22 : 0) |
        (((uint)(offset / (4 << (int)opc)) & 0x7F) << 15) | (R(rt2) << 10) | (R(rn) << 5) | R(rt);

    /// <summary>
    /// LDR/STR (immediate, SIMD&amp;FP), unsigned offset: size 111 1 01 opc imm12 Rn Rt. scale 0..4 = B, H, S, D, Q
    /// (Q is size 00 with opc 1x).
    /// </summary>
    public static uint LdrStrUnsigned(bool load, int scale, int rt, int rn, int offset) =>
        SizeOpc(load, scale) | 0x3D00_0000 | ((uint)(offset >> scale) << 10) | (R(rn) << 5) | R(rt);

    /// <summary>LDUR/STUR (SIMD&amp;FP, idx 00), post-index (01) or pre-index (11): size 111 1 00 opc 0 imm9 idx Rn Rt.</summary>
    public static uint LdrStrImm9(bool load, int scale, uint idx, int rt, int rn, int offset) =>
        SizeOpc(load, scale) | 0x3C00_0000 | (((uint)offset & 0x1FF) << 12) | (idx << 10) | (R(rn) << 5) | R(rt);

    /// <summary>LDR/STR (register, SIMD&amp;FP): size 111 1 00 opc 1 Rm option S 10 Rn Rt (option 011 = LSL).</summary>
    public static uint LdrStrRegister(bool load, int scale, int rt, int rn, int rm, bool shift) =>
        SizeOpc(load, scale) | 0x3C20_0800 | (R(rm) << 16) | (3u << 13) | (shift ? 1u << 12 : 0) | (R(rn) << 5) | R(rt);

    /// <summary>LDR (literal, SIMD&amp;FP): opc 011 1 00 imm19 Rt (opc 00 S, 01 D, 10 Q); offset from this instruction.</summary>
    public static uint LdrLiteral(uint opc, int rt, int offset) => (opc << 30) | 0x1C00_0000 | (((uint)(offset / 4) & 0x7FFFF) << 5) | R(rt);

    private static uint SizeOpc(bool load, int scale) =>
        scale == 4 ? (load ? 3u : 2u) << 22 : ((uint)scale << 30) | (load ? 1u << 22 : 0);

    /// <summary>
    /// LD1/ST1 (multiple structures), 1–4 consecutive registers: 0 Q 0011000 L 000000 opcode size Rn Rt (opcode 0111,
    /// 1010, 0110, 0010); with <paramref name="postIndexImmediate"/> 0 Q 0011001 L 0 11111 … (Rn += the transfer size).
    /// </summary>
    public static uint Ld1St1(bool load, bool q, int registers, uint size, int rt, int rn, bool postIndexImmediate)
    {
        uint opcode = registers switch { 1 => 7u, 2 => 10u, 3 => 6u, _ => 2u };
        return (q ? 1u << 30 : 0) | (postIndexImmediate ? 0x0C80_0000u | (31u << 16) : 0x0C00_0000u) | (load ? 1u << 22 : 0) |
               (opcode << 12) | (size << 10) | (R(rn) << 5) | R(rt);
    }

    /// <summary>Advanced SIMD modified immediate: 0 Q op 0111100000 a b c cmode o2(0) 1 d e f g h Rd.</summary>
    public static uint ModifiedImmediate(bool q, bool op, uint cmode, uint imm8, int rd) =>
        (q ? 1u << 30 : 0) | (op ? 1u << 29 : 0) | 0x0F00_0400 | ((imm8 >> 5) << 16) | (cmode << 12) | ((imm8 & 31) << 5) | R(rd);

    /// <summary>Advanced SIMD three same: 0 Q U 01110 size 1 Rm opcode 1 Rn Rd.</summary>
    public static uint ThreeSame(bool q, bool u, uint size, uint opcode, int rd, int rn, int rm) =>
        (q ? 1u << 30 : 0) | (u ? 1u << 29 : 0) | 0x0E20_0400 | (size << 22) | (R(rm) << 16) | (opcode << 11) | (R(rn) << 5) | R(rd);

    /// <summary>Advanced SIMD two-register miscellaneous: 0 Q U 01110 size 10000 opcode 10 Rn Rd.</summary>
    public static uint TwoRegisterMisc(bool q, bool u, uint size, uint opcode, int rd, int rn) =>
        (q ? 1u << 30 : 0) | (u ? 1u << 29 : 0) | 0x0E20_0800 | (size << 22) | (opcode << 12) | (R(rn) << 5) | R(rd);

    /// <summary>Advanced SIMD across lanes: 0 Q U 01110 size 11000 opcode 10 Rn Rd (11011 ADDV, 00011 xADDLV, 01010 xMAXV, 11010 xMINV).</summary>
    public static uint AcrossLanes(bool q, bool u, uint size, uint opcode, int rd, int rn) =>
        (q ? 1u << 30 : 0) | (u ? 1u << 29 : 0) | 0x0E30_0800 | (size << 22) | (opcode << 12) | (R(rn) << 5) | R(rd);

    /// <summary>Advanced SIMD copy: 0 Q op 01110000 imm5 0 imm4 1 Rn Rd.</summary>
    public static uint Copy(bool q, bool op, uint imm5, uint imm4, int rd, int rn) =>
        (q ? 1u << 30 : 0) | (op ? 1u << 29 : 0) | 0x0E00_0400 | (imm5 << 16) | (imm4 << 11) | (R(rn) << 5) | R(rd);

    /// <summary>EXT: 0 Q 101110 00 0 Rm 0 imm4 0 Rn Rd.</summary>
    public static uint Ext(bool q, int rd, int rn, int rm, uint imm4) =>
        (q ? 1u << 30 : 0) | 0x2E00_0000 | (R(rm) << 16) | (imm4 << 11) | (R(rn) << 5) | R(rd);

    /// <summary>Advanced SIMD permute: 0 Q 001110 size 0 Rm 0 opcode 10 Rn Rd (001 UZP1, 010 TRN1, 011 ZIP1, 1xx the second halves).</summary>
    public static uint Permute(bool q, uint size, uint opcode, int rd, int rn, int rm) =>
        (q ? 1u << 30 : 0) | 0x0E00_0800 | (size << 22) | (R(rm) << 16) | (opcode << 12) | (R(rn) << 5) | R(rd);

    /// <summary>FP data-processing (2 source): 000 11110 ftype 1 Rm opcode 10 Rn Rd (0000 FMUL, 0001 FDIV, 0010 FADD, 0011 FSUB, 0110 FMAXNM, 1000 FNMUL).</summary>
    public static uint Fp2(uint ftype, uint opcode, int rd, int rn, int rm) =>
        0x1E20_0800 | (ftype << 22) | (R(rm) << 16) | (opcode << 12) | (R(rn) << 5) | R(rd);

    /// <summary>FP data-processing (1 source): 000 11110 ftype 1 opcode(6) 10000 Rn Rd (0 FMOV, 1 FABS, 2 FNEG, 3 FSQRT, 4 FCVT to S, 5 FCVT to D, 8..15 FRINTN/P/M/Z/A/-/X/I).</summary>
    public static uint Fp1(uint ftype, uint opcode, int rd, int rn) => 0x1E20_4000 | (ftype << 22) | (opcode << 15) | (R(rn) << 5) | R(rd);

    /// <summary>FP data-processing (3 source): 000 11111 ftype o1 Rm o0 Ra Rn Rd (00 FMADD, 01 FMSUB, 10 FNMADD, 11 FNMSUB).</summary>
    public static uint Fp3(uint ftype, bool o1, bool o0, int rd, int rn, int rm, int ra) =>
        0x1F00_0000 | (ftype << 22) | (o1 ? 1u << 21 : 0) | (R(rm) << 16) | (o0 ? 1u << 15 : 0) | (R(ra) << 10) | (R(rn) << 5) | R(rd);

    /// <summary>FCMP (opcode2 00000), FCMP #0.0 (01000), FCMPE (10000): 000 11110 ftype 1 Rm 00 1000 Rn opcode2.</summary>
    public static uint Fcmp(uint ftype, int rn, int rm, bool signaling = false, bool zero = false) =>
        0x1E20_2000 | (ftype << 22) | (R(rm) << 16) | (R(rn) << 5) | (signaling ? 16u : 0) | (zero ? 8u : 0);

    /// <summary>FCSEL: 000 11110 ftype 1 Rm cond 11 Rn Rd.</summary>
    public static uint Fcsel(uint ftype, int rd, int rn, int rm, uint cond) =>
        0x1E20_0C00 | (ftype << 22) | (R(rm) << 16) | (cond << 12) | (R(rn) << 5) | R(rd);

    /// <summary>FMOV (scalar, immediate): 000 11110 ftype 1 imm8 100 00000 Rd.</summary>
    public static uint FmovImm(uint ftype, int rd, uint imm8) => 0x1E20_1000 | (ftype << 22) | (imm8 << 13) | R(rd);

    /// <summary>
    /// Conversion between FP and integer: sf 0 0 11110 ftype 1 rmode opcode 000000 Rn Rd (rmode 11 opcode 000
    /// FCVTZS, 001 FCVTZU; rmode 00 opcode 010 SCVTF, 011 UCVTF, 110 FMOV to general, 111 FMOV from general).
    /// </summary>
    public static uint FpInt(bool sf, uint ftype, uint rmode, uint opcode, int rd, int rn) =>
        (sf ? 1u << 31 : 0) | 0x1E20_0000 | (ftype << 22) | (rmode << 19) | (opcode << 16) | (R(rn) << 5) | R(rd);

    /// <summary>Advanced SIMD three same, FP opcodes 11xxx: 0 Q U 01110 a sz 1 Rm opcode 1 Rn Rd (sz 1: .2d).</summary>
    public static uint VecFp3(bool q, bool u, bool a, bool dbl, uint opcode, int rd, int rn, int rm) =>
        ThreeSame(q, u, (a ? 2u : 0) | (dbl ? 1u : 0), opcode, rd, rn, rm);

    /// <summary>Advanced SIMD two-register miscellaneous, FP forms: 0 Q U 01110 a sz 10000 opcode 10 Rn Rd.</summary>
    public static uint VecFp2(bool q, bool u, bool a, bool dbl, uint opcode, int rd, int rn) =>
        TwoRegisterMisc(q, u, (a ? 2u : 0) | (dbl ? 1u : 0), opcode, rd, rn);

    /// <summary>Advanced SIMD shift by immediate: 0 Q U 011110 immh:immb(7) opcode 1 Rn Rd.</summary>
    public static uint ShiftImm(bool q, bool u, uint immhb, uint opcode, int rd, int rn) =>
        (q ? 1u << 30 : 0) | (u ? 1u << 29 : 0) | 0x0F00_0400 | (immhb << 16) | (opcode << 11) | (R(rn) << 5) | R(rd);

    /// <summary>Advanced SIMD three different: 0 Q U 01110 size 1 Rm opcode 00 Rn Rd.</summary>
    public static uint ThreeDifferent(bool q, bool u, uint size, uint opcode, int rd, int rn, int rm) =>
        (q ? 1u << 30 : 0) | (u ? 1u << 29 : 0) | 0x0E20_0000 | (size << 22) | (R(rm) << 16) | (opcode << 12) | (R(rn) << 5) | R(rd);

    /// <summary>Advanced SIMD scalar pairwise: 01 U 11110 size 11000 opcode 10 Rn Rd (U 1 size 00 01101: FADDP Sd, Vn.2S).</summary>
    public static uint ScalarPairwise(bool u, uint size, uint opcode, int rd, int rn) =>
        0x5E30_0800 | (u ? 1u << 29 : 0) | (size << 22) | (opcode << 12) | (R(rn) << 5) | R(rd);

    /// <summary>
    /// LD1–LD4/ST1–ST4 (multiple structures), any opcode: 0 Q 0011000 L 000000 opcode size Rn Rt (0000 LD4/ST4, 0100
    /// LD3/ST3, 1000 LD2/ST2); post-index 0 Q 0011001 L 0 Rm … (Rm 31: by the transfer size).
    /// </summary>
    public static uint LdStMultiple(bool load, bool q, uint opcode, uint size, int rt, int rn, int? postRm = null) =>
        (q ? 1u << 30 : 0) | (postRm is int rm ? 0x0C80_0000u | (R(rm) << 16) : 0x0C00_0000u) | (load ? 1u << 22 : 0) |
        (opcode << 12) | (size << 10) | (R(rn) << 5) | R(rt);

    /// <summary>
    /// LD1–LD4/ST1–ST4 (single structure) and LD1R–LD4R: 0 Q 0011010 L R 00000 opcode S size Rn Rt; post-index
    /// 0 Q 0011011 L R Rm …. opcode 000 B, 010 H, 100 S/D, 110 replicate (opcode&lt;0&gt;:R + 1 registers).
    /// </summary>
    public static uint LdStSingle(bool load, bool q, bool r, uint opcode, bool s, uint size, int rt, int rn, int? postRm = null) =>
        (q ? 1u << 30 : 0) | (postRm is int rm ? 0x0D80_0000u | (R(rm) << 16) : 0x0D00_0000u) | (load ? 1u << 22 : 0) | (r ? 1u << 21 : 0) |
        (opcode << 13) | (s ? 1u << 12 : 0) | (size << 10) | (R(rn) << 5) | R(rt);

    /// <summary>Conversion between FP and fixed-point: sf 0 0 11110 ftype 0 rmode opcode scale Rn Rd (fbits = 64 − scale).</summary>
    public static uint FpFixed(bool sf, uint ftype, uint rmode, uint opcode, int fbits, int rd, int rn) =>
        (sf ? 1u << 31 : 0) | 0x1E00_0000 | (ftype << 22) | (rmode << 19) | (opcode << 16) | ((uint)(64 - fbits) << 10) | (R(rn) << 5) | R(rd);

    /// <summary>
    /// Advanced SIMD (scalar) x indexed element: 0 Q U 01111 size L M Rm opcode H 0 Rn Rd, scalar 01 U 11111 …; the
    /// index goes to H:L:M (size 01, Rm &lt; 16), H:L (size 10) or H (size 11).
    /// </summary>
    public static uint ByElement(bool scalar, bool q, bool u, uint size, uint opcode, int index, int rd, int rn, int rm)
    {
        uint i = (uint)index, h, l, m;
        if (size == 1) (h, l, m) = (i >> 2, (i >> 1) & 1, i & 1);
        else if (size == 2) (h, l, m) = (i >> 1, i & 1, (uint)rm >> 4);
        else (h, l, m) = (i, 0, (uint)rm >> 4);
        return (scalar ? 0x5F00_0000u : 0x0F00_0000u | (q ? 1u << 30 : 0)) | (u ? 1u << 29 : 0) | (size << 22) | (l << 21) | (m << 20) |
               (((uint)rm & 15) << 16) | (opcode << 12) | (h << 11) | (R(rn) << 5) | R(rd);
    }

    /// <summary>Advanced SIMD scalar three same: 01 U 11110 size 1 Rm opcode 1 Rn Rd (FP: size = a:sz).</summary>
    public static uint ScalarThreeSame(bool u, uint size, uint opcode, int rd, int rn, int rm) =>
        0x5E20_0400 | (u ? 1u << 29 : 0) | (size << 22) | (R(rm) << 16) | (opcode << 11) | (R(rn) << 5) | R(rd);

    /// <summary>Advanced SIMD scalar two-register miscellaneous: 01 U 11110 size 10000 opcode 10 Rn Rd (FP: size = a:sz).</summary>
    public static uint ScalarTwoRegisterMisc(bool u, uint size, uint opcode, int rd, int rn) =>
        0x5E20_0800 | (u ? 1u << 29 : 0) | (size << 22) | (opcode << 12) | (R(rn) << 5) | R(rd);

    /// <summary>Advanced SIMD scalar shift by immediate: 01 U 111110 immh:immb(7) opcode 1 Rn Rd.</summary>
    public static uint ScalarShiftImm(bool u, uint immhb, uint opcode, int rd, int rn) =>
        0x5F00_0400 | (u ? 1u << 29 : 0) | (immhb << 16) | (opcode << 11) | (R(rn) << 5) | R(rd);

    /// <summary>TBL (tbx false) / TBX: 0 Q 001110 000 Rm 0 len op 00 Rn Rd, table Vn…Vn+registers−1.</summary>
    public static uint Tbl(bool q, bool tbx, int registers, int rd, int rn, int rm) =>
        (q ? 1u << 30 : 0) | 0x0E00_0000 | (R(rm) << 16) | ((uint)(registers - 1) << 13) | (tbx ? 1u << 12 : 0) | (R(rn) << 5) | R(rd);

    public static ulong Cpacr => KvmArm64SysRegs.Encoding(3, 0, 1, 0, 2);

    public static ulong FpcrReg => KvmArm64SysRegs.Encoding(3, 3, 4, 4, 0);

    public static ulong FpsrReg => KvmArm64SysRegs.Encoding(3, 3, 4, 4, 1);

    public static ulong Nzcv => KvmArm64SysRegs.Encoding(3, 3, 4, 2, 0);

    /// <summary>CPACR_EL1.FPEN (bits 21:20) = <paramref name="fpen"/> (uses x0, x1).</summary>
    public static void SetFpen(A64Assembler a, uint fpen)
    {
        a.Mrs(X(0), Cpacr);
        a.MovImm(X(1), ~(3UL << 20));
        a.And(X(0), X(0), X(1));
        a.MovImm(X(1), (ulong)fpen << 20);
        a.Orr(X(0), X(0), X(1));
        a.Msr(Cpacr, X(0));
    }
}
