// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Sve;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The SVE BF16 and I8MM instructions (A64Interpreter.SveBf16.cs) and FPCR.FZ16 in the SVE half-precision arithmetic
/// (A64Interpreter.SveHalf.cs) against qemu-aarch64 -cpu max (FPCR.EBF stays 0, so qemu's non-EBF BFloat16 rules are
/// compared), with <see cref="Arm64Sve2Tests"/>'s C program and helpers: one inline-asm block per case, here on 64
/// windows of half random, half edge-value data (edge bytes make zeros, infinities, NaNs and denormals of every
/// element size), digesting Z0, P2, NZCV and FPSR after the case under the FPCR it names. Blocks reshape the data
/// first to reach the rounding edges: BFloat16 operands near 1 (so round-to-odd sums cancel), near 2^−65 and 2^−63
/// (products at the 2^−126 flush threshold, cancelling against addends there) and near 2^64 (products at the overflow threshold); singles whose low halves are the
/// BFCVT ties. Compared at 128-, 256- and 512-bit vectors. The FZ16 cases include the SVE2 FLOGB .H and FMLALB/T,
/// FMLSLB/T (A64Interpreter.Sve2Fp.cs). The AdvSIMD forms are in <see cref="Arm64SimdBf16Tests"/>, with these helpers. Also: UNDEFINED on a CPU whose ID_AA64ZFR0_EL1 lacks BF16
/// or I8MM, and hand-computed round-to-odd, flush and FZ16 results. Skips, with the reason, without the cross compiler
/// or qemu-aarch64.
/// </summary>
public class Arm64SveBf16Tests
{
    internal const uint RoundUp = 1u << 22, RoundDown = 2u << 22, RoundZero = 3u << 22, FlushZero = 1u << 24, DefaultNan = 1u << 25;

    /// <summary>FPCR.FZ16 (bit 19).</summary>
    internal const uint Fz16 = 1u << 19;

    /// <summary><paramref name="insn"/> under FPCR = <paramref name="fpcr"/>, FPSR cleared first and stored to the digested buffer.</summary>
    internal static string Fp(string insn, uint fpcr = 0) =>
        $"msr fpsr, xzr\nmov x11, #0x{fpcr:x}\nmsr fpcr, x11\n{insn}\nmrs x11, fpsr\nstr x11, [x13]\nmsr fpcr, xzr";

    /// <summary>BFloat16 elements of Zr with exponent 0x7E or 0x7F (magnitudes in [0.5, 2)), sign and fraction from the data.</summary>
    internal static string Near1(string r) => $"and {r}.h, {r}.h, #0x80ff\norr {r}.h, {r}.h, #0x3f00\n";

    /// <summary>BFloat16 exponent 0x3E or 0x3F: products of two are at the 2^−126 flush threshold.</summary>
    internal static string Tiny(string r) => Near1(r) + $"sub {r}.h, {r}.h, #0x20, lsl #8\n";

    /// <summary>BFloat16 exponent 0x40 or 0x41: products with a <see cref="Tiny"/> one straddle 2^−126.</summary>
    internal static string Low(string r) => Near1(r) + $"sub {r}.h, {r}.h, #0x1f, lsl #8\n";

    /// <summary>BFloat16 exponent 0xBE or 0xBF: products of two are at the 2^128 overflow threshold.</summary>
    internal static string Huge(string r) => Near1(r) + $"add {r}.h, {r}.h, #0x20, lsl #8\n";

    /// <summary>Single addends in Z0 near 1, at the smallest normal (exponent 0 or 1), or huge (0xFE or 0xFF).</summary>
    internal const string Near1S = "and z0.s, z0.s, #0x80ffffff\norr z0.s, z0.s, #0x3f000000\n",
        TinyS = "and z0.s, z0.s, #0x80ffffff\n", HugeS = "orr z0.s, z0.s, #0x7f000000\n";

    /// <summary>Half elements of Zr with exponent 0 or 1 (denormals, zeros and the smallest normals).</summary>
    internal static string SmallH(string r) => $"and {r}.h, {r}.h, #0x87ff\n";

