// SPDX-License-Identifier: MIT
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Emulation.Tests.Arm64SveBf16Tests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// FEAT_FHM (FMLAL/FMLAL2/FMLSL/FMLSL2), FEAT_FCMA (FCMLA, FCADD), FEAT_JSCVT (FJCVTZS) and FEAT_FRINTTS
/// (FRINT32Z/32X/64Z/64X) — A64Interpreter.FpExtensions.cs and .FpComplex.cs — against qemu-aarch64 -cpu max with
/// <see cref="Arm64SveBf16Tests"/>'s guest program (64 data windows; V0–V2 are the low 128 bits of the loaded Z0–Z2;
/// each case stores its FPSR, and the digest covers all of Z0 and NZCV), on a Neoverse-V2 vCPU at 128- and 512-bit
/// vectors: random data, data shaped to the interesting ranges (near 1, the 32- and 64-bit integer bounds, ties,
/// denormals), hand-picked lanes (NaNs signalling and quiet, infinities, ±0, bounds), every FPCR rounding mode where the
/// instruction rounds, FPCR.FZ, FZ16 and DN. Also gcc-compiled ACLE intrinsics (checked in the objdump to be these
/// instructions), the ID-register decode gate on every preset with CPACR_EL1.FPEN, the unallocated encodings
/// (UNDEFINED before the FP trap; qemu-aarch64 -cpu max raises SIGILL for each of them too), and hand-computed FJCVTZS
/// and FRINT32Z results.
/// </summary>
public class Arm64FpExtensionTests
{
    /// <summary>The Neoverse-V2 preset (every one of these features) with vectors up to <paramref name="bits"/>.</summary>
    private static Arm64CpuModel V2(int bits) => Arm64CpuModel.NeoverseV2 with { Name = $"neoverse-v2-{bits}", SveMaxVectorLength = bits / 8 };

    /// <summary>
    /// Sets lanes 0, 1, … of V<paramref name="reg"/> (element size <paramref name="esize"/>) to <paramref name="values"/>
    /// through X11 (the ZCASE clobbers it); the other lanes keep the data.
    /// </summary>
    private static string Lanes(int reg, int esize, params ulong[] values)
    {
        var sb = new StringBuilder();
        string t = esize switch { 16 => "h", 32 => "s", _ => "d" };
        for (int i = 0; i < values.Length; i++)
        {
            ulong v = values[i];
            sb.Append($"movz x11, #0x{v & 0xFFFF:x}\n");
            for (int k = 1; k < esize / 16; k++)
            {
                if (((v >> (16 * k)) & 0xFFFF) != 0) sb.Append($"movk x11, #0x{(v >> (16 * k)) & 0xFFFF:x}, lsl #{16 * k}\n");
            }
            sb.Append($"mov v{reg}.{t}[{i}], {(esize == 64 ? "x11" : "w11")}\n");
        }
        return sb.ToString();
    }

    private static ulong S(float f) => BitConverter.SingleToUInt32Bits(f);

    private static ulong D(double d) => BitConverter.DoubleToUInt64Bits(d);

    /// <summary>Bits 30:24 of every word of V<paramref name="reg"/> = <paramref name="hi"/>: a single's exponent hi:bit23, a double's bits 62:56.</summary>
    private static string Exp(int reg, int hi) => $"bic v{reg}.4s, #0x7f, lsl #24\norr v{reg}.4s, #0x{hi:x}, lsl #24\n";

    /// <summary>Single elements with exponent 0 or 1 (denormals, zeros, the smallest normals).</summary>
    private static string DenormS(int reg) => $"bic v{reg}.4s, #0x7f, lsl #24\n";

    /// <summary>Double elements with exponent 0 or 1.</summary>
    private static string DenormD(int reg) => $"bic v{reg}.4s, #0x7f, lsl #24\nbic v{reg}.4s, #0xe0, lsl #16\n";

    /// <summary>Half elements with exponent 14 or 15 (magnitudes in [0.5, 2)).</summary>
    private static string Near1H(int reg) => $"bic v{reg}.8h, #0x78, lsl #8\norr v{reg}.8h, #0x38, lsl #8\n";

    /// <summary>Half elements with exponent 0 or 1.</summary>
    private static string DenormH(int reg) => $"bic v{reg}.8h, #0x78, lsl #8\n";

    /// <summary>V<paramref name="r"/> = V2 around <paramref name="insn"/>, saved and restored on the stack (a by-element Rm above V7).</summary>
    private static string WithV(int r, string insn) => $"str q{r}, [sp, #-16]!\nmov v{r}.16b, v2.16b\n{insn}\nldr q{r}, [sp], #16";

    private static readonly uint[] Modes = [RoundUp, RoundDown, RoundZero];

    private const ulong QNanS = 0x7FC0_0011, SNanS = 0x7F80_0022, QNanD = 0x7FF8_0000_0000_0033, SNanD = 0x7FF0_0000_0000_0044;

