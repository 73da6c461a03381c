// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Emulation.Tests.Arm64SveBf16Tests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// FEAT_FP16 half-precision arithmetic (A64Interpreter.FpHalf.cs with the scalar groups of .FloatingPoint.cs and
/// .FpConvert.cs; the AdvSIMD FP16 groups of A64Interpreter.SimdHalf.cs) against qemu-aarch64 -cpu max with
/// <see cref="Arm64SveBf16Tests"/>'s guest program (64 data windows, half random, half edge bytes; V0–V2 hold the low
/// 128 bits of Z0–Z2; the digest covers Z0, NZCV, and the buffer at X13, where every case stores its FPSR and the
/// scalar cases their per-lane results). A scalar case runs its instruction on each of the 8 H lanes of V1/V2 (and
/// V0 as the addend), collecting the results in V0 or the buffer. Cases cover every rounding mode, FPCR.FZ16 (and FZ,
/// which half precision ignores), FPCR.DN, lanes of NaNs (signalling and quiet, both signs, with payloads),
/// infinities, zeros of both signs, denormals, the largest normal; operands reshaped to make tiny products and sums
/// near the overflow threshold. Also an auto-vectorised _Float16 loop (gcc -O3 -march=armv8.2-a+fp16, checked to
/// contain half-precision vector instructions) and the decode gate (UNDEFINED before the CPACR_EL1.FPEN trap).
/// </summary>
public class Arm64Fp16Tests
{
    private static readonly uint[] Modes = [0, RoundUp, RoundDown, RoundZero];

    /// <summary>FPCR values for the edge runs: FZ16, DN, FZ (no effect on half), and mixed.</summary>
    private static readonly uint[] Edges = [Fz16, DefaultNan, FlushZero, Fz16 | DefaultNan | RoundUp, Fz16 | RoundZero];

    /// <summary>The special lanes: sNaN, quiet NaN with payload, −∞, denormal, −0, largest normal, −denormal, +∞.</summary>
    private static readonly ushort[] SpecialLanes = [0x7D00, 0x7EFF, 0xFC00, 0x0003, 0x8000, 0x7BFF, 0x83FF, 0x7C00];

    /// <summary>Vr's H lanes = <see cref="SpecialLanes"/> rotated by <paramref name="rotate"/> (x11 as scratch).</summary>
    private static string Specials(int r, int rotate = 0) =>
        string.Concat(Enumerable.Range(0, 8).Select(k => $"mov w11, #0x{SpecialLanes[(k + rotate) % 8]:x}\nins v{r}.h[{k}], w11\n"));

    /// <summary>Half lanes of Zr with exponent 30 (32768 up to 65504): sums and products overflow.</summary>
    private static string HugeH(string r) => $"orr {r}.h, {r}.h, #0x7800\nand {r}.h, {r}.h, #0xfbff\n";

    /// <summary>
    /// A scalar instruction on each H lane k: H6 = V1.H[k], H7 = V2.H[k], H4 = V0.H[k], then <paramref name="insn"/>
    /// (writing H5), and V0.H[k] = H5.
    /// </summary>
    private static string Lanes(string insn) => string.Concat(Enumerable.Range(0, 8).Select(k =>
        $"dup h6, v1.h[{k}]\ndup h7, v2.h[{k}]\ndup h4, v0.h[{k}]\n{insn}\nins v0.h[{k}], v5.h[0]\n"));

    /// <summary>As <see cref="Lanes"/>, <paramref name="insn"/> leaving X11 (NZCV when <paramref name="nzcv"/>), stored at X13 + 16 + 8k.</summary>
    private static string LanesToMemory(string insn, bool nzcv = false) => string.Concat(Enumerable.Range(0, 8).Select(k =>
        $"dup h6, v1.h[{k}]\ndup h7, v2.h[{k}]\n{insn}\n{(nzcv ? "mrs x11, nzcv\n" : "")}str x11, [x13, #{16 + 8 * k}]\n"));

    /// <summary>As <see cref="Lanes"/> with X11 = a 32-bit (W) or 64-bit (X) integer from V1/V2, or the sign-extended H lane (smov).</summary>
    private static string LanesFromInteger(string insn, char source) => string.Concat(Enumerable.Range(0, 8).Select(k =>
        (source switch
        {
            'w' => $"mov w11, v{1 + k / 4}.s[{k % 4}]\n",
            'x' => $"mov x11, v{1 + k / 2}.d[{k % 2}]\n",
            _ => $"smov w11, v1.h[{k}]\n",
        }) + $"{insn}\nins v0.h[{k}], v5.h[0]\n"));

