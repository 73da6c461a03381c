// SPDX-License-Identifier: MIT
using KvmSharp.Arm64;
using static KvmSharp.Emulation.Tests.Arm64SveBf16Tests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The base AdvSIMD saturating integer instructions (A64Interpreter.SimdSaturating.cs, .SimdSaturatingShift.cs, and
/// the vector SQXTN/UQXTN/SQXTUN of .SimdInteger.cs) against qemu-aarch64 -cpu max with <see cref="Arm64SveBf16Tests"/>'s
/// guest program and data windows (V0–V2 hold the low 128 bits of the loaded Z0–Z2, whose bytes are random or the
/// edges 0x00, 0x7f, 0x80, 0xff, 0x01, 0xfe, 0x81, 0x7e; every case stores FPSR, so FPSR.QC is compared), at 128- and
/// 512-bit vectors; gcc -O3 loops of arm_neon.h saturating intrinsics (checked to contain the instructions); and the
/// decode gate (unallocated sizes UNDEFINED before the CPACR_EL1.FPEN trap).
/// </summary>
public class Arm64SimdSaturatingTests
{
    private static readonly string[] Arrangements = ["16b", "8b", "8h", "4h", "4s", "2s", "2d"];

    /// <summary>The vector arrangement of <paramref name="esize"/>-bit lanes filling 128 bits.</summary>
    private static string Full(int esize) => esize switch { 8 => "16b", 16 => "8h", 32 => "4s", _ => "2d" };

    private static string Scalar(int esize) => esize switch { 8 => "b", 16 => "h", 32 => "s", _ => "d" };

    /// <summary>Every lane of V2 = <paramref name="count"/> (as the shift count of a by-register shift: its low byte).</summary>
    private static string Count(int esize, long count) =>
        $"mov x11, #{count}\ndup v2.{Full(esize)}, {(esize == 64 ? "x" : "w")}11\n";

    /// <summary>V<paramref name="r"/> = <paramref name="hi"/>:<paramref name="lo"/>, built with MOVZ/MOVK into X11.</summary>
    private static string Set(int r, ulong lo, ulong hi)
    {
        static string X11(ulong v) =>
            $"mov x11, #0x{v & 0xFFFF:x}\nmovk x11, #0x{(v >> 16) & 0xFFFF:x}, lsl #16\n" +
            $"movk x11, #0x{(v >> 32) & 0xFFFF:x}, lsl #32\nmovk x11, #0x{v >> 48:x}, lsl #48\n";
        return X11(lo) + $"mov v{r}.d[0], x11\n" + X11(hi) + $"mov v{r}.d[1], x11\n";
    }

    /// <summary>V<paramref name="r"/> (V15 or V17: Rm with the high index or M bit) = V2 around <paramref name="insn"/>, saved and restored.</summary>
    private static string WithV(int r, string insn) => $"str q{r}, [sp, #-16]!\nmov v{r}.16b, v2.16b\n{insn}\nldr q{r}, [sp], #16";

    /// <summary>All H lanes of V1 and V2 = 0x8000: −2^15 squared and doubled, the one product that overflows.</summary>
    private const string MinH = "movi v1.8h, #0x80, lsl #8\nmovi v2.8h, #0x80, lsl #8\n";

    /// <summary>All S lanes of V1 and V2 = 0x80000000.</summary>
    private const string MinS = "movi v1.4s, #0x80, lsl #24\nmovi v2.4s, #0x80, lsl #24\n";

    /// <summary>
    /// H lanes around the 8-bit ranges: 127, 128, −128, −129, 255, 256, 32767, −32768; S lanes around the 16-bit ones:
    /// 32767, 32768, −32768, −32769 and 65535, 65536, 2^31 − 1, −2^31; D lanes around the 32-bit ones.
    /// </summary>
    private static readonly string[] Bounds =
    [
        Set(1, 0xFF7F_FF80_0080_007F, 0x8000_7FFF_0100_00FF),
        Set(1, 0x0000_8000_0000_7FFF, 0xFFFF_7FFF_FFFF_8000),
        Set(1, 0x0001_0000_0000_FFFF, 0x8000_0000_7FFF_FFFF),
        Set(1, 0x0000_0000_7FFF_FFFF, 0x0000_0000_8000_0000),
        Set(1, 0xFFFF_FFFF_8000_0000, 0xFFFF_FFFF_7FFF_FFFF),
        Set(1, 0x0000_0000_FFFF_FFFF, 0x0000_0001_0000_0000),
        Set(1, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000),
    ];

    private static readonly string[] ShiftOps = ["sqshl", "uqshl", "sqrshl", "uqrshl", "srshl", "urshl"];

    private static readonly string[] ThreeSameCases =
    [
        // The data's low bytes as shift counts (random and the edge bytes: ±1, ±2, 127, −128, −127, 126).
        .. from op in ShiftOps from t in Arrangements select Fp($"{op} v0.{t}, v1.{t}, v2.{t}"),
        .. from op in ShiftOps.Take(4) from s in new[] { "b", "h", "s", "d" } select Fp($"{op} {s}0, {s}1, {s}2"),
        Fp("srshl d0, d1, d2"),
        Fp("urshl d0, d1, d2"),
        // Shift counts at and beyond ±esize, and the extremes 127 and −128, on the data.
        .. from op in ShiftOps
           from esize in new[] { 8, 16, 32, 64 }
           from count in new long[] { esize - 1, esize, esize + 1, -(esize - 1), -esize, -(esize + 1), 127, -128 }
           select Fp(Count(esize, count) + $"{op} v0.{Full(esize)}, v1.{Full(esize)}, v2.{Full(esize)}"),
        // Only the low byte counts: 0x0101 (1), 0x7fff (−1), 0x0180 (−128) in H lanes; 0x100000001 (1) in D lanes.
        Fp("mov x11, #0x0101\ndup v2.8h, w11\nsqshl v0.8h, v1.8h, v2.8h"),
        Fp("mov x11, #0x7fff\ndup v2.8h, w11\nsqrshl v0.8h, v1.8h, v2.8h"),
        Fp("mov x11, #0x0180\ndup v2.8h, w11\nuqrshl v0.8h, v1.8h, v2.8h"),
        Fp("mov x11, #0x100000001\ndup v2.2d, x11\nuqshl v0.2d, v1.2d, v2.2d"),
        Fp(Count(64, 63) + "sqshl d0, d1, d2"),
        Fp(Count(64, 64) + "uqshl d0, d1, d2"),
        Fp(Count(64, -64) + "sqrshl d0, d1, d2"),
        Fp(Count(64, -65) + "uqrshl d0, d1, d2"),
        Fp(Count(64, -64) + "srshl d0, d1, d2"),
        Fp(Count(64, -1) + "urshl d0, d1, d2"),
        Fp(Count(8, 8) + "sqshl b0, b1, b2"),
        Fp(Count(16, -16) + "uqrshl h0, h1, h2"),
        // SQDMULH / SQRDMULH.
        .. from op in new[] { "sqdmulh", "sqrdmulh" } from t in new[] { "8h", "4h", "4s", "2s" } select Fp($"{op} v0.{t}, v1.{t}, v2.{t}"),
        .. from op in new[] { "sqdmulh", "sqrdmulh" } from s in new[] { "h", "s" } select Fp($"{op} {s}0, {s}1, {s}2"),
        Fp(MinH + "sqdmulh v0.8h, v1.8h, v2.8h"),
        Fp(MinH + "sqrdmulh v0.4h, v1.4h, v2.4h"),
        Fp(MinS + "sqdmulh v0.4s, v1.4s, v2.4s"),
        Fp(MinS + "sqrdmulh s0, s1, s2"),
        Fp(MinH + "sqdmulh h0, h1, h2"),
        // 0x8000 × 0x7fff: the largest product that does not saturate.
        Fp("movi v1.8h, #0x80, lsl #8\nmvni v2.8h, #0x80, lsl #8\nsqrdmulh v0.8h, v1.8h, v2.8h"),
    ];

    private static readonly string[] MiscCases =
    [
        .. from op in new[] { "suqadd", "usqadd", "sqabs", "sqneg" } from t in Arrangements select Fp($"{op} v0.{t}, v1.{t}"),
        .. from op in new[] { "suqadd", "usqadd", "sqabs", "sqneg" } from s in new[] { "b", "h", "s", "d" } select Fp($"{op} {s}0, {s}1"),
        // −2^(esize−1): SQABS and SQNEG saturate.
        Fp("movi v1.16b, #0x80\nsqabs v0.16b, v1.16b"),
        Fp("movi v1.8h, #0x80, lsl #8\nsqneg v0.8h, v1.8h"),
        Fp(MinS + "sqabs s0, s1"),
        Fp("movi d1, #0xff00000000000000\nshl d1, d1, #7\nsqneg d0, d1"),
        Fp("movi d1, #0xff00000000000000\nshl d1, d1, #7\nsqabs v0.2d, v1.2d"),
        // SUQADD: 0x7f + 0x01 saturates, −1 + 0xff does not; USQADD: 0xff + 1 and 0 + −1 saturate.
        Fp("movi v0.16b, #0x7f\nmovi v1.16b, #0x01\nsuqadd v0.16b, v1.16b"),
        Fp("movi v0.16b, #0xff\nmovi v1.16b, #0xff\nsuqadd v0.16b, v1.16b"),
        Fp("movi v0.16b, #0xff\nmovi v1.16b, #0x01\nusqadd v0.16b, v1.16b"),
        Fp("movi v0.2d, #0\nmovi v1.2d, #0xffffffffffffffff\nusqadd v0.2d, v1.2d"),
        Fp("movi v0.2d, #0xffffffffffffffff\nmovi v1.2d, #0xffffffffffffffff\nsuqadd d0, d1"),
        // Narrowing (two-register miscellaneous): vector, "2" (the low half of V0 kept) and scalar, on the data and on
        // lanes just inside and just outside the ranges.
        .. from op in new[] { "sqxtn", "uqxtn", "sqxtun" }
           from f in new[] { ("8b", "16b", "8h"), ("4h", "8h", "4s"), ("2s", "4s", "2d") }
           from two in new[] { "", "2" }
           select Fp($"{op}{two} v0.{(two == "" ? f.Item1 : f.Item2)}, v1.{f.Item3}"),
        .. from op in new[] { "sqxtn", "uqxtn", "sqxtun" } from f in new[] { "b0, h1", "h0, s1", "s0, d1" } select Fp($"{op} {f}"),
        .. from b in Bounds from op in new[] { "sqxtn", "uqxtn", "sqxtun" }
           from f in new[] { "v0.8b, v1.8h", "v0.4h, v1.4s", "v0.2s, v1.2d" }
           select Fp(b + $"{op} {f}"),
        .. from b in Bounds.Take(2) from op in new[] { "sqxtn2", "uqxtn2", "sqxtun2" } select Fp(b + $"{op} v0.16b, v1.8h"),
        .. from b in Bounds.Skip(3).Take(3) from op in new[] { "sqxtn", "uqxtn", "sqxtun" } select Fp(b + $"{op} s0, d1\n" + $"{op} h3, s1\nstr q3, [x13, #16]"),
        Fp(Bounds[0] + "sqxtn b0, h1"),
        Fp(Bounds[1] + "sqxtun h0, s1"),
        Fp(Bounds[0] + "ext v1.16b, v1.16b, v1.16b, #2\nsqxtn b0, h1"),
        Fp(Bounds[0] + "ext v1.16b, v1.16b, v1.16b, #6\nsqxtun b0, h1"),
        Fp(Bounds[0] + "ext v1.16b, v1.16b, v1.16b, #10\nuqxtn b0, h1"),
    ];

    private static readonly string[] ShiftCases =
    [
        // SQSHL / UQSHL / SQSHLU (immediate): shifts 0, 1, esize/2, esize − 1.
        .. from op in new[] { "sqshl", "uqshl", "sqshlu" }
           from t in Arrangements
           let esize = t.EndsWith('b') ? 8 : t.EndsWith('h') ? 16 : t.EndsWith('s') ? 32 : 64
           from n in new[] { 0, 1, esize / 2, esize - 1 }
           select Fp($"{op} v0.{t}, v1.{t}, #{n}"),
        .. from op in new[] { "sqshl", "uqshl", "sqshlu" }
           from esize in new[] { 8, 16, 32, 64 }
           from n in new[] { 0, 3, esize - 1 }
           select Fp($"{op} {Scalar(esize)}0, {Scalar(esize)}1, #{n}"),
        // Narrowing shifts: 1, esize/2 and esize, vector, "2" and scalar.
        .. from op in new[] { "sqshrn", "sqrshrn", "uqshrn", "uqrshrn", "sqshrun", "sqrshrun" }
           from esize in new[] { 8, 16, 32 }
           from n in new[] { 1, esize / 2, esize }
           select Fp($"{op} v0.{(esize == 8 ? "8b" : esize == 16 ? "4h" : "2s")}, v1.{Full(2 * esize)}, #{n}"),
        .. from op in new[] { "sqshrn2", "sqrshrn2", "uqshrn2", "uqrshrn2", "sqshrun2", "sqrshrun2" }
           from esize in new[] { 8, 16, 32 }
           select Fp($"{op} v0.{Full(esize)}, v1.{Full(2 * esize)}, #{esize / 2 + 1}"),
        .. from op in new[] { "sqshrn", "sqrshrn", "uqshrn", "uqrshrn", "sqshrun", "sqrshrun" }
           from esize in new[] { 8, 16, 32 }
           from n in new[] { 1, esize }
           select Fp($"{op} {Scalar(esize)}0, {Scalar(2 * esize)}1, #{n}"),
        // Just in and out of range after the shift (and its rounding): the boundary lanes shifted by 1.
        .. from b in Bounds
           from op in new[] { "sqshrn", "sqrshrn", "uqshrn", "uqrshrn", "sqshrun", "sqrshrun" }
           from f in new[] { "v0.8b, v1.8h", "v0.4h, v1.4s", "v0.2s, v1.2d" }
           select Fp(b + $"{op} {f}, #1"),
        .. from b in Bounds.Take(3) from op in new[] { "sqshl", "uqshl", "sqshlu" } select Fp(b + $"{op} v0.8h, v1.8h, #1\n{op} v3.4s, v1.4s, #1\nstr q3, [x13, #16]"),
        Fp(Bounds[6] + "sqshl v0.2d, v1.2d, #1"),
        Fp(Bounds[6] + "sqshlu d0, d1, #0"),
        Fp(Bounds[3] + "uqshl d0, d1, #32"),
        // The non-saturating scalar shifts on Dd (A64Interpreter.SimdInteger.cs), at their extreme shift amounts.
        .. from op in new[] { "sshr", "ushr", "ssra", "usra", "srshr", "urshr", "srsra", "ursra", "sri" }
           from n in new[] { 1, 63, 64 }
           select $"{op} d0, d1, #{n}",
        .. from op in new[] { "shl", "sli" } from n in new[] { 0, 1, 63 } select $"{op} d0, d1, #{n}",
    ];

    /// <summary>
    /// <see cref="Fp"/> for SQDMULL/SQDMLAL/SQDMLSL, followed by MOV V0.16B, V0.16B: qemu-aarch64 7.2 leaves the bits of
    /// Z0 above 128 unchanged after these (three different, every size; by element, H sources — a hosted check with
    /// Z0 all ones, sve512), where the Arm ARM V[] assignment zeroes them up to the vector length (as the emulator does,
    /// A64Interpreter.Simd.cs SetV); the MOV zeroes them on both.
    /// </summary>
    private static string LongFp(string insn) => Fp(insn + "\nmov v0.16b, v0.16b");

    private static readonly string[] MulCases =
    [
        // Three different: SQDMULL / SQDMLAL / SQDMLSL and the "2" forms, scalar forms.
        .. from op in new[] { "sqdmull", "sqdmlal", "sqdmlsl" }
           from f in new[] { "v0.4s, v1.4h, v2.4h", "v0.2d, v1.2s, v2.2s" }
           select LongFp($"{op} {f}"),
        .. from op in new[] { "sqdmull2", "sqdmlal2", "sqdmlsl2" }
           from f in new[] { "v0.4s, v1.8h, v2.8h", "v0.2d, v1.4s, v2.4s" }
           select LongFp($"{op} {f}"),
        .. from op in new[] { "sqdmull", "sqdmlal", "sqdmlsl" } from f in new[] { "s0, h1, h2", "d0, s1, s2" } select LongFp($"{op} {f}"),
        LongFp(MinH + "sqdmull v0.4s, v1.4h, v2.4h"),
        LongFp(MinS + "sqdmull2 v0.2d, v1.4s, v2.4s"),
        LongFp(MinH + "sqdmull s0, h1, h2"),
        // The product saturates, the accumulation brings it back in range (QC still set): −1 + 0x7fffffff.
        LongFp("movi v0.2d, #0xffffffffffffffff\n" + MinH + "sqdmlal v0.4s, v1.4h, v2.4h"),
        LongFp("movi v0.2d, #0xffffffffffffffff\n" + MinS + "sqdmlal2 v0.2d, v1.4s, v2.4s"),
        LongFp("movi v0.2d, #0\n" + MinS + "sqdmlsl d0, s1, s2"),
        // The accumulation overflows: 0x7fffffff + 2 × 0x4000 × 0x4000; 0x80000000 − that.
        LongFp("mvni v0.4s, #0x80, lsl #24\nmovi v1.8h, #0x40, lsl #8\nmovi v2.8h, #0x40, lsl #8\nsqdmlal v0.4s, v1.4h, v2.4h"),
        LongFp("movi v0.4s, #0x80, lsl #24\nmovi v1.8h, #0x40, lsl #8\nmovi v2.8h, #0x40, lsl #8\nsqdmlsl2 v0.4s, v1.8h, v2.8h"),
        LongFp("movi v0.4s, #0x80, lsl #24\nmovi v1.8h, #0x40, lsl #8\nmovi v2.8h, #0x40, lsl #8\nsqdmlsl s0, h1, h2"),
        // By element.
        Fp("sqdmulh v0.8h, v1.8h, v2.h[7]"),
        Fp("sqdmulh v0.4h, v1.4h, v2.h[0]"),
        Fp("sqrdmulh v0.4s, v1.4s, v2.s[3]"),
        Fp("sqrdmulh v0.2s, v1.2s, v2.s[1]"),
        Fp(WithV(15, "sqdmulh v0.8h, v1.8h, v15.h[5]")),
        Fp(WithV(17, "sqrdmulh v0.4s, v1.4s, v17.s[2]")),
        Fp("sqdmulh h0, h1, v2.h[3]"),
        Fp("sqrdmulh h0, h1, v2.h[6]"),
        Fp("sqdmulh s0, s1, v2.s[2]"),
        Fp(WithV(17, "sqrdmulh s0, s1, v17.s[1]")),
        Fp(MinH + "sqdmulh v0.8h, v1.8h, v2.h[2]"),
        Fp(MinS + "sqrdmulh v0.4s, v1.4s, v2.s[0]"),
        Fp(MinS + "sqdmulh s0, s1, v2.s[3]"),
        .. from op in new[] { "sqdmull", "sqdmlal", "sqdmlsl" }
           from f in new[] { "v0.4s, v1.4h, v2.h[5]", "v0.2d, v1.2s, v2.s[3]" }
           select LongFp($"{op} {f}"),
        .. from op in new[] { "sqdmull2", "sqdmlal2", "sqdmlsl2" }
           from f in new[] { "v0.4s, v1.8h, v2.h[1]", "v0.2d, v1.4s, v2.s[2]" }
           select LongFp($"{op} {f}"),
        LongFp(WithV(15, "sqdmlal v0.4s, v1.4h, v15.h[7]")),
        LongFp(WithV(17, "sqdmlsl2 v0.2d, v1.4s, v17.s[1]")),
        .. from op in new[] { "sqdmull", "sqdmlal", "sqdmlsl" } from f in new[] { "s0, h1, v2.h[4]", "d0, s1, v2.s[1]" } select LongFp($"{op} {f}"),
        LongFp(MinH + "sqdmull2 v0.4s, v1.8h, v2.h[6]"),
        LongFp("movi v0.2d, #0xffffffffffffffff\n" + MinS + "sqdmlal d0, s1, v2.s[2]"),
        LongFp("mvni v0.4s, #0x80, lsl #24\nmovi v1.8h, #0x40, lsl #8\nmovi v2.8h, #0x40, lsl #8\nsqdmlal v0.4s, v1.4h, v2.h[3]"),
    ];

    /// <summary>
    /// gcc -O3 loops of arm_neon.h saturating intrinsics (gcc 12 does not turn plain clamping loops into SQXTN: it
    /// emits SMIN/SMAX + XTN) over the shared int16/int32 arrays: clamps to int16, uint8 and uint16, a Q15 multiply,
    /// a Q15 multiply-accumulate into Q31 and a Q31 requantisation to Q12; each digest includes FPSR.
    /// </summary>
    private const string SatLoops = """
        __attribute__((noinline)) static void clamp_s16(int16_t *restrict d, const int32_t *a, int n)
        { for (int i = 0; i + 8 <= n; i += 8) vst1q_s16(d + i, vqmovn_high_s32(vqmovn_s32(vld1q_s32(a + i)), vld1q_s32(a + i + 4))); }
        __attribute__((noinline)) static void clamp_u8(uint8_t *restrict d, const int16_t *a, int n)
        { for (int i = 0; i + 16 <= n; i += 16) vst1q_u8(d + i, vqmovun_high_s16(vqmovun_s16(vld1q_s16(a + i)), vld1q_s16(a + i + 8))); }
        __attribute__((noinline)) static void clamp_u16(uint16_t *restrict d, const uint32_t *a, int n)
        { for (int i = 0; i + 4 <= n; i += 4) vst1_u16(d + i, vqmovn_u32(vld1q_u32(a + i))); }
        __attribute__((noinline)) static void q15_mul(int16_t *restrict d, const int16_t *a, const int16_t *b, int n)
        { for (int i = 0; i + 8 <= n; i += 8) vst1q_s16(d + i, vqrdmulhq_s16(vld1q_s16(a + i), vld1q_s16(b + i))); }
        __attribute__((noinline)) static void q15_mac(int32_t *restrict d, const int16_t *a, const int16_t *b, int n)
        { for (int i = 0; i + 4 <= n; i += 4) vst1q_s32(d + i, vqdmlal_s16(vld1q_s32(d + i), vld1_s16(a + i), vld1_s16(b + i))); }
        __attribute__((noinline)) static void requant(int16_t *restrict d, const int32_t *a, int n)
        { for (int i = 0; i + 4 <= n; i += 4) vst1_s16(d + i, vqrshrn_n_s32(vqdmulhq_n_s32(vld1q_s32(a + i), 0x5a827999), 12)); }
        static void fpsr_clear(void) { __asm__ volatile("msr fpsr, xzr"); }
        static uint64_t fpsr(void) { uint64_t f; __asm__ volatile("mrs %0, fpsr" : "=r"(f)); return f; }
        #define SATLOOP(NAME, CALL) __attribute__((noinline)) static uint64_t NAME(void) { init_loops(); fpsr_clear(); CALL; return mix(digest_loops(), fpsr()); }
        SATLOOP(sat0, clamp_s16(h1, w2, N))
        SATLOOP(sat1, clamp_u8(b1, h2, N))
        SATLOOP(sat2, clamp_u16((uint16_t *)h3, (const uint32_t *)w3, N))
        SATLOOP(sat3, q15_mul(h1, h2, h3, N))
        SATLOOP(sat4, q15_mac(w1, h2, h3, N))
        SATLOOP(sat5, requant(h2, w3, N))

        """;

    private static readonly string[] LoopNames =
        ["vqmovn_s32 (int32 → int16)", "vqmovun_s16 (int16 → uint8)", "vqmovn_u32 (uint32 → uint16)", "vqrdmulhq_s16", "vqdmlal_s16", "vqdmulhq_n_s32 + vqrshrn_n_s32"];

    private static (byte[]?, string?, string?) BuildLoops() =>
        Arm64Sve2Tests.BuildCompiledCases("#include <arm_neon.h>\n" + SatLoops, Enumerable.Range(0, 6).Select(i => $"sat{i}"), "simd-satloop");

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> ThreeSameBuilt = new(() => Build(ThreeSameCases, "simd-sat-same"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> MiscBuilt = new(() => Build(MiscCases, "simd-sat-misc"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> ShiftBuilt = new(() => Build(ShiftCases, "simd-sat-shift"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> MulBuilt = new(() => Build(MulCases, "simd-sat-mul"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> LoopBuilt = new(BuildLoops);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Saturating_and_rounding_shifts_by_register_and_sqdmulh_give_the_values_and_fpsr_qc_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(ThreeSameBuilt.Value, Names(ThreeSameCases), bits);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Saturating_accumulate_abs_neg_and_narrowing_give_the_values_and_fpsr_qc_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(MiscBuilt.Value, Names(MiscCases), bits);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Saturating_shifts_by_immediate_give_the_values_and_fpsr_qc_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(ShiftBuilt.Value, Names(ShiftCases), bits);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Saturating_doubling_multiplies_give_the_values_and_fpsr_qc_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(MulBuilt.Value, Names(MulCases), bits);

    /// <summary>
    /// The compiled intrinsic loops: gcc emitted SQXTN/SQXTN2, SQXTUN/SQXTUN2, UQXTN, SQRDMULH, SQDMLAL, SQDMULH (by
    /// element) and SQRSHRN (objdump of the guest), and the emulator's arrays and FPSR agree with qemu's.
    /// </summary>
    [SkippableFact]
    public void Compiled_saturating_intrinsic_loops_give_the_results_qemu_gives()
    {
        var built = LoopBuilt.Value;
        Skip.If(built.Guest is null, built.Why);
        string disassembly = Arm64Sve2Tests.DisassembleGuest("simd-satloop");
        Assert.Matches(@"\tsqxtn\tv\d+\.4h, v\d+\.4s", disassembly);
        Assert.Matches(@"\tsqxtn2\tv\d+\.8h, v\d+\.4s", disassembly);
        Assert.Matches(@"\tsqxtun\tv\d+\.8b, v\d+\.8h", disassembly);
        Assert.Matches(@"\tsqxtun2\tv\d+\.16b, v\d+\.8h", disassembly);
        Assert.Matches(@"\tuqxtn\tv\d+\.4h, v\d+\.4s", disassembly);
        Assert.Matches(@"\tsqrdmulh\tv\d+\.8h, v\d+\.8h, v\d+\.8h", disassembly);
        Assert.Matches(@"\tsqdmlal\tv\d+\.4s, v\d+\.4h, v\d+\.4h", disassembly);
        Assert.Matches(@"\tsqdmulh\tv\d+\.4s, v\d+\.4s, v\d+\.s\[0\]", disassembly);
        Assert.Matches(@"\tsqrshrn\tv\d+\.4h, v\d+\.4s, #12", disassembly);
        Arm64Sve2Tests.CompareWithQemu(built, LoopNames, 128);
    }

    /// <summary>
    /// Unallocated sizes of these encodings: UNDEFINED (EC 0x00, at the instruction) on every preset, also with
    /// CPACR_EL1.FPEN trapping — the decode comes before CheckFPAdvSIMDEnabled64.
    /// </summary>
    [Theory]
    [InlineData(0x4E22B420u)] // sqdmulh (vector), size 00
    [InlineData(0x4EE2B420u)] // sqdmulh (vector), size 11
    [InlineData(0x5EE2B420u)] // sqdmulh (scalar), size 11
    [InlineData(0x0EE24C20u)] // sqshl (register), size 11 with Q = 0
    [InlineData(0x0EE25420u)] // srshl (register), size 11 with Q = 0
    [InlineData(0x5EA25420u)] // srshl s0, s1, s2 (scalar: D only)
    [InlineData(0x5EE14820u)] // sqxtn (scalar), size 11
    [InlineData(0x7EE12820u)] // sqxtun (scalar), size 11
    [InlineData(0x0EE07820u)] // sqabs, size 11 with Q = 0
    [InlineData(0x0EE03820u)] // suqadd, size 11 with Q = 0
    [InlineData(0x0E22D020u)] // sqdmull, size 00
    [InlineData(0x0EE2D020u)] // sqdmull, size 11
    [InlineData(0x5E229020u)] // sqdmlal (scalar), size 00
    [InlineData(0x4F12C020u)] // sqdmulh (by element), size 00
    [InlineData(0x4FD2C020u)] // sqdmulh (by element), size 11
    [InlineData(0x5FD23020u)] // sqdmlal (scalar, by element), size 11
    [InlineData(0x0F7F9420u)] // sqshrn with immh<3> = 1
    [InlineData(0x5F7F9420u)] // sqshrn (scalar) with immh<3> = 1
    [InlineData(0x5F017420u)] // sqshl (scalar, immediate) with immh = 0000
    [InlineData(0x0F417420u)] // sqshl (immediate) .2d with Q = 0
    public void An_unallocated_size_is_undefined_before_the_fp_trap(uint insn)
        => Arm64TestVm.AssertUndefinedBeforeFpTrap(insn);

    /// <summary>
    /// Allocated forms run on every preset (V0 and FPSR.QC from the instruction: 0x8000 × 0x8000 doubled saturates to
    /// 0x7fff; the D lane 0x40000000_40000000 narrows to 0x7fffffff; (0x00018000 + 0x8000) &gt;&gt; 16 = 2 without
    /// saturating, the upper half zeroed) and with CPACR_EL1.FPEN trapping take the FP access trap (EC 0x07) at the
    /// instruction.
    /// </summary>
    [Theory]
    [InlineData(0x4E62B420u, 0x8000_8000u, 0x7FFF_7FFF_7FFF_7FFFUL, 0x7FFF_7FFF_7FFF_7FFFUL, true)] // sqdmulh v0.8h, v1.8h, v2.8h
    [InlineData(0x5EA14820u, 0x4000_0000u, 0x0000_0000_7FFF_FFFFUL, 0UL, true)]                    // sqxtn s0, d1
    [InlineData(0x2F109C20u, 0x0001_8000u, 0x0002_0002_0002_0002UL, 0UL, false)]                   // uqrshrn v0.4h, v1.4s, #16
    public void Allocated_forms_run_on_every_preset_and_follow_cpacr_fpen(uint insn, uint fill, ulong low, ulong high, bool qc)
    {
        Arm64TestVm.AssertRunsOnEveryPresetAndFollowsFpen(insn, v =>
        {
            v.SetOneRegBytes(Arm64SimdTests.VRegId(0), Arm64SimdTests.Splat(0x5555_5555u));
            v.SetOneRegBytes(Arm64SimdTests.VRegId(1), Arm64SimdTests.Splat(fill));
            v.SetOneRegBytes(Arm64SimdTests.VRegId(2), Arm64SimdTests.Splat(fill));
        }, v =>
        {
            Assert.Equal(((UInt128)high << 64) | low, Arm64SimdTests.V(v, 0));
            Assert.Equal(qc, (Arm64SimdTests.Fpsr(v) >> 27 & 1) != 0);
        }, v => Assert.Equal(0u, Arm64SimdTests.Fpsr(v)));
    }
}