    private static string[] FrintCases()
    {
        var cases = new List<string>();
        foreach (string op in new[] { "frint32z", "frint32x", "frint64z", "frint64x" })
        {
            bool x = op.EndsWith('x');
            cases.Add(Fp($"{op} v0.4s, v1.4s"));
            cases.Add(Fp($"{op} v0.2d, v1.2d"));
            cases.Add(Fp($"{op} d0, d1"));
            // Single exponents: [0.5, 2), [2^21, 2^23) (halves: ties), [2^29, 2^31), [2^31, 2^33), [2^61, 2^63), [2^63, 2^65).
            foreach (int hi in new[] { 0x3f, 0x4a, 0x4e, 0x4f, 0x5e, 0x5f })
                cases.Add(Fp(Exp(1, hi) + $"{op} v0.4s, v1.4s"));
            cases.Add(Fp(Exp(1, 0x4a) + $"{op} v0.2s, v1.2s"));
            cases.Add(Fp(Exp(1, 0x4e) + $"{op} s0, s1"));
            // Double exponents 0x3F0–0x3FF, 0x410–0x41F (2^17 to 2^32), 0x430–0x43F (2^49 to 2^64).
            foreach (int hi in new[] { 0x3f, 0x41, 0x43 })
                cases.Add(Fp(Exp(1, hi) + $"{op} v0.2d, v1.2d"));
            cases.Add(Fp(Exp(1, 0x41) + $"{op} d0, d1"));
            // Denormals: exact zeros under FPCR.FZ (IDC), inexact otherwise.
            cases.Add(Fp(DenormS(1) + $"{op} v0.4s, v1.4s"));
            cases.Add(Fp(DenormS(1) + $"{op} v0.4s, v1.4s", FlushZero));
            cases.Add(Fp(DenormD(1) + $"{op} v0.2d, v1.2d", FlushZero));
            cases.Add(Fp(DenormD(1) + $"{op} d0, d1"));
            // Edges: NaNs (no NaN processing: the most negative integer, IOC), infinities, the bounds, ±0, ties.
            foreach (var lanes in new ulong[][]
            {
                [QNanS, SNanS, S(float.PositiveInfinity), S(float.NegativeInfinity)],
                [S(2147483648f), S(-2147483648f), 0x4EFF_FFFF, 0xCF00_0001],
                [S(-0f), S(-0.5f), S(0.5f), S(2.5f)],
                [S(9.223372e18f), S(-9.223372e18f), 0x5EFF_FFFF, S(-1.5f)],
            })
            {
                cases.Add(Fp(Lanes(1, 32, lanes) + $"{op} v0.4s, v1.4s"));
                cases.Add(Fp(Lanes(1, 32, lanes) + $"{op} v0.4s, v1.4s", DefaultNan));
            }
            foreach (var lanes in new ulong[][]
            {
                [QNanD, D(double.NegativeInfinity)], [SNanD, D(double.PositiveInfinity)], [D(2147483647.5), D(-2147483648.5)],
                [D(-2147483648.0), D(2147483647.0)], [D(-2147483649.0), D(2147483648.0)], [D(9223372036854775808.0), D(-9223372036854775808.0)],
                [0x43DF_FFFF_FFFF_FFFF, D(-0.0)], [D(-0.5), D(2.5)], [D(-3.5), D(4503599627370495.5)],
            })
            {
                cases.Add(Fp(Lanes(1, 64, lanes) + $"{op} v0.2d, v1.2d"));
                cases.Add(Fp(Lanes(1, 64, lanes) + $"{op} d0, d1"));
            }
            if (!x) continue;
            foreach (uint mode in Modes)
            {
                cases.Add(Fp(Exp(1, 0x4a) + $"{op} v0.4s, v1.4s", mode));
                cases.Add(Fp(Exp(1, 0x3f) + $"{op} v0.4s, v1.4s", mode));
                cases.Add(Fp(Exp(1, 0x43) + $"{op} v0.2d, v1.2d", mode));
                cases.Add(Fp(Exp(1, 0x41) + $"{op} d0, d1", mode));
                cases.Add(Fp(Exp(1, 0x4e) + $"{op} s0, s1", mode));
                cases.Add(Fp(Lanes(1, 32, S(-0.5f), S(0.5f), S(2147483520f), S(-2.5f)) + $"{op} v0.4s, v1.4s", mode));
                cases.Add(Fp(Lanes(1, 64, D(2147483647.5), D(-2147483648.5)) + $"{op} v0.2d, v1.2d", mode));
            }
        }
        return [.. cases];
    }

    /// <summary>FJCVTZS of D1's low and high doubles: V0.S[0] and S[2] the results, S[1] the first Z flag; NZCV the second's.</summary>
    private const string Jcvt = "fjcvtzs w11, d1\nmov v0.s[0], w11\ncset w11, eq\nmov v0.s[1], w11\nmov d1, v1.d[1]\nfjcvtzs w11, d1\nmov v0.s[2], w11";

    /// <summary>Sets the sign of both doubles of V1.</summary>
    private const string NegativeD1 = "orr v1.4s, #0x80, lsl #24\n";

    /// <summary>
    /// A positive double denormal. Under FPCR.FZ FPToFixedJS gives it Z = 0 (FPUnpack flushes it; "sign == '0' &amp;&amp;
    /// value == 0.0 &amp;&amp; !IsZero(op&lt;51:0&gt;)"); qemu 7.2 gives Z = 1 (fixed in qemu 9.1 for its issue 2375), so the
    /// qemu comparison leaves that case to <see cref="Fjcvtzs_follows_fptofixedjs"/>.
    /// </summary>
    private static bool PositiveDenormal(ulong d) => (d >> 52) == 0 && (d & 0x000F_FFFF_FFFF_FFFF) != 0;

    private static string[] JscvtCases()
    {
        var cases = new List<string>
        {
            Fp(Jcvt), Fp(Exp(1, 0x41) + Jcvt), Fp(Exp(1, 0x3f) + Jcvt), Fp(Exp(1, 0x43) + Jcvt), Fp(Exp(1, 0x44) + Jcvt),
            Fp(DenormD(1) + Jcvt), Fp(DenormD(1) + NegativeD1 + Jcvt, FlushZero), Fp(Exp(1, 0x41) + Jcvt, RoundUp | DefaultNan | FlushZero),
        };
        foreach (var lanes in new ulong[][]
        {
            [QNanD, SNanD], [D(double.PositiveInfinity), D(double.NegativeInfinity)], [D(-0.0), D(0.0)], [D(3.0), D(-3.0)],
            [D(2147483647.0), D(-2147483648.0)], [D(2147483648.0), D(-2147483649.0)], [D(2147483647.5), D(-2147483648.5)],
            [D(4294967301.0), D(-4294967301.0)], [D(1e20), D(-1e300)], [1, 0x8000_0000_0000_0001], [0x000F_FFFF_FFFF_FFFF, 0x8010_0000_0000_0000],
            [D(0.5), D(-0.5)], [D(1.5), D(-1.75)], [D(9223372036854775808.0), D(-9223372036854775808.0)],
        })
        {
            cases.Add(Fp(Lanes(1, 64, lanes) + Jcvt));
            if (!lanes.Any(PositiveDenormal)) cases.Add(Fp(Lanes(1, 64, lanes) + Jcvt, FlushZero));
            cases.Add(Fp(Lanes(1, 64, lanes) + Jcvt, RoundDown | DefaultNan));
        }
        return [.. cases];
    }