    private static IEnumerable<string> Each(string insn, IEnumerable<uint> fpcrs) => fpcrs.Select(f => Fp(insn, f));

    private static string[] ScalarCases()
    {
        var cases = new List<string>();
        foreach (string op in (string[])["fadd", "fsub", "fmul", "fdiv"])
        {
            cases.AddRange(Each(Lanes($"{op} h5, h6, h7"), [.. Modes, .. Edges]));
            cases.Add(Fp(Specials(2) + Lanes($"{op} h5, h6, h7")));
            cases.Add(Fp(Specials(1) + Specials(2, 3) + Lanes($"{op} h5, h6, h7"), DefaultNan));
        }
        foreach (string op in (string[])["fmax", "fmin", "fmaxnm", "fminnm", "fnmul"])
        {
            cases.Add(Fp(Lanes($"{op} h5, h6, h7")));
            cases.Add(Fp(Specials(1) + Specials(2, 5) + Lanes($"{op} h5, h6, h7")));
            cases.Add(Fp(SmallH("z1") + SmallH("z2") + Lanes($"{op} h5, h6, h7"), Fz16));
        }
        cases.Add(Fp(HugeH("z1") + HugeH("z2") + Lanes("fadd h5, h6, h7"), RoundZero));
        cases.Add(Fp(HugeH("z1") + HugeH("z2") + Lanes("fmul h5, h6, h7"), RoundDown));
        cases.Add(Fp(HugeH("z1") + HugeH("z2") + Lanes("fnmul h5, h6, h7"), RoundUp));
        cases.Add(Fp(MidH("z1") + MidH("z2") + Lanes("fmul h5, h6, h7")));
        cases.Add(Fp(MidH("z1") + MidH("z2") + Lanes("fmul h5, h6, h7"), Fz16 | RoundUp));
        cases.Add(Fp(SmallH("z1") + SmallH("z2") + Lanes("fsub h5, h6, h7"), Fz16));
        cases.Add(Fp(SmallH("z1") + Lanes("fdiv h5, h6, h7"), Fz16 | RoundDown));
        cases.Add(Fp(Specials(1) + Specials(2, 3) + Lanes("fdiv h5, h6, h7"), Fz16 | RoundZero)); // 0 ÷ −0 (flushed), ∞ ÷ −∞
        cases.Add(Fp(Specials(1) + Specials(2, 3) + Lanes("fdiv h5, h6, h7"), RoundUp));
        foreach (string op in (string[])["fmadd", "fmsub", "fnmadd", "fnmsub"])
        {
            cases.Add(Fp(Lanes($"{op} h5, h6, h7, h4")));
            cases.Add(Fp(Specials(0, 2) + Specials(2) + Lanes($"{op} h5, h6, h7, h4")));
            cases.Add(Fp(SmallH("z0") + MidH("z1") + MidH("z2") + Lanes($"{op} h5, h6, h7, h4"), Fz16));
        }
        cases.AddRange(Each(Lanes("fmadd h5, h6, h7, h4"), [.. Modes, DefaultNan]));
        cases.Add(Fp(SmallH("z0") + MidH("z1") + MidH("z2") + Lanes("fmadd h5, h6, h7, h4"), RoundUp));
        cases.Add(Fp(HugeH("z0") + HugeH("z1") + Lanes("fnmadd h5, h6, h7, h4"), RoundZero));
        // 1 source.
        foreach (string op in (string[])["fmov", "fabs", "fneg"])
            cases.Add(Fp(Specials(1) + Lanes($"{op} h5, h6")));
        cases.AddRange(Each(Lanes("fsqrt h5, h6"), [.. Modes, .. Edges]));
        cases.Add(Fp(Specials(1) + Lanes("fsqrt h5, h6")));
        cases.Add(Fp(SmallH("z1") + Lanes("fsqrt h5, h6"), Fz16));
        foreach (string op in (string[])["frintn", "frintp", "frintm", "frintz", "frinta", "frinti"])
        {
            cases.Add(Fp(Lanes($"{op} h5, h6"), RoundUp));
            cases.Add(Fp(Specials(1) + Lanes($"{op} h5, h6"), DefaultNan));
        }
        cases.AddRange(Each(Lanes("frintx h5, h6"), [.. Modes, Fz16]));
        cases.Add(Fp(Specials(1) + Lanes("frinti h5, h6"), RoundDown));
        // Compares: NZCV per lane.
        foreach (string op in (string[])["fcmp h6, h7", "fcmpe h6, h7", "fcmp h6, #0.0", "fcmpe h6, #0.0"])
        {
            cases.Add(Fp(LanesToMemory(op, nzcv: true)));
            cases.Add(Fp(Specials(1) + Specials(2, 1) + LanesToMemory(op, nzcv: true)));
            cases.Add(Fp(SmallH("z1") + SmallH("z2") + LanesToMemory(op, nzcv: true), Fz16));
        }
        cases.Add(Fp(Specials(1) + Specials(2, 6) + LanesToMemory("msr nzcv, xzr\nfccmp h6, h7, #4, ne", nzcv: true)));
        cases.Add(Fp(Specials(1) + Specials(2, 6) + LanesToMemory("msr nzcv, xzr\nfccmpe h6, h7, #2, ne", nzcv: true)));
        cases.Add(Fp(LanesToMemory("msr nzcv, xzr\nfccmp h6, h7, #9, eq", nzcv: true)));
        cases.Add(Fp(Lanes("fcmp h6, h7\nfcsel h5, h6, h7, gt")));
        cases.Add(Fp("fmov h0, #1.0\nfmov h1, #-0.125\nfmov h2, #31.0\nfmov h3, #0.1328125\nins v0.h[1], v1.h[0]\nins v0.h[2], v2.h[0]\nins v0.h[3], v3.h[0]"));
        // FP ↔ integer: results stored as X11.
        foreach (string op in (string[])["fcvtns", "fcvtnu", "fcvtps", "fcvtpu", "fcvtms", "fcvtmu", "fcvtzs", "fcvtzu", "fcvtas", "fcvtau"])
        {
            cases.Add(Fp(LanesToMemory($"{op} w11, h6")));
            cases.Add(Fp(Specials(1) + LanesToMemory($"{op} x11, h6")));
        }
        cases.AddRange(Each(LanesToMemory("fcvtzs w11, h6"), [Fz16, DefaultNan]));
        cases.Add(Fp(SmallH("z1") + LanesToMemory("fcvtzs w11, h6, #20"), Fz16));
        cases.Add(Fp(LanesToMemory("fcvtzu x11, h6, #40")));
        cases.Add(Fp(LanesToMemory("fcvtzs w11, h6, #31")));
        cases.Add(Fp(LanesToMemory("fcvtzs x11, h6, #1")));
        cases.Add(Fp(LanesToMemory("fmov w11, h6")));
        cases.Add(Fp(LanesToMemory("fmov x11, h6")));
        foreach (uint fpcr in Modes)
        {
            cases.Add(Fp(LanesFromInteger("scvtf h5, w11", 'h'), fpcr));
            cases.Add(Fp(LanesFromInteger("scvtf h5, w11", 'w'), fpcr));
            cases.Add(Fp(LanesFromInteger("ucvtf h5, x11", 'x'), fpcr));
        }
        cases.Add(Fp(LanesFromInteger("ucvtf h5, w11", 'h')));
        cases.Add(Fp(LanesFromInteger("scvtf h5, x11", 'x'), RoundZero));
        cases.Add(Fp(LanesFromInteger("scvtf h5, w11, #5", 'h')));
        cases.Add(Fp(LanesFromInteger("scvtf h5, w11, #24", 'h'), Fz16));
        cases.Add(Fp(LanesFromInteger("scvtf h5, w11, #24", 'h'), RoundUp));
        cases.Add(Fp(LanesFromInteger("ucvtf h5, x11, #64", 'x')));
        cases.Add(Fp(LanesFromInteger("ucvtf h5, x11, #64", 'x'), Fz16 | RoundDown));
        cases.Add(Fp(LanesFromInteger("fmov h5, w11", 'w')));
        cases.Add(Fp(LanesFromInteger("fmov h5, x11", 'x')));
        return [.. cases];
    }

