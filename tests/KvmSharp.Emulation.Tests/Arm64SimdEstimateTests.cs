// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using static KvmSharp.Emulation.Tests.Arm64SveBf16Tests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The AdvSIMD reciprocal estimates and steps (FRECPE, FRSQRTE, FRECPS, FRSQRTS, FRECPX, URECPE, URSQRTE at half,
/// single and double precision, vector and scalar), FCVTXN/FCVTXN2 and PMUL/PMULL/PMULL2
/// (A64Interpreter.SimdEstimates.cs, A64Interpreter.SimdPolynomial.cs) against qemu-aarch64 -cpu max with
/// <see cref="Arm64SveBf16Tests"/>'s guest program (64 windows of random data with edge bytes in V0–V2; the digest covers
/// Z0 and the FPSR each case stores) at 128- and 512-bit vectors: the operands shaped (with SVE logical immediates)
/// into denormals, the FRECPE overflow range, the FZ flush range, near 1, near the FCVTXN overflow and underflow
/// bounds, under each FPCR.RMode and FZ/FZ16/DN; a compiled 1/sqrtf loop (gcc -Ofast: FRSQRTE + FRSQRTS); and the
/// decode order (UNDEFINED before the CPACR_EL1.FPEN trap).
/// </summary>
public class Arm64SimdEstimateTests
{
    private const string Fp16 = ".arch_extension fp16\n", Crypto = ".arch_extension crypto\n";

    /// <summary>Single lanes of Vr with exponent 0 (zeros and denormals; fraction top bits 00: the FRECPE overflow range).</summary>
    private static string DenS(int r) => $"and z{r}.s, z{r}.s, #0x807fffff\n";

    /// <summary>Single lanes with exponent 0xFC or 0xFD (the FPCR.FZ flush range of FRECPE, ≥ 2^126, starts at 0xFD).</summary>
    private static string HugeS(int r) => $"and z{r}.s, z{r}.s, #0x80ffffff\norr z{r}.s, z{r}.s, #0x7e000000\n";

    /// <summary>Single lanes near 1 (exponent 0x7E or 0x7F).</summary>
    private static string Near1S(int r) => $"and z{r}.s, z{r}.s, #0x80ffffff\norr z{r}.s, z{r}.s, #0x3f000000\n";

    private static string DenD(int r) => $"and z{r}.d, z{r}.d, #0x800fffffffffffff\n";

    private static string DenH(int r) => $"and z{r}.h, z{r}.h, #0x83ff\n";

    /// <summary>Half lanes with exponent 0x1C or 0x1D (the FZ16 flush range of FRECPE starts at 0x1D).</summary>
    private static string HugeH(int r) => $"and z{r}.h, z{r}.h, #0x87ff\norr z{r}.h, z{r}.h, #0x7000\n";

    private static string Positive(int r, string t) => $"and z{r}.{t}, z{r}.{t}, #{(t == "s" ? "0x7fffffff" : t == "d" ? "0x7fffffffffffffff" : "0x7fff")}\n";

    /// <summary>Double lanes with exponent 0x47E/0x47F (single overflow at 2^128) or, with <paramref name="tiny"/>, 0x380/0x381 (2^−127, 2^−126).</summary>
    private static string EdgeD(int r, bool tiny) =>
        $"and z{r}.d, z{r}.d, #0x801fffffffffffff\nmov x11, #0x{(tiny ? "3800" : "47e0")}000000000000\ndup v3.2d, x11\norr v{r}.16b, v{r}.16b, v3.16b\n";

    private static readonly uint[] Modes = [0, RoundUp, RoundDown, RoundZero];