    /// <summary>Single addends in V0 near 1 (exponents 0x7E, 0x7F).</summary>
    private static readonly string Near1S0 = Exp(0, 0x3f);

    private static string[] FhmCases()
    {
        string[] ops =
        [
            "fmlal v0.2s, v1.2h, v2.2h", "fmlal v0.4s, v1.4h, v2.4h", "fmlal2 v0.2s, v1.2h, v2.2h", "fmlal2 v0.4s, v1.4h, v2.4h",
            "fmlsl v0.2s, v1.2h, v2.2h", "fmlsl v0.4s, v1.4h, v2.4h", "fmlsl2 v0.2s, v1.2h, v2.2h", "fmlsl2 v0.4s, v1.4h, v2.4h",
            "fmlal v0.4s, v1.4h, v2.h[0]", "fmlal v0.2s, v1.2h, v2.h[3]", "fmlal2 v0.4s, v1.4h, v2.h[5]", "fmlal2 v0.2s, v1.2h, v2.h[7]",
            "fmlsl v0.4s, v1.4h, v2.h[1]", "fmlsl v0.2s, v1.2h, v2.h[6]", "fmlsl2 v0.4s, v1.4h, v2.h[2]", "fmlsl2 v0.2s, v1.2h, v2.h[4]",
            WithV(15, "fmlal v0.4s, v1.4h, v15.h[7]"), WithV(9, "fmlsl2 v0.4s, v1.4h, v9.h[3]"),
        ];
        var cases = new List<string>();
        foreach (string op in ops)
        {
            cases.Add(Fp(op));
            cases.Add(Fp(Near1S0 + Near1H(1) + Near1H(2) + op));
        }
        foreach (string op in new[] { ops[1], ops[3], ops[5], ops[7], ops[8], ops[14] })
        {
            foreach (uint mode in Modes) cases.Add(Fp(Near1S0 + Near1H(1) + Near1H(2) + op, mode));
            // Half denormals under FZ16 (zeros, no IDC) and single denormal addends under FZ (IDC), either or both.
            cases.Add(Fp(DenormH(1) + DenormH(2) + op));
            cases.Add(Fp(DenormH(1) + Near1H(2) + op, Fz16));
            cases.Add(Fp(DenormS(0) + DenormH(1) + DenormH(2) + op, FlushZero));
            cases.Add(Fp(DenormS(0) + DenormH(1) + Near1H(2) + op, FlushZero | Fz16));
            cases.Add(Fp(DenormS(0) + Near1H(1) + Near1H(2) + op, FlushZero | RoundUp));
            // NaNs in every operand position (signalling before quiet, the addend first), ∞ × 0 with a quiet NaN addend.
            string nans = Lanes(0, 32, QNanS, S(1f), SNanS, S(2f)) + Lanes(1, 16, 0x7C00, 0x7E05, 0x3C00, 0xFC06, 0x0000, 0x7D07, 0xBC00, 0x7C01)
                + Lanes(2, 16, 0x0000, 0xFE08, 0x7C09, 0x4200, 0x7C00, 0x3C00, 0x7D0A, 0x8000);
            cases.Add(Fp(nans + op));
            cases.Add(Fp(nans + op, DefaultNan));
            cases.Add(Fp(Lanes(0, 32, S(float.PositiveInfinity), S(-0f), S(float.MaxValue), S(-0f))
                + Lanes(1, 16, 0xFC00, 0x8000, 0x7BFF, 0x0000, 0x7BFF, 0x8001, 0x0001, 0x8000) + Lanes(2, 16, 0x3C00, 0x0000, 0x7BFF, 0x8000, 0x7BFF, 0x0001, 0x8001, 0x0000) + op));
        }
        return [.. cases];
    }