    /// <summary>
    /// FCVTZS Hd, Hn, #2, then FMOV Hd, Hd: qemu 7.2 writes a negative scalar FP16 fixed-point FCVTZS result
    /// sign-extended to 32 bits into Vd (0xFFFFFFFA for −1.5), where V[d, 16] = result zero-extends it (Arm ARM C7.2
    /// FCVTZS (vector, fixed-point)); the FMOV keeps the compared bits to the 16 the architecture defines, and
    /// <see cref="Scalar_fcvtzs_fixed_point_half_zero_extends_a_negative_result"/> checks the rest.
    /// </summary>
    private const string ScalarFcvtzs = "fcvtzs h0, h1, #2\nfmov h0, h0";

    private static string[] VectorCases()
    {
        var cases = new List<string>();
        string[] binary =
        [
            "fadd", "fsub", "fmul", "fdiv", "fmax", "fmin", "fmaxnm", "fminnm", "fmulx", "fabd", "fmla", "fmls",
            "faddp", "fmaxp", "fminp", "fmaxnmp", "fminnmp", "fcmeq", "fcmge", "fcmgt", "facge", "facgt",
        ];
        foreach (string op in binary)
        {
            cases.Add(Fp($"{op} v0.8h, v1.8h, v2.8h"));
            cases.Add(Fp($"{op} v0.4h, v1.4h, v2.4h", Fz16 | DefaultNan));
            cases.Add(Fp(Specials(1) + Specials(2, 3) + $"{op} v0.8h, v1.8h, v2.8h"));
            cases.Add(Fp(Specials(2) + $"{op} v0.8h, v1.8h, v2.8h", Fz16));
        }
        foreach (string op in (string[])["fadd", "fmul", "fdiv", "fmla"])
            cases.AddRange(Each($"{op} v0.8h, v1.8h, v2.8h", [RoundUp, RoundDown, RoundZero, FlushZero]));
        cases.Add(Fp(MidH("z1") + MidH("z2") + "fmul v0.8h, v1.8h, v2.8h", Fz16));
        cases.Add(Fp(MidH("z1") + MidH("z2") + "fmul v0.8h, v1.8h, v2.8h", RoundDown));
        cases.Add(Fp(SmallH("z0") + MidH("z1") + MidH("z2") + "fmla v0.8h, v1.8h, v2.8h", Fz16));
        cases.Add(Fp(SmallH("z0") + MidH("z1") + MidH("z2") + "fmls v0.8h, v1.8h, v2.8h", RoundZero));
        cases.Add(Fp(SmallH("z1") + SmallH("z2") + "fsub v0.8h, v1.8h, v2.8h", Fz16 | RoundDown));
        cases.Add(Fp(SmallH("z1") + SmallH("z2") + "fabd v0.8h, v1.8h, v2.8h", Fz16));
        cases.Add(Fp(SmallH("z1") + SmallH("z2") + "fcmge v0.8h, v1.8h, v2.8h", Fz16));
        cases.Add(Fp(SmallH("z1") + SmallH("z2") + "fmaxnm v0.8h, v1.8h, v2.8h", Fz16));
        foreach (uint fpcr in Modes)
        {
            cases.Add(Fp(HugeH("z1") + HugeH("z2") + "fadd v0.8h, v1.8h, v2.8h", fpcr));
            cases.Add(Fp(HugeH("z1") + HugeH("z2") + "fmul v0.8h, v1.8h, v2.8h", fpcr));
        }
        cases.Add(Fp(HugeH("z1") + "fmulx v0.8h, v1.8h, v2.8h", RoundZero));
        cases.Add(Fp(SmallH("z1") + "fdiv v0.8h, v2.8h, v1.8h", RoundUp));
        cases.Add(Fp(Specials(1) + Specials(2, 3) + "fdiv v0.8h, v1.8h, v2.8h", Fz16 | RoundDown));
        cases.Add(Fp(Specials(1) + Specials(2, 3) + "fsqrt v0.8h, v1.8h\nfmla v0.8h, v1.8h, v2.8h", RoundZero));
        // Scalar three same.
        foreach (string op in (string[])["fmulx", "fcmeq", "fcmge", "fcmgt", "facge", "facgt", "fabd"])
        {
            cases.Add(Fp($"{op} h0, h1, h2"));
            cases.Add(Fp(Specials(1) + Specials(2, 4) + $"{op} h0, h1, h2", Fz16));
        }
        // Two-register miscellaneous.
        string[] unary =
        [
            "fabs", "fneg", "fsqrt", "frintn", "frintp", "frintm", "frintz", "frinta", "frintx", "frinti",
            "fcvtns", "fcvtnu", "fcvtps", "fcvtpu", "fcvtms", "fcvtmu", "fcvtzs", "fcvtzu", "fcvtas", "fcvtau", "scvtf", "ucvtf",
        ];
        foreach (string op in unary)
        {
            cases.Add(Fp($"{op} v0.8h, v1.8h"));
            cases.Add(Fp($"{op} v0.4h, v1.4h", Fz16 | DefaultNan));
            cases.Add(Fp(Specials(1) + $"{op} v0.8h, v1.8h"));
        }
        foreach (string op in (string[])["fsqrt", "frintx", "fcvtzs", "scvtf", "ucvtf"])
            cases.AddRange(Each($"{op} v0.8h, v1.8h", [RoundUp, RoundDown, RoundZero]));
        cases.Add(Fp(SmallH("z1") + "fsqrt v0.8h, v1.8h", Fz16));
        cases.Add(Fp(SmallH("z1") + "fcvtps v0.8h, v1.8h", Fz16));
        cases.Add(Fp(SmallH("z1") + "frinta v0.8h, v1.8h", Fz16));
        foreach (string op in (string[])["fcmgt", "fcmeq", "fcmlt", "fcmge", "fcmle"])
        {
            cases.Add(Fp($"{op} v0.8h, v1.8h, #0.0"));
            cases.Add(Fp(Specials(1) + $"{op} v0.4h, v1.4h, #0.0"));
            cases.Add(Fp(SmallH("z1") + $"{op} v0.8h, v1.8h, #0.0", Fz16));
            cases.Add(Fp(Specials(1, 2) + $"{op} h0, h1, #0.0"));
        }
        foreach (string op in (string[])["fcvtns", "fcvtmu", "fcvtzs", "fcvtau", "scvtf", "ucvtf"])
        {
            cases.Add(Fp($"{op} h0, h1"));
            cases.Add(Fp(Specials(1, 1) + $"{op} h0, h1", RoundDown));
        }
        // Across lanes and scalar pairwise.
        foreach (string op in (string[])["fmaxv", "fminv", "fmaxnmv", "fminnmv"])
        {
            cases.Add(Fp($"{op} h0, v1.8h"));
            cases.Add(Fp($"{op} h0, v1.4h", Fz16));
            cases.Add(Fp(Specials(1, 4) + $"{op} h0, v1.8h"));
            cases.Add(Fp(Specials(1, 1) + $"{op} h0, v1.4h", DefaultNan));
        }
        foreach (string op in (string[])["faddp", "fmaxp", "fminp", "fmaxnmp", "fminnmp"])
        {
            cases.Add(Fp($"{op} h0, v1.2h"));
            cases.Add(Fp(Specials(1, 6) + $"{op} h0, v1.2h"));
            cases.Add(Fp(Specials(1, 7) + $"{op} h0, v1.2h", DefaultNan | Fz16));
        }
        cases.AddRange(Each("faddp h0, v1.2h", [RoundUp, RoundDown, RoundZero]));
        // By element (Rm up to V15; V15 saved and restored on the stack).
        const string v15 = "str q15, [sp, #-16]!\nmov v15.16b, v2.16b\n", v15Back = "\nldr q15, [sp], #16";
        foreach (string insn in (string[])
        [
            "fmla v0.8h, v1.8h, v2.h[7]", "fmla v0.4h, v1.4h, v2.h[2]", "fmls v0.8h, v1.8h, v2.h[0]", "fmls v0.4h, v1.4h, v2.h[5]",
            "fmul v0.8h, v1.8h, v2.h[3]", "fmul v0.4h, v1.4h, v2.h[6]", "fmulx v0.8h, v1.8h, v2.h[1]", "fmulx v0.4h, v1.4h, v2.h[4]",
            "fmla h0, h1, v2.h[6]", "fmls h0, h1, v2.h[1]", "fmul h0, h1, v2.h[7]", "fmulx h0, h1, v2.h[0]",
        ])
        {
            cases.Add(Fp(insn));
            cases.Add(Fp(Specials(2) + insn, Fz16));
        }
        cases.Add(Fp(v15 + "fmla v0.8h, v1.8h, v15.h[5]" + v15Back, RoundUp));
        cases.Add(Fp(v15 + "fmulx h0, h1, v15.h[2]" + v15Back));
        cases.Add(Fp(Specials(1) + "movi v2.8h, #0\nfmulx v0.8h, v1.8h, v2.h[3]"));
        cases.Add(Fp(SmallH("z0") + MidH("z1") + MidH("z2") + "fmla v0.8h, v1.8h, v2.h[4]", Fz16 | RoundDown));
        // Fixed point (immh 001x) and FMOV (vector, immediate).
        foreach (string insn in (string[])
        [
            "scvtf v0.8h, v1.8h, #3", "ucvtf v0.4h, v1.4h, #16", "scvtf v0.8h, v1.8h, #16", "ucvtf v0.8h, v1.8h, #1",
            "fcvtzs v0.8h, v1.8h, #1", "fcvtzu v0.8h, v1.8h, #16", "fcvtzs v0.4h, v1.4h, #9", "fcvtzu v0.4h, v1.4h, #4",
            "scvtf h0, h1, #7", "ucvtf h0, h1, #16", ScalarFcvtzs, "fcvtzu h0, h1, #15",
        ])
        {
            cases.Add(Fp(insn));
            cases.Add(Fp(insn, Fz16 | RoundUp));
        }
        cases.Add(Fp("scvtf v0.8h, v1.8h, #16", RoundDown));
        cases.Add(Fp(Specials(1) + "fcvtzs v0.8h, v1.8h, #16", DefaultNan));
        cases.Add(Fp("fmov v0.8h, #-2.5"));
        cases.Add(Fp("fmov v0.4h, #0.1875"));
        cases.Add(Fp("fmov v0.8h, #31.0\nfmov v1.4h, #-1.0\nins v0.d[1], v1.d[1]"));
        return [.. cases];
    }