    /// <summary>Half elements with exponent 4 (2^−11 up to 2^−10): their products are tiny.</summary>
    internal static string MidH(string r) => $"and {r}.h, {r}.h, #0x83ff\norr {r}.h, {r}.h, #0x1000\n";

    private static readonly string[] Bf16Cases =
    [
        Fp("bfdot z0.s, z1.h, z2.h"),
        Fp("bfdot z0.s, z1.h, z2.h", RoundUp | FlushZero | DefaultNan),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfdot z0.s, z1.h, z2.h"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfdot z0.s, z1.h, z2.h", RoundDown),
        Fp(TinyS + Tiny("z1") + Tiny("z2") + "bfdot z0.s, z1.h, z2.h"),
        Fp(TinyS + Tiny("z1") + Low("z2") + "bfdot z0.s, z1.h, z2.h"),
        Fp(Tiny("z1") + Low("z2") + "bfdot z0.s, z1.h, z2.h"),
        Fp(TinyS + Low("z1") + Tiny("z2") + "bfdot z0.s, z1.h, z2.h[2]"),
        Fp(HugeS + Huge("z1") + Huge("z2") + "bfdot z0.s, z1.h, z2.h"),
        Fp(Huge("z1") + Huge("z2") + "bfdot z0.s, z1.h, z2.h", RoundZero),
        Fp("bfdot z0.s, z1.h, z2.h[1]"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfdot z0.s, z1.h, z2.h[0]"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfdot z0.s, z1.h, z2.h[3]"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "mov z7.d, z2.d\nbfdot z0.s, z1.h, z7.h[2]"),
        Fp("bfmmla z0.s, z1.h, z2.h"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmmla z0.s, z1.h, z2.h"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmmla z0.s, z1.h, z2.h", RoundUp | FlushZero),
        Fp(TinyS + Tiny("z1") + Low("z2") + "bfmmla z0.s, z1.h, z2.h"),
        Fp(HugeS + Huge("z1") + Huge("z2") + "bfmmla z0.s, z1.h, z2.h"),
        Fp("bfmlalb z0.s, z1.h, z2.h"),
        Fp("bfmlalt z0.s, z1.h, z2.h"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmlalb z0.s, z1.h, z2.h"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmlalt z0.s, z1.h, z2.h", RoundUp),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmlalb z0.s, z1.h, z2.h", RoundDown),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmlalt z0.s, z1.h, z2.h", RoundZero),
        Fp("bfmlalb z0.s, z1.h, z2.h", FlushZero),
        Fp("bfmlalt z0.s, z1.h, z2.h", DefaultNan),
        Fp(TinyS + Tiny("z1") + Low("z2") + "bfmlalb z0.s, z1.h, z2.h"),
        Fp(TinyS + Tiny("z1") + Low("z2") + "bfmlalt z0.s, z1.h, z2.h", FlushZero),
        Fp(HugeS + Huge("z1") + Huge("z2") + "bfmlalb z0.s, z1.h, z2.h", RoundZero),
        Fp("bfmlalb z0.s, z1.h, z2.h[0]"),
        Fp("bfmlalt z0.s, z1.h, z2.h[7]", RoundUp),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmlalb z0.s, z1.h, z2.h[5]"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "mov z7.d, z2.d\nbfmlalt z0.s, z1.h, z7.h[2]", FlushZero),
        Fp("bfcvt z0.h, p1/m, z1.s"),
        Fp("bfcvt z0.h, p1/m, z1.s", RoundUp),
        Fp("bfcvt z0.h, p1/m, z1.s", RoundDown),
        Fp("bfcvt z0.h, p1/m, z1.s", RoundZero),
        Fp("bfcvt z0.h, p1/m, z1.s", FlushZero),
        Fp("bfcvt z0.h, p1/m, z1.s", DefaultNan),
        Fp("and z1.s, z1.s, #0xffff8000\nbfcvt z0.h, p1/m, z1.s"),
        Fp("and z1.s, z1.s, #0xffff8000\nbfcvt z0.h, p1/m, z1.s", RoundUp),
        Fp("orr z1.s, z1.s, #0x7fff\nbfcvt z0.h, p1/m, z1.s"),
        Fp("orr z1.s, z1.s, #0x7fff\nbfcvt z0.h, p1/m, z1.s", RoundDown),
        Fp("and z1.s, z1.s, #0x807fffff\nbfcvt z0.h, p1/m, z1.s"),
        Fp("and z1.s, z1.s, #0x807fffff\nbfcvt z0.h, p1/m, z1.s", FlushZero),
        Fp("orr z1.s, z1.s, #0x7f000000\nbfcvt z0.h, p1/m, z1.s"),
        Fp("orr z1.s, z1.s, #0x7f000000\nbfcvt z0.h, p1/m, z1.s", RoundZero | DefaultNan),
        Fp("bfcvtnt z0.h, p1/m, z1.s"),
        Fp("and z1.s, z1.s, #0xffff8000\nbfcvtnt z0.h, p1/m, z1.s"),
        Fp("bfcvtnt z0.h, p1/m, z1.s", FlushZero | DefaultNan | RoundUp),
        Fp("and z1.s, z1.s, #0x807fffff\nbfcvtnt z0.h, p1/m, z1.s"),
    ];

    private static readonly string[] I8mmCases =
    [
        "smmla z0.s, z1.b, z2.b",
        "ummla z0.s, z1.b, z2.b",
        "usmmla z0.s, z1.b, z2.b",
        "usdot z0.s, z1.b, z2.b",
        "usdot z0.s, z1.b, z2.b[0]",
        "usdot z0.s, z1.b, z2.b[3]",
        "sudot z0.s, z1.b, z2.b[1]",
        "mov z7.d, z2.d\nsudot z0.s, z1.b, z7.b[2]",
        "mov z7.d, z2.d\nusdot z0.s, z1.b, z7.b[1]",
    ];

    /// <summary>SVE half-precision arithmetic under FPCR.FZ16 (and once without, as the baseline).</summary>
    private static readonly string[] Fz16Cases =
    [
        Fp(SmallH("z0") + SmallH("z1") + "fadd z0.h, p1/m, z0.h, z1.h"),
        Fp(SmallH("z0") + SmallH("z1") + "fadd z0.h, p1/m, z0.h, z1.h", Fz16),
        Fp(SmallH("z0") + SmallH("z1") + "fadd z0.h, p1/m, z0.h, z1.h", Fz16 | FlushZero | DefaultNan),
        Fp(SmallH("z1") + SmallH("z2") + "fsub z0.h, z1.h, z2.h", Fz16 | RoundUp),
        Fp(MidH("z1") + MidH("z2") + "fmul z0.h, z1.h, z2.h", Fz16),
        Fp(MidH("z1") + MidH("z2") + "fmul z0.h, z1.h, z2.h", Fz16 | RoundUp),
        Fp(MidH("z1") + MidH("z2") + "fmul z0.h, z1.h, z2.h", Fz16 | RoundDown),
        Fp(MidH("z1") + MidH("z2") + "fmul z0.h, z1.h, z2.h", Fz16 | RoundZero),
        Fp(MidH("z1") + "orr z2.h, z2.h, #0x3c00\nand z2.h, z2.h, #0xbfff\nfmul z0.h, z1.h, z2.h", Fz16),
        Fp("fmul z0.h, z1.h, z2.h", Fz16),
        Fp(SmallH("z0") + "fmul z0.h, p1/m, z0.h, #0.5", Fz16),
        Fp(SmallH("z0") + MidH("z1") + MidH("z2") + "fmla z0.h, p1/m, z1.h, z2.h", Fz16),
        Fp(SmallH("z0") + MidH("z1") + MidH("z2") + "fmls z0.h, p1/m, z1.h, z2.h", Fz16 | RoundDown),
        Fp("fmla z0.h, p1/m, z1.h, z2.h", Fz16),
        Fp(SmallH("z0") + "fdiv z0.h, p1/m, z0.h, z1.h", Fz16),
        Fp(SmallH("z0") + SmallH("z1") + "fdiv z0.h, p1/m, z0.h, z1.h", Fz16),
        Fp(SmallH("z1") + "fsqrt z0.h, p1/m, z1.h", Fz16),
        Fp(SmallH("z0") + SmallH("z1") + "fmax z0.h, p1/m, z0.h, z1.h", Fz16),
        Fp(SmallH("z0") + SmallH("z1") + "fminnm z0.h, p1/m, z0.h, z1.h", Fz16),
        Fp(SmallH("z0") + SmallH("z1") + "fabd z0.h, p1/m, z0.h, z1.h", Fz16),
        Fp(SmallH("z0") + SmallH("z1") + "fcmgt p2.h, p1/z, z0.h, z1.h", Fz16),
        Fp(SmallH("z0") + SmallH("z1") + "fcmeq p2.h, p1/z, z0.h, z1.h", Fz16),
        Fp(SmallH("z0") + "fcmeq p2.h, p1/z, z0.h, #0.0", Fz16),
        Fp(SmallH("z1") + "faddv h0, p1, z1.h", Fz16),
        Fp(SmallH("z1") + "fadda h0, p1, h0, z1.h", Fz16),
        Fp(SmallH("z0") + SmallH("z1") + "faddp z0.h, p1/m, z0.h, z1.h", Fz16),
        Fp(SmallH("z1") + "fcvtzs z0.h, p1/m, z1.h", Fz16),
        Fp(SmallH("z1") + "fcvtzu z0.s, p1/m, z1.h", Fz16),
        Fp(SmallH("z1") + "fcvt z0.s, p1/m, z1.h", Fz16),
        Fp("fcvt z0.h, p1/m, z1.s", Fz16),
        Fp(SmallH("z1") + "flogb z0.h, p1/m, z1.h"),
        Fp(SmallH("z1") + "flogb z0.h, p1/m, z1.h", Fz16),
        Fp(SmallH("z1") + "flogb z0.h, p1/m, z1.h", Fz16 | FlushZero),
        Fp(SmallH("z1") + SmallH("z2") + "fmlalb z0.s, z1.h, z2.h"),
        Fp(SmallH("z1") + SmallH("z2") + "fmlalb z0.s, z1.h, z2.h", Fz16),
        Fp(SmallH("z1") + MidH("z2") + "fmlalt z0.s, z1.h, z2.h", Fz16 | RoundUp),
        Fp(TinyS + SmallH("z1") + SmallH("z2") + "fmlslb z0.s, z1.h, z2.h", Fz16 | FlushZero),
        Fp(SmallH("z1") + SmallH("z2") + "fmlslt z0.s, z1.h, z2.h", Fz16 | DefaultNan),
        Fp(SmallH("z1") + SmallH("z2") + "fmlalb z0.s, z1.h, z2.h[3]", Fz16),
        Fp(SmallH("z1") + SmallH("z2") + "mov z7.d, z2.d\nfmlslt z0.s, z1.h, z7.h[6]", Fz16),
        Fp("fmlalt z0.s, z1.h, z2.h", Fz16),
    ];

    /// <summary>Arm64Sve2Tests' program for <paramref name="cases"/>, on 64 windows 16 bytes apart instead of 4 of 256.</summary>
    private static string Program(string[] cases)
    {
        string program = Arm64Sve2Tests.Program(cases, [], 0);
        const string windows = "for (int k = 0; k < 4; k++)", offsets = "k * 256";
        Assert.Contains(windows, program);
        Assert.Contains(offsets, program);
        return program.Replace(windows, "for (int k = 0; k < 64; k++)").Replace(offsets, "k * 16");
    }

    internal static (byte[]?, string?, string?) Build(string[] cases, string tag) =>
        Arm64Sve2Tests.Build(Program(cases), tag, "-Wno-unused-function", "-Wno-unused-const-variable", "-march=armv9-a+bf16+i8mm");

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Bf16Built = new(() => Build(Bf16Cases, "sve-bf16"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> I8mmBuilt = new(() => Build(I8mmCases, "sve-i8mm"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Fz16Built = new(() => Build(Fz16Cases, "sve-fz16"));

    internal static string[] Names(string[] cases) => [.. cases.Select(c => c.Replace("\n", "; "))];

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    public void Sve_bf16_instructions_give_the_values_and_fpsr_flags_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(Bf16Built.Value, Names(Bf16Cases), bits);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    public void Sve_i8mm_instructions_give_the_digests_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(I8mmBuilt.Value, Names(I8mmCases), bits);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    public void Sve_half_precision_arithmetic_under_fpcr_fz16_gives_the_values_and_flags_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(Fz16Built.Value, Names(Fz16Cases), bits);

    /// <summary>The SVE2 test CPU (Neoverse-V1-like, BF16 = I8MM = 1) with ID_AA64ZFR0_EL1.BF16 and/or I8MM cleared.</summary>
    private static Arm64CpuModel Without(bool bf16, bool i8mm) => Arm64Sve2Tests.Sve2Cpu(128) with
    {
        SveFeatures = Arm64Sve2Tests.Sve2Cpu(128).SveFeatures & ~((bf16 ? 0xFUL << 20 : 0) | (i8mm ? 0xFUL << 44 : 0)),
    };

    /// <summary>
    /// BFDOT, BFCVT, BFMMLA, BFMLALB, SMMLA and USDOT: UNDEFINED (EC 0x00, at the instruction) on a CPU whose
    /// ID_AA64ZFR0_EL1 lacks the feature — even with CPACR_EL1.ZEN trapping, the decode comes first — and executed on
    /// one with it (the other feature's absence does not matter).
    /// </summary>
    [Theory]
    [InlineData(0x64628020u, true, false, false)] // bfdot z0.s, z1.h, z2.h
    [InlineData(0x658AA020u, true, false, false)] // bfcvt z0.h, p0/m, z1.s
    [InlineData(0x6462E420u, true, false, false)] // bfmmla z0.s, z1.h, z2.h
    [InlineData(0x64E28020u, true, false, false)] // bfmlalb z0.s, z1.h, z2.h
    [InlineData(0x64628020u, false, true, true)]
    [InlineData(0x658AA020u, false, true, true)]
    [InlineData(0x6462E420u, false, true, true)]
    [InlineData(0x64E28020u, false, true, true)]
    [InlineData(0x45029820u, false, true, false)] // smmla z0.s, z1.b, z2.b
    [InlineData(0x44827820u, false, true, false)] // usdot z0.s, z1.b, z2.b
    [InlineData(0x45029820u, true, false, true)]
    [InlineData(0x44827820u, true, false, true)]
    [InlineData(0x45429820u, false, false, false)] // uns = 01: reserved, UNDEFINED even with I8MM
    public void Bf16_and_i8mm_instructions_follow_their_id_aa64zfr0_fields(uint insn, bool noBf16, bool noI8mm, bool executes)
    {
        foreach (ulong cpacr in new[] { 0x33_0000UL, 0x30_0000UL })
        {
            using var s = Arm64TestVm.RunningWords(Without(noBf16, noI8mm), insn);
            var v = s.AddVcpu(1u << KvmArm64Constants.KVM_ARM_VCPU_SVE);
            v.FinalizeSve();
            v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, cpacr);
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
            bool trapped = cpacr != 0x33_0000UL;
            Assert.Equal(executes && !trapped, v.GetOneReg(KvmArm64Regs.X(9)) == Arm64Guest.UcallDone);
            if (executes && !trapped) continue;
            Assert.Equal(executes ? 0x19UL : 0x00UL, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
            Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
        }
    }

    /// <summary>
    /// Every BF16 and I8MM encoding runs on the SVE-only Neoverse-V1-like preset (ID_AA64ZFR0_EL1.SVEver = 0, BF16 = I8MM
    /// = 1): they are SVE instructions, not SVE2 — BFCVTNT included, although it sits in an SVE2 encoding group.
    /// </summary>
    [Theory]
    [InlineData(0x658AA020u)] // bfcvt z0.h, p0/m, z1.s
    [InlineData(0x648AA020u)] // bfcvtnt z0.h, p0/m, z1.s
    [InlineData(0x64628020u)] // bfdot z0.s, z1.h, z2.h
    [InlineData(0x647F4020u)] // bfdot z0.s, z1.h, z7.h[3]
    [InlineData(0x64E28020u)] // bfmlalb z0.s, z1.h, z2.h
    [InlineData(0x64E28420u)] // bfmlalt z0.s, z1.h, z2.h
    [InlineData(0x64FF4820u)] // bfmlalb z0.s, z1.h, z7.h[7]
    [InlineData(0x64E74C20u)] // bfmlalt z0.s, z1.h, z7.h[1]
    [InlineData(0x6462E420u)] // bfmmla z0.s, z1.h, z2.h
    [InlineData(0x45029820u)] // smmla z0.s, z1.b, z2.b
    [InlineData(0x45829820u)] // usmmla z0.s, z1.b, z2.b
    [InlineData(0x45C29820u)] // ummla z0.s, z1.b, z2.b
    [InlineData(0x44827820u)] // usdot z0.s, z1.b, z2.b
    [InlineData(0x44BF1820u)] // usdot z0.s, z1.b, z7.b[3]
    [InlineData(0x44BF1C20u)] // sudot z0.s, z1.b, z7.b[3]
    public void Bf16_and_i8mm_instructions_run_on_an_sve_cpu_without_sve2(uint insn)
    {
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseV1, 0x2518E3E0 /* ptrue p0.b */, insn);
        var v = s.AddVcpu(1u << KvmArm64Constants.KVM_ARM_VCPU_SVE);
        v.FinalizeSve();
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
    }

    /// <summary>
    /// Runs <paramref name="insns"/> on the Neoverse V2-like preset (128-bit vectors) with Z1/Z2 filled with the given
    /// 32-bit words (repeated), Z0 with <paramref name="z0"/>, P0 all true and FPCR = <paramref name="fpcr"/>: Z0's first
    /// word and FPSR.
    /// </summary>
    private static (uint Z0, ulong Fpsr) Run(uint[] insns, uint z0, uint z1, uint z2, uint fpcr)
    {
        using var s = new Arm64TestVm(a =>
        {
            a.Emit(0x2518E3E0); // ptrue p0.b
            a.Emit(0xD2800000u | ((fpcr >> 16) << 5) | (1u << 21) | 11); // movz x11, #fpcr>>16, lsl #16
            a.Emit(0xD51B440B); // msr fpcr, x11
            foreach (uint i in insns) a.Emit(i);
            a.Emit(0xD53B4423); // mrs x3, fpsr
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.NeoverseV2 });
        Assert.Equal(0u, fpcr & 0xFFFF);
        var v = s.AddVcpu(1u << KvmArm64Constants.KVM_ARM_VCPU_SVE);
        v.FinalizeSve();
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000);
        static byte[] Fill(uint w)
        {
            var b = new byte[256];
            for (int i = 0; i < 64; i++) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4 * i), w);
            return b;
        }
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0), Fill(z0));
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(1, 0), Fill(z1));
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(2, 0), Fill(z2));
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        byte[] result = v.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0));
        Assert.Equal(new byte[240], result[16..]); // 128-bit vectors: the rest of Z0 is zeroed
        return (BinaryPrimitives.ReadUInt32LittleEndian(result), v.GetOneReg(KvmArm64Regs.X(3)));
    }

    /// <summary>
    /// BFDOT's BFloat16 rules (BFMul, BFAdd, BFRound without FEAT_EBF16) by hand, for Zda.S += Zn.H[0] × Zm.H[0] +
    /// Zn.H[1] × Zm.H[1]: 1 ± 2^−30 rounds to odd (0x3F800001 and 0x3F7FFFFF, where RNE gives 1.0) whatever FPCR.RMode
    /// says; an exact sum stays exact; a denormal addend is a zero of its sign; a product below 2^−126 is flushed
    /// (2^−64 × 2^−64); 2^64 × 2^64 overflows to ∞; a NaN operand with a payload gives the default NaN with FPCR.DN = 0;
    /// ∞ × 0 is the default NaN; and FPSR stays 0 throughout (no floating-point exception).
    /// </summary>
    [Theory]
    [InlineData(0x3F80_0000u, 0x0000_3F80u, 0x0000_3080u, 0u, 0x3F80_0001u)]
    [InlineData(0x3F80_0000u, 0x0000_3F80u, 0x0000_3080u, RoundDown | FlushZero, 0x3F80_0001u)]
    [InlineData(0x3F80_0000u, 0x0000_3F80u, 0x0000_B080u, 0u, 0x3F7F_FFFFu)]
    [InlineData(0x3F80_0000u, 0x0000_3F80u, 0x0000_3F80u, 0u, 0x4000_0000u)]
    [InlineData(0x0000_0001u, 0u, 0u, 0u, 0u)]
    [InlineData(0x8000_0001u, 0x8000_8000u, 0u, 0u, 0x8000_0000u)]
    [InlineData(0u, 0x0000_1F80u, 0x0000_1F80u, 0u, 0u)]
    [InlineData(0u, 0x0000_5F80u, 0x0000_5F80u, 0u, 0x7F80_0000u)]
    [InlineData(0x3F80_0000u, 0x0000_7F81u, 0x0000_3F80u, 0u, 0x7FC0_0000u)]
    [InlineData(0x3F80_0000u, 0x0000_7F80u, 0u, 0u, 0x7FC0_0000u)]
    public void Bfdot_follows_the_bfloat16_rules(uint addend, uint n, uint m, uint fpcr, uint expected)
    {
        var (z0, fpsr) = Run([0x64628020], addend, n, m, fpcr); // bfdot z0.s, z1.h, z2.h
        Assert.Equal(expected, z0);
        Assert.Equal(0UL, fpsr);
    }

    /// <summary>
    /// FPCR.FZ16 in SVE half-precision arithmetic by hand (two equal halves per word): FPUnpackBase flushes a denormal
    /// operand without IDC (0x0001 + 0x0001 is 0, not 0x0002; FCVTZS of 0x0001 is an exact 0, no IXC); FPRoundBase
    /// flushes a result tiny before rounding with UFC alone (2^−14 × 0.5; 2^−14 × (1 − 2^−11), which RNE would round up
    /// to 2^−14 with UFC and IXC), keeping its sign; a result at 2^−14 or above after its exact value is not tiny is
    /// rounded as usual ((1 + 2^−10) × 2^−14 × (1 − 2^−11) → 2^−14, IXC).
    /// </summary>
    [Theory]
    [InlineData(0x65420020u, 0x0001_0001u, 0x0001_0001u, 0u, 0x0002_0002u, 0UL)]                 // fadd z0.h, z1.h, z2.h
    [InlineData(0x65420020u, 0x0001_0001u, 0x0001_0001u, Fz16, 0u, 0UL)]
    [InlineData(0x65420820u, 0x0400_0400u, 0x3800_3800u, 0u, 0x0200_0200u, 0UL)]                 // fmul z0.h, z1.h, z2.h
    [InlineData(0x65420820u, 0x0400_0400u, 0x3800_3800u, Fz16, 0u, 8UL)]
    [InlineData(0x65420820u, 0x8400_8400u, 0x3800_3800u, Fz16, 0x8000_8000u, 8UL)]
    [InlineData(0x65420820u, 0x0400_0400u, 0x3BFF_3BFFu, 0u, 0x0400_0400u, 24UL)]
    [InlineData(0x65420820u, 0x0400_0400u, 0x3BFF_3BFFu, Fz16, 0u, 8UL)]
    [InlineData(0x65420820u, 0x0401_0401u, 0x3BFF_3BFFu, Fz16, 0x0400_0400u, 16UL)]
    [InlineData(0x655AA020u, 0x0001_0001u, 0u, 0u, 0u, 16UL)]                                    // fcvtzs z0.h, p0/m, z1.h
    [InlineData(0x655AA020u, 0x0001_0001u, 0u, Fz16, 0u, 0UL)]
    public void Fz16_flushes_half_operands_without_idc_and_tiny_half_results_with_ufc_alone(uint insn, uint z1, uint z2, uint fpcr, uint expected, ulong expectedFpsr)
    {
        var (z0, fpsr) = Run([insn], 0xFFFF_FFFF, z1, z2, fpcr);
        Assert.Equal(expected, z0);
        Assert.Equal(expectedFpsr, fpsr);
    }
}