    private static string[] FcmaCases()
    {
        var cases = new List<string>();
        string[] arrangements = ["4h", "8h", "2s", "4s", "2d"];
        string Shape(string t, int reg) => t switch { "4h" or "8h" => Near1H(reg), _ => Exp(reg, 0x3f) };
        foreach (string t in arrangements)
        {
            string near = Shape(t, 0) + Shape(t, 1) + Shape(t, 2);
            foreach (int rot in new[] { 0, 90, 180, 270 })
            {
                string op = $"fcmla v0.{t}, v1.{t}, v2.{t}, #{rot}";
                cases.Add(Fp(op));
                cases.Add(Fp(near + op));
            }
            foreach (int rot in new[] { 90, 270 })
            {
                string op = $"fcadd v0.{t}, v1.{t}, v2.{t}, #{rot}";
                cases.Add(Fp(op));
                cases.Add(Fp(near + op));
            }
            string rot90 = $"fcmla v0.{t}, v1.{t}, v2.{t}, #90", add = $"fcadd v0.{t}, v1.{t}, v2.{t}, #270";
            foreach (uint mode in Modes)
            {
                cases.Add(Fp(near + rot90, mode));
                cases.Add(Fp(near + add, mode));
            }
            // Denormals: FZ flushes single and double ones (IDC, UFC), FZ16 half ones.
            string denorm = t switch { "4h" or "8h" => DenormH(0) + DenormH(1) + DenormH(2), "2d" => DenormD(0) + DenormD(1) + DenormD(2), _ => DenormS(0) + DenormS(1) + DenormS(2) };
            uint flush = t is "4h" or "8h" ? Fz16 : FlushZero;
            cases.Add(Fp(denorm + rot90));
            cases.Add(Fp(denorm + rot90, flush));
            cases.Add(Fp(denorm + add, flush | RoundDown));
        }
        // NaN order (addend, Vn, Vm; signalling first), FPNeg of a NaN, ∞ × 0 with a quiet NaN addend, at each rotation.
        string nanS = Lanes(0, 32, QNanS, S(1f), SNanS, S(2f)) + Lanes(1, 32, S(float.PositiveInfinity), 0x7FC0_0055, S(1f), 0xFF80_0066)
            + Lanes(2, 32, S(0f), 0xFFC0_0077, 0x7F80_0088, S(3f));
        string nanH = Lanes(0, 16, 0x7E11, 0x3C00, 0x7C22, 0x4000, 0x7C00, 0x8000, 0x3C00, 0x7E33)
            + Lanes(1, 16, 0x7C00, 0x7E44, 0x3C00, 0xFC55, 0x0000, 0x7C00, 0xFE66, 0x3C00) + Lanes(2, 16, 0x0000, 0xFE77, 0x7C88, 0x4200, 0x7C00, 0x0000, 0x3C00, 0x7C99);
        string nanD = Lanes(0, 64, QNanD, SNanD) + Lanes(1, 64, D(double.PositiveInfinity), 0x7FF8_0000_0000_0055) + Lanes(2, 64, D(0.0), 0xFFF0_0000_0000_0066);
        foreach (int rot in new[] { 0, 90, 180, 270 })
        {
            cases.Add(Fp(nanS + $"fcmla v0.4s, v1.4s, v2.4s, #{rot}"));
            cases.Add(Fp(nanS + $"fcmla v0.4s, v1.4s, v2.4s, #{rot}", DefaultNan));
            cases.Add(Fp(nanH + $"fcmla v0.8h, v1.8h, v2.8h, #{rot}"));
            cases.Add(Fp(nanD + $"fcmla v0.2d, v1.2d, v2.2d, #{rot}"));
            cases.Add(Fp(nanS + $"fcmla v0.4s, v1.4s, v2.s[1], #{rot}"));
            cases.Add(Fp(nanH + $"fcmla v0.8h, v1.8h, v2.h[2], #{rot}", DefaultNan));
        }
        foreach (int rot in new[] { 90, 270 })
        {
            cases.Add(Fp(nanS + $"fcadd v0.4s, v1.4s, v2.4s, #{rot}"));
            cases.Add(Fp(nanH + $"fcadd v0.8h, v1.8h, v2.8h, #{rot}"));
            cases.Add(Fp(nanD + $"fcadd v0.2d, v1.2d, v2.2d, #{rot}", DefaultNan));
            cases.Add(Fp(Lanes(1, 32, S(float.PositiveInfinity), S(float.NegativeInfinity)) + Lanes(2, 32, S(float.PositiveInfinity), S(float.PositiveInfinity))
                + $"fcadd v0.4s, v1.4s, v2.4s, #{rot}"));
        }
        // By element: every index and rotation (.4s: s[0], s[1]; .8h: h[0]–h[3]; .4h: h[0], h[1]), M:Rm above V15.
        foreach (int rot in new[] { 0, 90, 180, 270 })
        {
            string nearS = Exp(0, 0x3f) + Exp(1, 0x3f) + Exp(2, 0x3f), nearH = Near1H(0) + Near1H(1) + Near1H(2);
            for (int i = 0; i < 2; i++) cases.Add(Fp(nearS + $"fcmla v0.4s, v1.4s, v2.s[{i}], #{rot}"));
            for (int i = 0; i < 4; i++) cases.Add(Fp(nearH + $"fcmla v0.8h, v1.8h, v2.h[{i}], #{rot}"));
            for (int i = 0; i < 2; i++) cases.Add(Fp(nearH + $"fcmla v0.4h, v1.4h, v2.h[{i}], #{rot}"));
            cases.Add(Fp(nearS + $"fcmla v0.4s, v1.4s, v2.s[1], #{rot}", RoundUp));
            cases.Add(Fp(nearH + $"fcmla v0.8h, v1.8h, v2.h[3], #{rot}", RoundZero));
            cases.Add(Fp($"fcmla v0.4s, v1.4s, v2.s[{rot / 90 % 2}], #{rot}"));
        }
        cases.Add(Fp(WithV(31, "fcmla v0.8h, v1.8h, v31.h[3], #90")));
        cases.Add(Fp(WithV(17, "fcmla v0.4s, v1.4s, v17.s[1], #270")));
        cases.Add(Fp(DenormS(1) + DenormS(2) + "fcmla v0.4s, v1.4s, v2.s[0], #180", FlushZero));
        return [.. cases];
    }

    internal static (byte[]?, string?, string?) BuildCases(string[] cases, string tag)
    {
        string program = Arm64Sve2Tests.Program(cases, [], 0);
        const string windows = "for (int k = 0; k < 4; k++)", offsets = "k * 256";
        Assert.Contains(windows, program);
        Assert.Contains(offsets, program);
        program = program.Replace(windows, "for (int k = 0; k < 64; k++)").Replace(offsets, "k * 16");
        return Arm64Sve2Tests.Build(program, tag, "-Wno-unused-function", "-Wno-unused-const-variable", "-march=armv9-a+fp16+fp16fml");
    }