    private static readonly string[] EstimateCases =
    [
        Fp("frecpe v0.4s, v1.4s"),
        Fp("frecpe v0.2s, v1.2s"),
        Fp("frecpe v0.2d, v1.2d"),
        Fp("frecpe s0, s1"),
        Fp("frecpe d0, d1"),
        .. Modes.Select(m => Fp(DenS(1) + "frecpe v0.4s, v1.4s", m)),
        .. Modes.Select(m => Fp(DenD(1) + "frecpe v0.2d, v1.2d", m)),
        Fp(DenS(1) + "frecpe v0.4s, v1.4s", FlushZero),
        Fp(DenS(1) + "frecpe v0.4s, v1.4s", DefaultNan),
        Fp(HugeS(1) + "frecpe v0.4s, v1.4s"),
        Fp(HugeS(1) + "frecpe v0.4s, v1.4s", FlushZero),
        Fp("orr z1.d, z1.d, #0x7fc0000000000000\nfrecpe v0.2d, v1.2d", FlushZero),
        Fp("frecpe v0.4s, v1.4s", DefaultNan),
        Fp("fmov v1.4s, #4.0\nfrecpe v0.4s, v1.4s"),
        Fp("fmov v1.2d, #-0.5\nfrecpe v0.2d, v1.2d"),
        Fp("movi v1.2d, #0\nfneg v2.4s, v1.4s\nzip1 v1.4s, v1.4s, v2.4s\nfrecpe v0.4s, v1.4s"),
        Fp("frsqrte v0.4s, v1.4s"),
        Fp("frsqrte v0.2s, v1.2s"),
        Fp("frsqrte v0.2d, v1.2d"),
        Fp("frsqrte s0, s1"),
        Fp("frsqrte d0, d1", DefaultNan),
        Fp(Positive(1, "s") + "frsqrte v0.4s, v1.4s"),
        Fp(Positive(1, "d") + "frsqrte v0.2d, v1.2d"),
        Fp(DenS(1) + "frsqrte v0.4s, v1.4s"),
        Fp(DenS(1) + Positive(1, "s") + "frsqrte v0.4s, v1.4s"),
        Fp(DenS(1) + "frsqrte v0.4s, v1.4s", FlushZero),
        Fp(DenD(1) + Positive(1, "d") + "frsqrte v0.2d, v1.2d"),
        Fp(DenD(1) + "frsqrte d0, d1", FlushZero),
        Fp("fmov v1.4s, #4.0\nfrsqrte v0.4s, v1.4s"),
        Fp("fmov v1.2d, #2.0\nfrsqrte v0.2d, v1.2d"),
        Fp("frecpx s0, s1"),
        Fp("frecpx d0, d1"),
        Fp(DenS(1) + "frecpx s0, s1", FlushZero),
        Fp(DenD(1) + "frecpx d0, d1"),
        Fp("frecpx s0, s1", DefaultNan),
        Fp("urecpe v0.4s, v1.4s"),
        Fp("urecpe v0.2s, v1.2s"),
        Fp("ursqrte v0.4s, v1.4s"),
        Fp("ursqrte v0.2s, v1.2s"),
        Fp("ushr v1.4s, v1.4s, #1\nursqrte v0.4s, v1.4s"),
        Fp("orr v1.4s, #0x80, lsl #24\nurecpe v0.4s, v1.4s"),
        Fp("orr v1.4s, #0x40, lsl #24\nursqrte v0.4s, v1.4s"),
    ];

    private static readonly string[] HalfCases =
    [
        Fp(Fp16 + "frecpe v0.8h, v1.8h"),
        Fp(Fp16 + "frecpe v0.4h, v1.4h"),
        Fp(Fp16 + "frecpe h0, h1"),
        .. Modes.Select(m => Fp(Fp16 + DenH(1) + "frecpe v0.8h, v1.8h", m)),
        Fp(Fp16 + DenH(1) + "frecpe v0.8h, v1.8h", Fz16),
        Fp(Fp16 + DenH(1) + "frecpe v0.8h, v1.8h", FlushZero),
        Fp(Fp16 + HugeH(1) + "frecpe v0.8h, v1.8h", Fz16),
        Fp(Fp16 + HugeH(1) + "frecpe v0.8h, v1.8h"),
        Fp(Fp16 + "frecpe v0.8h, v1.8h", DefaultNan),
        Fp(Fp16 + "frsqrte v0.8h, v1.8h"),
        Fp(Fp16 + "frsqrte v0.4h, v1.4h"),
        Fp(Fp16 + Positive(1, "h") + "frsqrte v0.8h, v1.8h"),
        Fp(Fp16 + DenH(1) + Positive(1, "h") + "frsqrte h0, h1"),
        Fp(Fp16 + DenH(1) + "frsqrte v0.8h, v1.8h", Fz16),
        Fp(Fp16 + "frecpx h0, h1"),
        Fp(Fp16 + DenH(1) + "frecpx h0, h1", Fz16),
        Fp(Fp16 + "frecps v0.8h, v1.8h, v2.8h"),
        Fp(Fp16 + "frecps v0.4h, v1.4h, v2.4h", DefaultNan),
        Fp(Fp16 + "frecps h0, h1, h2"),
        Fp(Fp16 + "frsqrts v0.8h, v1.8h, v2.8h"),
        Fp(Fp16 + "frsqrts h0, h1, h2"),
        .. Modes.Select(m => Fp(Fp16 + "frecps v0.8h, v1.8h, v2.8h", m)),
        .. Modes.Select(m => Fp(Fp16 + "frsqrts v0.8h, v1.8h, v2.8h", m)),
        Fp(Fp16 + DenH(1) + "frsqrts v0.8h, v1.8h, v2.8h", Fz16),
        Fp(Fp16 + DenH(2) + "frecps v0.8h, v1.8h, v2.8h", Fz16),
    ];