    /// <summary>gcc -O3 _Float16 loops in functions built for armv8.2-a+fp16 without SVE, over prefixes of the 16-bit arrays.</summary>
    private const string HalfLoops = """
        #define FP16 __attribute__((noinline, target("arch=armv8.2-a+fp16")))
        FP16 static void h_fma(_Float16 *restrict d, const _Float16 *a, const _Float16 *b, int n) { for (int i = 0; i < n; i++) d[i] = d[i] + a[i] * b[i]; }
        FP16 static void h_add(_Float16 *restrict d, const _Float16 *a, const _Float16 *b, int n) { for (int i = 0; i < n; i++) d[i] = a[i] + b[i]; }
        FP16 static void h_div(_Float16 *restrict d, const _Float16 *a, const _Float16 *b, int n) { for (int i = 0; i < n; i++) d[i] = a[i] / b[i] - d[i]; }
        FP16 static void h_max(_Float16 *restrict d, const _Float16 *a, const _Float16 *b, int n) { for (int i = 0; i < n; i++) d[i] = __builtin_fmaxf16(a[i], b[i]) * (_Float16)0.5f; }
        FP16 static void h_cvt(int16_t *restrict d, const _Float16 *a, int n) { for (int i = 0; i < n; i++) d[i] = (int16_t)(a[i] * (_Float16)4.0f); }
        FP16 static _Float16 h_one(_Float16 a, _Float16 b, _Float16 c) { return a * b - c; }
        __attribute__((noinline)) static uint64_t fpsr_of(void) { uint64_t f; __asm__ volatile("mrs %0, fpsr\n msr fpsr, xzr" : "=r"(f)); return f; }
        #define HLOOP(NAME, CALL) __attribute__((noinline)) static uint64_t NAME(void) { uint64_t h = 0; \
            for (int n = 1; n <= N; n += 29) { init_loops(); fpsr_of(); CALL; h = mix(h, fpsr_of()); h = mix(h, digest_loops()); } return h; }
        HLOOP(hloop0, h_fma((_Float16 *)h1, (const _Float16 *)h2, (const _Float16 *)h3, n))
        HLOOP(hloop1, h_add((_Float16 *)h1, (const _Float16 *)h2, (const _Float16 *)h3, n))
        HLOOP(hloop2, h_div((_Float16 *)h1, (const _Float16 *)h2, (const _Float16 *)h3, n))
        HLOOP(hloop3, h_max((_Float16 *)h1, (const _Float16 *)h2, (const _Float16 *)h3, n))
        HLOOP(hloop4, h_cvt(h1, (const _Float16 *)h2, n))
        HLOOP(hloop5, for (int i = 0; i < n; i++) h1[i] = (int16_t)h_one((_Float16)h2[i], (_Float16)i, (_Float16)h3[i]))

        """;