    private static readonly string[] Frint = FrintCases(), Jscvt = JscvtCases(), Fhm = FhmCases(), Fcma = FcmaCases();

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> FrintBuilt = new(() => BuildCases(Frint, "fpext-frintts"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> JscvtBuilt = new(() => BuildCases(Jscvt, "fpext-jscvt"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> FhmBuilt = new(() => BuildCases(Fhm, "fpext-fhm"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> FcmaBuilt = new(() => BuildCases(Fcma, "fpext-fcma"));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Frint32_and_frint64_give_the_values_and_fpsr_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(FrintBuilt.Value, Names(Frint), bits, V2(bits));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Fjcvtzs_gives_the_values_z_flag_and_fpsr_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(JscvtBuilt.Value, Names(Jscvt), bits, V2(bits));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Fmlal_and_fmlsl_give_the_values_and_fpsr_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(FhmBuilt.Value, Names(Fhm), bits, V2(bits));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Fcmla_and_fcadd_give_the_values_and_fpsr_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(FcmaBuilt.Value, Names(Fcma), bits, V2(bits));

    /// <summary>
    /// ACLE intrinsics over the data windows, built with gcc -O3 -march=armv9-a+fp16+fp16fml: __jcvt (FJCVTZS), vrnd32zq_f32 /
    /// vrnd32xq_f32 / vrnd64zq_f64 / vrnd64xq_f64 (FRINT32Z…), vcmlaq_f32 at each rotation, vcmlaq_laneq_f32 and
    /// vcaddq_rot90_f32 (FCMLA, FCADD), vfmlalq_low_f16 / vfmlslq_high_f16 / vfmlalq_laneq_low_f16 (FMLAL, FMLSL2); each
    /// digest folds in FPSR.
    /// </summary>
    private const string IntrinsicLoops = """
        #include <arm_acle.h>
        #include <arm_neon.h>
        static uint64_t fpsr_mix(uint64_t h) { return mix(h, __builtin_aarch64_get_fpsr()); }
        static uint64_t u64_at(int i) { uint64_t b; __builtin_memcpy(&b, A + i, 8); return b; }
        __attribute__((noinline)) static uint64_t jcvt_loop(void)
        {
            uint64_t h = 0; __builtin_aarch64_set_fpsr(0);
            for (int i = 0; i + 8 <= M; i += 8)
            {
                uint64_t b = u64_at(i); double x; __builtin_memcpy(&x, &b, 8);
                h = mix(h, (uint32_t)__jcvt(x));
                b = (b & 0x800FFFFFFFFFFFFFULL) | ((uint64_t)(0x3FE + (i / 8) % 40) << 52); __builtin_memcpy(&x, &b, 8);
                h = mix(h, (uint32_t)__jcvt(x));
            }
            return fpsr_mix(h);
        }
        __attribute__((noinline)) static uint64_t frint_loop(void)
        {
            uint64_t h = 0; __builtin_aarch64_set_fpsr(0);
            for (int i = 0; i + 16 <= M; i += 16)
            {
                uint32x4_t u = vld1q_u32((const uint32_t *)(A + i));
                u = vorrq_u32(vandq_u32(u, vdupq_n_u32(0x807fffffu)), vdupq_n_u32((uint32_t)(126 + (i / 16) % 40) << 23));
                float32x4_t f = vreinterpretq_f32_u32(u);
                uint64x2_t r = vreinterpretq_u64_f32(vrnd32zq_f32(f)), s = vreinterpretq_u64_f32(vrnd32xq_f32(f));
                uint64x2_t v = vld1q_u64((const uint64_t *)(B + i));
                v = vorrq_u64(vandq_u64(v, vdupq_n_u64(0x800FFFFFFFFFFFFFULL)), vdupq_n_u64((uint64_t)(0x3FE + (i / 16) % 70) << 52));
                float64x2_t d = vreinterpretq_f64_u64(v);
                uint64x2_t t = vreinterpretq_u64_f64(vrnd64zq_f64(d)), w = vreinterpretq_u64_f64(vrnd64xq_f64(d));
                h = mix(mix(h, vgetq_lane_u64(r, 0)), vgetq_lane_u64(r, 1)); h = mix(mix(h, vgetq_lane_u64(s, 0)), vgetq_lane_u64(s, 1));
                h = mix(mix(h, vgetq_lane_u64(t, 0)), vgetq_lane_u64(t, 1)); h = mix(mix(h, vgetq_lane_u64(w, 0)), vgetq_lane_u64(w, 1));
            }
            return fpsr_mix(h);
        }
        static float32x4_t near1(const uint8_t *p)
        {
            uint32x4_t u = vld1q_u32((const uint32_t *)p);
            return vreinterpretq_f32_u32(vorrq_u32(vandq_u32(u, vdupq_n_u32(0x80ffffffu)), vdupq_n_u32(0x3f000000u)));
        }
        __attribute__((noinline)) static uint64_t fcmla_loop(void)
        {
            uint64_t h = 0; __builtin_aarch64_set_fpsr(0);
            float32x4_t acc = vdupq_n_f32(0.0f);
            for (int i = 0; i + 16 <= M; i += 16)
            {
                float32x4_t a = near1(A + i), b = near1(B + i);
                acc = vcmlaq_f32(acc, a, b); acc = vcmlaq_rot90_f32(acc, a, b);
                acc = vcmlaq_rot180_f32(acc, b, a); acc = vcmlaq_rot270_f32(acc, a, b);
                acc = vcmlaq_laneq_f32(acc, a, b, 1);
                acc = vcaddq_rot90_f32(acc, a);
                uint64x2_t r = vreinterpretq_u64_f32(acc);
                h = mix(mix(h, vgetq_lane_u64(r, 0)), vgetq_lane_u64(r, 1));
            }
            return fpsr_mix(h);
        }
        __attribute__((noinline)) static uint64_t fmlal_loop(void)
        {
            uint64_t h = 0; __builtin_aarch64_set_fpsr(0);
            float32x4_t acc = vdupq_n_f32(1.0f);
            for (int i = 0; i + 16 <= M; i += 16)
            {
                uint16x8_t ua = vld1q_u16((const uint16_t *)(A + i)), ub = vld1q_u16((const uint16_t *)(C + i));
                ua = vorrq_u16(vandq_u16(ua, vdupq_n_u16(0x87ffu)), vdupq_n_u16(0x3800u));
                float16x8_t a = vreinterpretq_f16_u16(ua), b = vreinterpretq_f16_u16(ub);
                acc = vfmlalq_low_f16(acc, a, b); acc = vfmlslq_high_f16(acc, a, a);
                acc = vfmlalq_laneq_low_f16(acc, a, b, 5);
                uint64x2_t r = vreinterpretq_u64_f32(acc);
                h = mix(mix(h, vgetq_lane_u64(r, 0)), vgetq_lane_u64(r, 1));
            }
            return fpsr_mix(h);
        }

        """;

    private static readonly string[] LoopNames = ["__jcvt", "vrnd32zq/vrnd32xq/vrnd64zq/vrnd64xq", "vcmlaq/vcaddq", "vfmlalq/vfmlslq"];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> LoopBuilt = new(() =>
        Arm64Sve2Tests.BuildCompiledCases(IntrinsicLoops, ["jcvt_loop", "frint_loop", "fcmla_loop", "fmlal_loop"], "fpext-acle",
            "-march=armv9-a+fp16+fp16fml"));

    /// <summary>
    /// The ACLE intrinsics: gcc emitted FJCVTZS, FRINT32Z/32X/64Z/64X, FCMLA (vector and by element), FCADD, FMLAL and
    /// FMLSL2 (objdump of the guest), and the emulator's digests (values and FPSR) agree with qemu's.
    /// </summary>
    [SkippableFact]
    public void Compiled_acle_intrinsics_give_the_results_qemu_gives()
    {
        var built = LoopBuilt.Value;
        Skip.If(built.Guest is null, built.Why);
        string disassembly = Arm64Sve2Tests.DisassembleGuest("fpext-acle");
        Assert.Matches(@"\tfjcvtzs\tw\d+, d\d+", disassembly);
        foreach (string op in new[] { "frint32z", "frint32x" })
            Assert.Matches($@"\t{op}\tv\d+\.4s, v\d+\.4s", disassembly);
        foreach (string op in new[] { "frint64z", "frint64x" })
            Assert.Matches($@"\t{op}\tv\d+\.2d, v\d+\.2d", disassembly);
        Assert.Matches(@"\tfcmla\tv\d+\.4s, v\d+\.4s, v\d+\.4s, #270", disassembly);
        Assert.Matches(@"\tfcmla\tv\d+\.4s, v\d+\.4s, v\d+\.s\[1\], #0", disassembly);
        Assert.Matches(@"\tfcadd\tv\d+\.4s, v\d+\.4s, v\d+\.4s, #90", disassembly);
        Assert.Matches(@"\tfmlal\tv\d+\.4s, v\d+\.4h, v\d+\.4h", disassembly);
        Assert.Matches(@"\tfmlsl2\tv\d+\.4s, v\d+\.4h, v\d+\.4h", disassembly);
        Assert.Matches(@"\tfmlal\tv\d+\.4s, v\d+\.4h, v\d+\.h\[5\]", disassembly);
        Arm64Sve2Tests.CompareWithQemu(built, LoopNames, 128, V2(128));
    }

    /// <summary>The presets and which of FHM, FCMA, JSCVT, FRINTTS their ID registers offer.</summary>
    private static readonly (Arm64CpuModel Model, bool Fhm, bool Fcma, bool Jscvt, bool Frintts)[] Presets =
    [
        (Arm64CpuModel.NeoverseN1, false, false, false, false),
        (Arm64CpuModel.WithPointerAuth, false, false, false, false),
        (Arm64CpuModel.NeoverseV1, true, true, true, false),
        (Arm64CpuModel.NeoverseV2, true, true, true, true),
    ];

    /// <summary>
    /// The decode gate on every preset: where the ID register offers the feature the instruction runs with FP enabled
    /// (its result checked) and takes the FP access trap (EC 0x07, at the instruction) with CPACR_EL1.FPEN = 0; where it
    /// does not, it is UNDEFINED (EC 0x00, at the instruction) in both cases — the decode comes before
    /// CheckFPAdvSIMDEnabled64. V0 = 1.0 (single lanes), V1 = 1.0h or 2.5f or −3.0 (FJCVTZS) lanes, V2 = 2.0 lanes.
    /// </summary>
    [Theory]
    [InlineData(0x4E22EC20u, "fhm")]     // fmlal v0.4s, v1.4h, v2.4h: 1 + 1 × 2 = 3.0
    [InlineData(0x6FB2C820u, "fhm")]     // fmlsl2 v0.4s, v1.4h, v2.h[7]: 1 − 1 × 2 = −1.0
    [InlineData(0x6E82E420u, "fcma")]    // fcadd v0.4s, v1.4s, v2.4s, #90: (2.5 − 2, 2.5 + 2)
    [InlineData(0x6F821820u, "fcma")]    // fcmla v0.4s, v1.4s, v2.s[1], #0: (1 + 2.5 × 2, 1 + 2.5 × 2)
    [InlineData(0x6E42CC20u, "fcma")]    // fcmla v0.8h, v1.8h, v2.8h, #90 (FEAT_FP16 too)
    [InlineData(0x1E7E0020u, "jscvt")]   // fjcvtzs w0, d1: −3, Z = 1
    [InlineData(0x1E284020u, "frintts")] // frint32z s0, s1: 2.5f → 2.0f
    [InlineData(0x6E61F820u, "frintts")] // frint64x v0.2d, v1.2d
    public void Each_feature_runs_where_the_id_register_offers_it_and_is_undefined_elsewhere(uint insn, string feature)
    {
        foreach (var (model, fhm, fcma, jscvt, frintts) in Presets)
        {
            bool has = feature switch { "fhm" => fhm, "fcma" => fcma, "jscvt" => jscvt, _ => frintts };
            foreach (ulong cpacr in new[] { 0x30_0000UL, 0UL })
            {
                using var s = Arm64TestVm.RunningWords(model, insn);
                var v = s.AddVcpu();
                bool half = insn is 0x4E22EC20u or 0x6FB2C820u or 0x6E42CC20u;
                v.SetOneRegBytes(Arm64SimdTests.VRegId(0), Arm64SimdTests.Splat(half && insn == 0x6E42CC20u ? 0x3C00_3C00u : 0x3F80_0000u));
                v.SetOneRegBytes(Arm64SimdTests.VRegId(1), insn == 0x1E7E0020u ? [.. BitConverter.GetBytes(-3.0), .. new byte[8]]
                    : insn == 0x6E61F820u ? [.. BitConverter.GetBytes(2.5), .. BitConverter.GetBytes(-2.5)]
                    : Arm64SimdTests.Splat(half ? 0x3C00_3C00u : 0x4020_0000u));
                v.SetOneRegBytes(Arm64SimdTests.VRegId(2), Arm64SimdTests.Splat(half ? 0x4000_4000u : 0x4000_0000u));
                v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, cpacr);
                ulong isar0 = v.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1), isar1 = v.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1);
                ulong field = feature switch { "fhm" => (isar0 >> 48) & 0xF, "fcma" => (isar1 >> 16) & 0xF, "jscvt" => (isar1 >> 12) & 0xF, _ => (isar1 >> 32) & 0xF };
                Assert.Equal(has ? 1UL : 0UL, field);
                Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
                bool done = v.GetOneReg(KvmArm64Regs.X(9)) == Arm64Guest.UcallDone;
                Assert.True(done == (has && cpacr != 0), $"{model.Name}, CPACR_EL1 0x{cpacr:x}: done {done}");
                if (done)
                {
                    Assert.Equal(Expected(insn), Arm64SimdTests.V(v, 0));
                    if (insn == 0x1E7E0020u)
                    {
                        Assert.Equal(0xFFFF_FFFDUL, v.GetOneReg(KvmArm64Regs.X(0)));
                        Assert.Equal(0x4000_0000UL, v.GetOneReg(KvmArm64Regs.Pstate) & 0xF000_0000UL);
                    }
                    continue;
                }
                Assert.Equal(has ? 0x07UL : 0x00UL, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
                Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
            }
        }
    }

    /// <summary>
    /// The unallocated encodings of these groups: UNDEFINED (EC 0x00, at the instruction) on every preset, also with
    /// CPACR_EL1.FPEN trapping (the decode comes first). qemu-aarch64 -cpu max raises SIGILL for each of these words and
    /// runs the allocated neighbours (fcmla v0.4s, v1.4s, v2.4s, #0 0x6e82c420 …).
    /// </summary>
    [Theory]
    [InlineData(0x6E02C420u)] // fcmla (vector), size 00
    [InlineData(0x2EC2C420u)] // fcmla v0.1d…: size 11 with Q = 0
    [InlineData(0x6E02E420u)] // fcadd, size 00
    [InlineData(0x2EC2F420u)] // fcadd, size 11 with Q = 0
    [InlineData(0x6FA21820u)] // fcmla (by element) .4s with L = 1
    [InlineData(0x2F821820u)] // fcmla (by element) .2s: size 10 with Q = 0
    [InlineData(0x2F625820u)] // fcmla (by element) .4h with H = 1 (index 2, 3 need Q = 1)
    [InlineData(0x6FC21820u)] // fcmla (by element), size 11
    [InlineData(0x6F021820u)] // fcmla (by element), size 00
    [InlineData(0x4E62EC20u)] // fmlal (vector) with sz = 1
    [InlineData(0x2E62CC20u)] // fmlal2 (vector) with sz = 1
    [InlineData(0x1EE84020u)] // frint32z with ftype 11 (half)
    [InlineData(0x1EA84020u)] // frint32z with ftype 10
    [InlineData(0x0E61E820u)] // frint32z v0.1d: sz 1 with Q = 0
    public void An_unallocated_encoding_is_undefined_before_the_fp_trap(uint insn) => Arm64TestVm.AssertUndefinedBeforeFpTrap(insn);

    private static ulong FpcrId => KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U32 | KvmArm64Regs.KVM_REG_ARM_CORE |
                                   KvmArm64Regs.KVM_REG_ARM_CORE_REG(KvmArm64Regs.OffsetFpcr);

    /// <summary><paramref name="insn"/> on a Neoverse-V2 vCPU with D1 = <paramref name="d1"/> and FPCR = <paramref name="fpcr"/>, FPSR 0.</summary>
    private static KvmSharp.Vcpu RunOne(Arm64TestVm s, uint insn, ulong d1, uint fpcr)
    {
        var v = s.AddVcpu();
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x30_0000UL);
        v.SetOneRegBytes(Arm64SimdTests.VRegId(1), [.. BitConverter.GetBytes(d1), .. BitConverter.GetBytes(0x1234_5678_9ABC_DEF0UL)]);
        v.SetOneRegBytes(FpcrId, BitConverter.GetBytes(fpcr));
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        return v;
    }

    private const uint Ioc = 1, Ixc = 16, Idc = 128;

    /// <summary>
    /// FJCVTZS w0, d1 (C7.2 FJCVTZS, shared pseudocode FPToFixedJS): truncation toward zero whatever FPCR.RMode says, the
    /// result modulo 2^32, PSTATE.Z = 1 only for an exact in-range number that is not −0 nor a denormal flushed by
    /// FPCR.FZ (of either sign: IDC, Z = 0 — what qemu 9.1 fixed for its issue 2375; qemu 7.2 sets Z for a positive
    /// one); NaN and ∞ give 0 with IOC, out of range the wrapped value with IOC, an inexact value IXC. N, C, V are 0.
    /// </summary>
    [Theory]
    [InlineData(3.0, 0u, 3u, true, 0u)]
    [InlineData(-3.0, 0u, 0xFFFF_FFFDu, true, 0u)]
    [InlineData(2.75, 1u << 22, 2u, false, Ixc)]            // RP does not apply: toward zero
    [InlineData(-2.75, 2u << 22, 0xFFFF_FFFEu, false, Ixc)] // RM neither
    [InlineData(-0.0, 0u, 0u, false, 0u)]
    [InlineData(0.0, 0u, 0u, true, 0u)]
    [InlineData(4294967301.0, 0u, 5u, false, Ioc)]
    [InlineData(-2147483648.0, 0u, 0x8000_0000u, true, 0u)]
    [InlineData(2147483648.0, 0u, 0x8000_0000u, false, Ioc)]
    [InlineData(-2147483648.5, 0u, 0x8000_0000u, false, Ixc)]
    [InlineData(1e20, 0u, 0x6310_0000u, false, Ioc)]
    [InlineData(double.NaN, 0u, 0u, false, Ioc)]
    [InlineData(double.PositiveInfinity, 0u, 0u, false, Ioc)]
    [InlineData(double.Epsilon, 0u, 0u, false, Ixc)]
    [InlineData(double.Epsilon, 1u << 24, 0u, false, Idc)]   // FZ: flushed, Z = 0
    [InlineData(-double.Epsilon, 1u << 24, 0u, false, Idc)]
    public void Fjcvtzs_follows_fptofixedjs(double input, uint fpcr, uint expected, bool z, uint fpsr)
    {
        using var s = Arm64TestVm.RunningWords(V2(128), 0x1E7E_0020); // fjcvtzs w0, d1
        var v = RunOne(s, 0x1E7E_0020, BitConverter.DoubleToUInt64Bits(input), fpcr);
        Assert.Equal(expected, v.GetOneReg(KvmArm64Regs.X(0)));
        Assert.Equal(z ? 0x4000_0000UL : 0, v.GetOneReg(KvmArm64Regs.Pstate) & 0xF000_0000UL);
        Assert.Equal(fpsr, Arm64SimdTests.Fpsr(v));
    }

    /// <summary>
    /// FRINT32Z/FRINT32X/FRINT64X (C7.2, shared pseudocode FPRoundIntN): out of the 32- or 64-bit range, NaN or ∞ give
    /// the most negative integer (−2^31: 0xCF000000 / 0xC1E0…; −2^63: 0xC3E0…) with IOC and no IXC; in range the
    /// rounded value, IXC when it changed (in both forms); a zero result keeps the operand's sign.
    /// </summary>
    [Theory]
    [InlineData(0x1E28_4020u, 0x4F40_0000UL, 0u, 0xCF00_0000UL, Ioc)]             // frint32z s0, s1: 3 × 2^30
    [InlineData(0x1E28_4020u, 0xCF00_0000UL, 0u, 0xCF00_0000UL, 0u)]              // −2^31 exactly: in range
    [InlineData(0x1E28_4020u, 0x7FC0_0000UL, 0u, 0xCF00_0000UL, Ioc)]             // a quiet NaN: no NaN result
    [InlineData(0x1E28_4020u, 0xBF00_0000UL, 0u, 0x8000_0000UL, Ixc)]             // −0.5 → −0, IXC even for Z
    [InlineData(0x1E28_C020u, 0x3FC0_0000UL, 2u << 22, 0x3F80_0000UL, Ixc)]       // frint32x s0, s1: 1.5, RM → 1
    [InlineData(0x1E69_C020u, 0x7FF0_0000_0000_0000UL, 0u, 0xC3E0_0000_0000_0000UL, Ioc)] // frint64x d0, d1: +∞
    [InlineData(0x1E69_C020u, 0x43DF_FFFF_FFFF_FFFFUL, 1u << 22, 0x43DF_FFFF_FFFF_FFFFUL, 0u)] // 2^63 − 1024: exact
    [InlineData(0x1E69_4020u, 0x43E0_0000_0000_0000UL, 0u, 0xC3E0_0000_0000_0000UL, Ioc)]   // frint64z: 2^63
    [InlineData(0x1E68_C020u, 0x41E0_0000_0000_0000UL, 0u, 0xC1E0_0000_0000_0000UL, Ioc)]   // frint32x d0, d1: 2^31
    [InlineData(0x1E68_C020u, 0x0000_0000_0000_0001UL, 1u << 24, 0UL, Idc)]                 // FZ: a denormal is +0
    public void Frint32_and_frint64_follow_fproundintn(uint insn, ulong input, uint fpcr, ulong expected, uint fpsr)
    {
        using var s = Arm64TestVm.RunningWords(V2(128), insn);
        var v = RunOne(s, insn, input, fpcr);
        Assert.Equal((UInt128)expected, Arm64SimdTests.V(v, 0));
        Assert.Equal(fpsr, Arm64SimdTests.Fpsr(v));
    }

    private static UInt128 Expected(uint insn)
    {
        static UInt128 Pairs(uint low, uint high)
        {
            ulong d = ((ulong)high << 32) | low;
            return ((UInt128)d << 64) | d;
        }
        return insn switch
        {
            0x4E22EC20u => Pairs(0x4040_0000u, 0x4040_0000u), // 3.0
            0x6FB2C820u => Pairs(0xBF80_0000u, 0xBF80_0000u), // −1.0
            0x6E82E420u => Pairs(0x3F00_0000u, 0x4090_0000u), // (0.5, 4.5)
            0x6F821820u => Pairs(0x40C0_0000u, 0x40C0_0000u), // 6.0
            0x6E42CC20u => Pairs(0x4200_BC00u, 0x4200_BC00u), // halves (1 − 1 × 2, 1 + 1 × 2) = (−1, 3)
            0x1E7E0020u => Pairs(0x3F80_0000u, 0x3F80_0000u), // V0 untouched
            0x1E284020u => 0x4000_0000u,                      // 2.0f, the rest of V0 zeroed
            _ => ((UInt128)BitConverter.DoubleToUInt64Bits(-2.0) << 64) | BitConverter.DoubleToUInt64Bits(2.0), // RN: ties to even
        };
    }
}