    private static readonly string[] StepCases =
    [
        Fp("frecps v0.4s, v1.4s, v2.4s"),
        Fp("frecps v0.2s, v1.2s, v2.2s"),
        Fp("frecps v0.2d, v1.2d, v2.2d"),
        Fp("frecps s0, s1, s2"),
        Fp("frecps d0, d1, d2"),
        Fp("frsqrts v0.4s, v1.4s, v2.4s"),
        Fp("frsqrts v0.2d, v1.2d, v2.2d"),
        Fp("frsqrts s0, s1, s2"),
        Fp("frsqrts d0, d1, d2", DefaultNan),
        Fp("frecps v0.4s, v1.4s, v2.4s", DefaultNan),
        .. Modes.Select(m => Fp(Near1S(1) + Near1S(2) + "frecps v0.4s, v1.4s, v2.4s", m)),
        .. Modes.Select(m => Fp(Near1S(1) + Near1S(2) + "frsqrts v0.4s, v1.4s, v2.4s", m)),
        .. Modes.Select(m => Fp("frecps v0.4s, v1.4s, v2.4s", m)),
        .. Modes.Select(m => Fp("frsqrts v0.4s, v1.4s, v2.4s", m)),
        Fp(DenS(1) + "frecps v0.4s, v1.4s, v2.4s", FlushZero),
        Fp(DenS(2) + "frsqrts v0.4s, v1.4s, v2.4s", FlushZero),
        Fp(DenS(1) + DenS(2) + "frsqrts v0.4s, v1.4s, v2.4s", RoundUp),
        Fp(DenD(1) + "frecps v0.2d, v1.2d, v2.2d"),
        Fp(DenD(1) + "frsqrts v0.2d, v1.2d, v2.2d"),
        Fp(DenD(1) + DenD(2) + "frsqrts v0.2d, v1.2d, v2.2d"),
        // 0 × ∞ (2.0 and 1.5, no IOC), ∞ × finite, −0 × −∞.
        Fp("movi v1.2d, #0\nmovi v2.4s, #0x7f, lsl #24\norr v2.4s, #0x80, lsl #16\nfrecps v0.4s, v1.4s, v2.4s"),
        Fp("movi v1.2d, #0\nmovi v2.4s, #0x7f, lsl #24\norr v2.4s, #0x80, lsl #16\nfrsqrts v0.4s, v2.4s, v1.4s"),
        Fp("movi v2.4s, #0x7f, lsl #24\norr v2.4s, #0x80, lsl #16\nfrecps v0.4s, v1.4s, v2.4s"),
        Fp("movi v1.2d, #0\nfneg v1.2d, v1.2d\nmovi v2.2d, #0\nmvn v2.16b, v2.16b\nushr v2.2d, v2.2d, #52\nshl v2.2d, v2.2d, #52\nfrsqrts v0.2d, v1.2d, v2.2d"),
        // Exact zero results: 2 − 1 × 2 and 3 − 1.5 × 2 under RN and RM.
        Fp("fmov v1.4s, #1.0\nfmov v2.4s, #2.0\nfrecps v0.4s, v1.4s, v2.4s", RoundDown),
        Fp("fmov v1.2d, #1.5\nfmov v2.2d, #2.0\nfrsqrts v0.2d, v1.2d, v2.2d", RoundDown),
        Fp("fmov v1.4s, #1.5\nfmov v2.4s, #2.0\nfrsqrts v0.4s, v1.4s, v2.4s"),
    ];