    private static readonly string[] LoopNames = ["fma loop", "add loop", "div loop", "fmax loop", "convert loop", "scalar a*b-c"];

    private static (byte[]?, string?, string?) BuildLoops() =>
        Arm64Sve2Tests.BuildCompiledCases(HalfLoops, Enumerable.Range(0, 6).Select(i => $"hloop{i}"), "fp16-loop");

    private static readonly string[] Scalar = ScalarCases(), Vector = VectorCases();
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> ScalarBuilt = new(() => Build(Scalar, "fp16-scalar"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> VectorBuilt = new(() => Build(Vector, "fp16-vector"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> LoopBuilt = new(BuildLoops);

    [SkippableFact]
    public void Scalar_half_precision_instructions_give_the_values_and_fpsr_qemu_gives() =>
        Arm64Sve2Tests.CompareWithQemu(ScalarBuilt.Value, Names(Scalar), 128);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Advsimd_fp16_instructions_give_the_values_and_fpsr_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(VectorBuilt.Value, Names(Vector), bits);

    /// <summary>
    /// The auto-vectorised _Float16 loops: gcc emitted half-precision vector FMLA, FADD, FDIV, FMAXNM and FCVTZS and
    /// the scalar half FMUL/FSUB (objdump of the guest), and the emulator's arrays and FPSR agree with qemu's.
    /// </summary>
    [SkippableFact]
    public void Auto_vectorised_float16_loops_give_the_results_qemu_gives()
    {
        var built = LoopBuilt.Value;
        Skip.If(built.Guest is null, built.Why);
        string disassembly = Arm64Sve2Tests.DisassembleGuest("fp16-loop");
        Assert.Matches(@"\tfmla\tv\d+\.8h, v\d+\.8h, v\d+\.8h", disassembly);
        Assert.Matches(@"\tfadd\tv\d+\.8h, v\d+\.8h, v\d+\.8h", disassembly);
        Assert.Matches(@"\tfdiv\tv\d+\.8h, v\d+\.8h, v\d+\.8h", disassembly);
        Assert.Matches(@"\tfcvtzs\tv\d+\.8h, v\d+\.8h", disassembly);
        Assert.Matches(@"\tfmul\th\d+, h\d+, h\d+", disassembly);
        Arm64Sve2Tests.CompareWithQemu(built, LoopNames, 128);
    }

    /// <summary>
    /// Unallocated encodings of the half-precision groups: UNDEFINED (EC 0x00 at the instruction) on every preset, also
    /// with CPACR_EL1.FPEN trapping — the decode comes before CheckFPAdvSIMDEnabled64.
    /// </summary>
    [Theory]
    [InlineData(0x1EE3C020u)] // fcvt h0, h1 (FCVT to the same precision)
    [InlineData(0x1EE29820u)] // FP 2-source, ftype 11, opcode 1001
    [InlineData(0x4EC21C20u)] // three same (FP16), U 0 a 1 opcode 011
    [InlineData(0x5E421420u)] // scalar three same (FP16): FADD has no scalar form
    [InlineData(0x5EC21C20u)] // scalar three same (FP16), U 0 a 1 opcode 011
    [InlineData(0x4EF9F820u)] // two-register misc (FP16), U 0 a 1 opcode 11111 (FRECPX is scalar only)
    [InlineData(0x4E70F820u)] // across lanes, U 0, size 01, opcode 01111
    [InlineData(0x5EB0D820u)] // scalar pairwise (FP16), a 1 opcode 01101
    [InlineData(0x6F03FE00u)] // modified immediate, op 1 o2 1
    public void Unallocated_half_precision_encodings_are_undefined_before_the_fp_trap(uint insn)
        => Arm64TestVm.AssertUndefinedBeforeFpTrap(insn);

    /// <summary>
    /// On every preset (ID_AA64PFR0_EL1.FP = 1: FEAT_FP16) the half-precision instructions run (V0 from the
    /// instruction, with V1 = 1.5 and V2 = 2.0 in every H lane) and with CPACR_EL1.FPEN trapping take the FP access
    /// trap (EC 0x07) at the instruction.
    /// </summary>
    [Theory]
    [InlineData(0x1EE22820u, 0x4300UL, false)]               // fadd h0, h1, h2: 3.5
    [InlineData(0x4E421420u, 0x4300_4300_4300_4300UL, true)] // fadd v0.8h, v1.8h, v2.8h
    [InlineData(0x4F321820u, 0x4200_4200_4200_4200UL, true)] // fmla v0.8h, v1.8h, v2.h[7]: 0 + 3.0
    [InlineData(0x4E30F820u, 0x3E00UL, false)]               // fmaxv h0, v1.8h: 1.5
    [InlineData(0x4F1DFC20u, 0x000C_000C_000C_000CUL, true)] // fcvtzs v0.8h, v1.8h, #3: 12
    [InlineData(0x4F03FE00u, 0x3C00_3C00_3C00_3C00UL, true)] // fmov v0.8h, #1.0
    [InlineData(0x5E421C20u, 0x4200UL, false)]               // fmulx h0, h1, h2: 3.0
    [InlineData(0x1EF80020u, 0UL, false)]                    // fcvtzs w0, h1 (X0 = 1)
    public void Half_precision_runs_on_every_preset_and_follows_cpacr_fpen(uint insn, ulong low, bool both)
    {
        Arm64TestVm.AssertRunsOnEveryPresetAndFollowsFpen(insn, v =>
        {
            v.SetOneRegBytes(Arm64SimdTests.VRegId(0), new byte[16]);
            v.SetOneRegBytes(Arm64SimdTests.VRegId(1), Arm64SimdTests.Splat(0x3E00_3E00u));
            v.SetOneRegBytes(Arm64SimdTests.VRegId(2), Arm64SimdTests.Splat(0x4000_4000u));
            Assert.True(A64Interpreter.HaveFp16(v.GetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1)));
        }, v =>
        {
            if (insn == 0x1EF80020u) Assert.Equal(1UL, v.GetOneReg(KvmArm64Regs.X(0)));
            else Assert.Equal(both ? ((UInt128)low << 64) | low : low, Arm64SimdTests.V(v, 0));
        });
    }

    /// <summary>
    /// FCVTZS H0, H1, #2 with H1 = −1.5 (0xBE00): −6 as 16 bits (0xFFFA), the rest of V0 zero (V[d, 16] = result);
    /// FCVTZU of −1.5 saturates to 0 with IOC; FCVTZS #16 of −1.5 saturates to 0x8000 with IOC (FPSR read into X0).
    /// </summary>
    [Theory]
    [InlineData(0x5F1EFC20u, 0xFFFAUL, 0UL)]  // fcvtzs h0, h1, #2
    [InlineData(0x7F1EFC20u, 0UL, 1UL)]       // fcvtzu h0, h1, #2
    [InlineData(0x5F10FC20u, 0x8000UL, 1UL)]  // fcvtzs h0, h1, #16
    public void Scalar_fcvtzs_fixed_point_half_zero_extends_a_negative_result(uint insn, ulong expected, ulong fpsr)
    {
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseN1, insn, 0xD53B4420u); // …; mrs x0, fpsr
        var v = s.AddVcpu();
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x30_0000UL);
        v.SetOneRegBytes(Arm64SimdTests.VRegId(0), [.. Enumerable.Repeat((byte)0xFF, 16)]);
        v.SetOneRegBytes(Arm64SimdTests.VRegId(1), [0x00, 0xBE, .. new byte[14]]);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        Assert.Equal((UInt128)expected, Arm64SimdTests.V(v, 0));
        Assert.Equal(fpsr, v.GetOneReg(KvmArm64Regs.X(0)));
    }


    /// <summary>HaveFP16Ext(): ID_AA64PFR0_EL1.FP (bits 19:16) = 1 only; 0 (FP without half arithmetic) and 0xF (no FP) lack it.</summary>
    [Fact]
    public void Fp16_is_read_from_id_aa64pfr0_fp()
    {
        Assert.True(A64Interpreter.HaveFp16(Arm64HostCpu.Aa64Pfr0));
        Assert.False(A64Interpreter.HaveFp16(Arm64HostCpu.Aa64Pfr0 & ~(0xFUL << 16)));
        Assert.False(A64Interpreter.HaveFp16(Arm64HostCpu.Aa64Pfr0 | (0xFUL << 16)));
    }

    /// <summary>VFPExpandImm at N = 16 for the FMOV (immediate) encodings: imm8 0x70 = 1.0, 0x00 = 2.0, 0x84 = −2.5, 0x7F = 1.9375, 0x40 = 0.125.</summary>
    [Theory]
    [InlineData(0x70u, 0x3C00UL)]
    [InlineData(0x00u, 0x4000UL)]
    [InlineData(0x84u, 0xC100UL)]
    [InlineData(0x7Fu, 0x3FC0UL)]
    [InlineData(0x40u, 0x3000UL)]
    public void Half_immediates_expand_as_vfpexpandimm(uint imm8, ulong expected) =>
        Assert.Equal(expected, A64Interpreter.VfpExpandImmHalf(imm8));
}