    private static string Near1D(int r) => $"and z{r}.d, z{r}.d, #0x800fffffffffffff\norr z{r}.d, z{r}.d, #0x3fe0000000000000\n";

    private static readonly string[] DoubleStepCases =
    [
        .. Modes.Select(m => Fp(Near1D(1) + Near1D(2) + "frecps v0.2d, v1.2d, v2.2d", m)),
        .. Modes.Select(m => Fp(Near1D(1) + Near1D(2) + "frsqrts v0.2d, v1.2d, v2.2d", m)),
        // Products far below an ulp of 2.0 / 1.5 in every mode.
        .. Modes.Select(m => Fp(DenD(1) + Near1D(2) + "frecps v0.2d, v1.2d, v2.2d", m)),
        .. Modes.Select(m => Fp(DenD(1) + DenD(2) + "frsqrts d0, d1, d2", m)),
        Fp(DenD(1) + "frecps d0, d1, d2", FlushZero),
    ];

    private static readonly string[] ConvertCases =
    [
        Fp("fcvtxn v0.2s, v1.2d"),
        Fp("fcvtxn2 v0.4s, v1.2d"),
        Fp("fcvtxn s0, d1"),
        Fp(EdgeD(1, tiny: false) + "fcvtxn v0.2s, v1.2d"),
        Fp(EdgeD(1, tiny: false) + "fcvtxn2 v0.4s, v1.2d", RoundUp),
        Fp(EdgeD(1, tiny: true) + "fcvtxn v0.2s, v1.2d"),
        Fp(EdgeD(1, tiny: true) + "fcvtxn s0, d1", FlushZero),
        Fp(DenD(1) + "fcvtxn v0.2s, v1.2d", FlushZero),
        Fp("fcvtxn v0.2s, v1.2d", DefaultNan),
        Fp("fmov v1.2d, #1.0\nfcvtxn v0.2s, v1.2d"),
        Fp(Crypto + "pmul v0.16b, v1.16b, v2.16b"),
        Fp(Crypto + "pmul v0.8b, v1.8b, v2.8b"),
        Fp(Crypto + "pmull v0.8h, v1.8b, v2.8b"),
        Fp(Crypto + "pmull2 v0.8h, v1.16b, v2.16b"),
        Fp(Crypto + "pmull v0.1q, v1.1d, v2.1d"),
        Fp(Crypto + "pmull2 v0.1q, v1.2d, v2.2d"),
        Fp(Crypto + "pmull2 v0.1q, v1.2d, v1.2d"),
    ];

    private static readonly string[] CryptoCases =
    [
        Crypto + "aese v0.16b, v1.16b",
        Crypto + "aesd v0.16b, v1.16b",
        Crypto + "aesmc v0.16b, v1.16b",
        Crypto + "aesimc v0.16b, v1.16b",
        Crypto + "aese v0.16b, v1.16b\naesmc v0.16b, v0.16b\naesd v0.16b, v2.16b\naesimc v0.16b, v0.16b",
        Crypto + "sha1c q0, s1, v2.4s",
        Crypto + "sha1p q0, s1, v2.4s",
        Crypto + "sha1m q0, s1, v2.4s",
        Crypto + "sha1su0 v0.4s, v1.4s, v2.4s",
        Crypto + "sha1h s0, s1",
        Crypto + "sha1su1 v0.4s, v1.4s",
        Crypto + "sha256h q0, q1, v2.4s",
        Crypto + "sha256h2 q0, q1, v2.4s",
        Crypto + "sha256su0 v0.4s, v1.4s",
        Crypto + "sha256su1 v0.4s, v1.4s, v2.4s",
        "addhn v0.8b, v1.8h, v2.8h",
        "addhn2 v0.8h, v1.4s, v2.4s",
        "addhn v0.2s, v1.2d, v2.2d",
        "raddhn v0.8b, v1.8h, v2.8h",
        "raddhn2 v0.4s, v1.2d, v2.2d",
        "subhn v0.4h, v1.4s, v2.4s",
        "subhn2 v0.16b, v1.8h, v2.8h",
        "rsubhn v0.2s, v1.2d, v2.2d",
        "rsubhn2 v0.8h, v1.4s, v2.4s",
    ];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> CryptoBuilt = new(() => Build(CryptoCases, "simd-crypto"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> EstimateBuilt = new(() => Build(EstimateCases, "simd-est"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> HalfBuilt = new(() => Build(HalfCases, "simd-est-half"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> StepBuilt = new(() => Build(StepCases, "simd-est-step"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> DoubleStepBuilt = new(() => Build(DoubleStepCases, "simd-est-dstep"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> LoopBuilt = new(BuildLoops);
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> ConvertBuilt = new(() => Build(ConvertCases, "simd-est-cvt"));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Frecpe_frsqrte_frecpx_urecpe_ursqrte_give_the_values_and_fpsr_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(EstimateBuilt.Value, Names(EstimateCases), bits);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void The_half_precision_estimates_and_steps_give_the_values_and_fpsr_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(HalfBuilt.Value, Names(HalfCases), bits);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Frecps_and_frsqrts_give_the_values_and_fpsr_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(StepBuilt.Value, Names(StepCases), bits);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Double_frecps_and_frsqrts_round_in_every_mode_as_qemu_does(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(DoubleStepBuilt.Value, Names(DoubleStepCases), bits);

    /// <summary>
    /// 1/sqrtf and 1/x loops in functions built for armv8.2-a (no SVE) with -ffast-math -mlow-precision-recip-sqrt
    /// -mlow-precision-div, over operands made from the data windows.
    /// </summary>
    private const string EstimateLoops = """
        __attribute__((noinline, target("arch=armv8.2-a"))) static void rsqrt_loop(float *restrict d, const float *restrict a, int n) { for (int i = 0; i < n; i++) d[i] = 1.0f / __builtin_sqrtf(a[i]); }
        __attribute__((noinline, target("arch=armv8.2-a"))) static void recip_loop(float *restrict d, const float *restrict a, int n) { for (int i = 0; i < n; i++) d[i] = 1.0f / a[i]; }
        static float fin[256], fout[256];
        static void fill(int k) { for (int i = 0; i < 256; i++) fin[i] = (float)(A[i + k] + 1) * (float)(B[i + k] + 1) * (float)(C[i + k] + 1) / 4096.0f; }
        __attribute__((noinline)) static uint64_t est0(void) { uint64_t h = 0; for (int k = 0; k < 512; k += 128) { fill(k); rsqrt_loop(fout, fin, 256 - k / 16); h = bytes(h, (const uint8_t *)fout, sizeof fout); } return h; }
        __attribute__((noinline)) static uint64_t est1(void) { uint64_t h = 0; for (int k = 0; k < 512; k += 128) { fill(k); recip_loop(fout, fin, 256 - k / 16); h = bytes(h, (const uint8_t *)fout, sizeof fout); } return h; }

        """;

    private static readonly string[] LoopNames = ["1/sqrtf loop (frsqrte, frsqrts)", "1/x loop (frecpe, frecps)"];

    private static (byte[]?, string?, string?) BuildLoops() =>
        Arm64Sve2Tests.BuildCompiledCases(EstimateLoops, ["est0", "est1"], "simd-estloop", "-ffast-math", "-mlow-precision-recip-sqrt", "-mlow-precision-div");

    /// <summary>
    /// The compiled reciprocal square root and reciprocal loops: gcc emitted AdvSIMD FRSQRTE + FRSQRTS and FRECPE + FRECPS
    /// (objdump of the guest), and the emulator's results agree with qemu's.
    /// </summary>
    [SkippableFact]
    public void Compiled_reciprocal_and_rsqrt_loops_give_the_results_qemu_gives()
    {
        var built = LoopBuilt.Value;
        Skip.If(built.Guest is null, built.Why);
        string disassembly = Arm64Sve2Tests.DisassembleGuest("simd-estloop");
        Assert.Matches(@"\tfrsqrte\tv\d+\.4s, v\d+\.4s", disassembly);
        Assert.Matches(@"\tfrsqrts\tv\d+\.4s, v\d+\.4s, v\d+\.4s", disassembly);
        Assert.Matches(@"\tfrecpe\tv\d+\.4s, v\d+\.4s", disassembly);
        Assert.Matches(@"\tfrecps\tv\d+\.4s, v\d+\.4s, v\d+\.4s", disassembly);
        Arm64Sve2Tests.CompareWithQemu(built, LoopNames, 128);
    }

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Fcvtxn_and_the_polynomial_multiplies_give_the_values_and_fpsr_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(ConvertBuilt.Value, Names(ConvertCases), bits);

    /// <summary>
    /// The cryptographic extension (AESE/AESD/AESMC/AESIMC, SHA1*, SHA256*: A64Interpreter.SimdCrypto.cs) and the
    /// narrowing high-half adds (ADDHN/RADDHN/SUBHN/RSUBHN: A64Interpreter.SimdNarrowHigh.cs) on the data windows.
    /// </summary>
    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void The_crypto_and_high_narrowing_instructions_give_the_values_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(CryptoBuilt.Value, Names(CryptoCases), bits);

    /// <summary>
    /// Unallocated encodings of the group — URECPE with sz 1, FCVTXN (vector and scalar) with sz 0, PMUL and PMULL with
    /// size 01 or 10, FRECPE/FRECPS on a .1D vector, ADDHN with size 11, the unallocated sizes and opcodes of the
    /// cryptographic groups — are UNDEFINED (EC 0x00, at the instruction) on every preset, also with
    /// CPACR_EL1.FPEN trapping: the decode comes before CheckFPAdvSIMDEnabled64.
    /// </summary>
    [Theory]
    [InlineData(0x4EE1C820u)] // urecpe, sz 1
    [InlineData(0x2E216820u)] // fcvtxn v0.2s, v1.2d with sz 0
    [InlineData(0x7E216820u)] // fcvtxn s0, d1 with sz 0
    [InlineData(0x6E629C20u)] // pmul, size 01
    [InlineData(0x0E62E020u)] // pmull, size 01
    [InlineData(0x0EA2E020u)] // pmull, size 10
    [InlineData(0x0EE1D820u)] // frecpe, sz 1 Q 0
    [InlineData(0x0EE2FC20u)] // frecps, sz 1 Q 0
    [InlineData(0x0EE24020u)] // addhn, size 11
    [InlineData(0x4E684820u)] // aese, size 01
    [InlineData(0x4E288820u)] // cryptographic AES, opcode 01000
    [InlineData(0x5E027020u)] // cryptographic three-register SHA, opcode 111
    [InlineData(0x5E283820u)] // cryptographic two-register SHA, opcode 00011
    public void An_unallocated_size_is_undefined_before_the_fp_trap(uint insn)
        => Arm64TestVm.AssertUndefinedBeforeFpTrap(insn);

    /// <summary>
    /// On every preset FRECPE (4.0 → RecipEstimate(256) = 511: 0x3E7F8000), the half FRECPE (FEAT_FP16:
    /// ID_AA64PFR0_EL1.AdvSIMD = 1; 4.0 = 0x4400 → 0x33FC) and PMULL .1Q (FEAT_PMULL: ID_AA64ISAR0_EL1.AES = 2; the
    /// carry-less square of 0x0303… spreads each bit to twice its position: 0x0005 per halfword) run, and with
    /// CPACR_EL1.FPEN trapping take the FP access trap (EC 0x07) at the instruction.
    /// </summary>
    [Theory]
    [InlineData(0x4EA1D820u, 0x4080_0000u, 0x3E7F_8000_3E7F_8000UL)] // frecpe v0.4s, v1.4s
    [InlineData(0x4EF9D820u, 0x4400_4400u, 0x33FC_33FC_33FC_33FCUL)] // frecpe v0.8h, v1.8h
    [InlineData(0x4EE1E020u, 0x0303_0303u, 0x0005_0005_0005_0005UL)] // pmull2 v0.1q, v1.2d, v1.2d
    public void The_estimates_and_pmull_run_on_every_preset_and_follow_cpacr_fpen(uint insn, uint fill, ulong low)
    {
        Arm64TestVm.AssertRunsOnEveryPresetAndFollowsFpen(insn, v =>
        {
            v.SetOneRegBytes(Arm64SimdTests.VRegId(1), Arm64SimdTests.Splat(fill));
            Assert.Equal(2UL, (v.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1) >> 4) & 0xF);
            Assert.Equal(1UL, (v.GetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1) >> 20) & 0xF);
        }, v => Assert.Equal(((UInt128)low << 64) | low, Arm64SimdTests.V(v, 0)));
    }
}
