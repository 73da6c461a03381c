// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Emulation.Tests.Arm64SveBf16Tests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The AdvSIMD DotProd and RDM instructions (A64Interpreter.SimdDotProd.cs, A64Interpreter.SimdRdm.cs) against
/// qemu-aarch64 -cpu max with <see cref="Arm64SveBf16Tests"/>'s guest program and data windows (V0–V2 hold the low 128
/// bits of the loaded Z0–Z2; the digest covers all of Z0 and the FPSR each case stores, so FPSR.QC is compared), at
/// 128- and 512-bit vectors; an auto-vectorised C dot product (gcc -O3 -march=armv8.2-a+dotprod, checked to contain
/// SDOT and UDOT); and the ID_AA64ISAR0_EL1 decode gate.
/// </summary>
public class Arm64SimdDotProdTests
{
    /// <summary>V17 (Rm with the M bit set in the by-element forms) around <paramref name="insn"/>, saved and restored on the stack.</summary>
    private static string WithV(int r, string insn) => $"str q{r}, [sp, #-16]!\nmov v{r}.16b, v2.16b\n{insn}\nldr q{r}, [sp], #16";

    /// <summary>All H lanes of V1 and V2 = 0x8000 (−1 × −1 doubled: the one product that overflows).</summary>
    private const string MinH = "movi v1.8h, #0x80, lsl #8\nmovi v2.8h, #0x80, lsl #8\n";

    /// <summary>All S lanes of V1 and V2 = 0x80000000.</summary>
    private const string MinS = "movi v1.4s, #0x80, lsl #24\nmovi v2.4s, #0x80, lsl #24\n";

    private static readonly string[] DotCases =
    [
        "sdot v0.4s, v1.16b, v2.16b",
        "sdot v0.2s, v1.8b, v2.8b",
        "udot v0.4s, v1.16b, v2.16b",
        "udot v0.2s, v1.8b, v2.8b",
        "sdot v0.4s, v1.16b, v2.4b[0]",
        "sdot v0.2s, v1.8b, v2.4b[3]",
        "udot v0.4s, v1.16b, v2.4b[1]",
        "udot v0.2s, v1.8b, v2.4b[2]",
        WithV(17, "sdot v0.4s, v1.16b, v17.4b[2]"),
        WithV(17, "udot v0.2s, v1.8b, v17.4b[3]"),
        // Wrapping: 0x7fffffff + 4 × 255 × 255, and 0x80000000 + 4 × (−128 × 127).
        "mvni v0.4s, #0x80, lsl #24\nmovi v1.16b, #0xff\nmovi v2.16b, #0xff\nudot v0.4s, v1.16b, v2.16b",
        "movi v0.4s, #0x80, lsl #24\nmovi v1.16b, #0x80\nmovi v2.16b, #0x7f\nsdot v0.4s, v1.16b, v2.16b",
        "sdot v1.4s, v1.16b, v1.16b\nmov v0.16b, v1.16b",
    ];

    private static readonly string[] RdmCases =
    [
        Fp("sqrdmlah v0.8h, v1.8h, v2.8h"),
        Fp("sqrdmlah v0.4h, v1.4h, v2.4h"),
        Fp("sqrdmlah v0.4s, v1.4s, v2.4s"),
        Fp("sqrdmlsh v0.2s, v1.2s, v2.2s"),
        Fp("sqrdmlsh v0.8h, v1.8h, v2.8h"),
        Fp("sqrdmlah v0.8h, v1.8h, v2.h[7]"),
        Fp("sqrdmlsh v0.4h, v1.4h, v2.h[2]"),
        Fp("sqrdmlah v0.2s, v1.2s, v2.s[3]"),
        Fp("sqrdmlsh v0.4s, v1.4s, v2.s[1]"),
        Fp(WithV(15, "sqrdmlah v0.8h, v1.8h, v15.h[5]")),
        Fp(WithV(17, "sqrdmlsh v0.4s, v1.4s, v17.s[2]")),
        Fp("sqrdmlah h0, h1, h2"),
        Fp("sqrdmlsh h0, h1, h2"),
        Fp("sqrdmlah s0, s1, s2"),
        Fp("sqrdmlsh s0, s1, s2"),
        Fp("sqrdmlah h0, h1, v2.h[6]"),
        Fp("sqrdmlsh s0, s1, v2.s[3]"),
        // Saturation: 0x8000 × 0x8000 doubled with a zero accumulator, with the data's accumulator, and subtracted.
        Fp("movi v0.2d, #0\n" + MinH + "sqrdmlah v0.8h, v1.8h, v2.8h"),
        Fp(MinH + "sqrdmlah v0.8h, v1.8h, v2.8h"),
        Fp(MinH + "sqrdmlsh v0.4h, v1.4h, v2.h[3]"),
        Fp("movi v0.2d, #0\n" + MinS + "sqrdmlah v0.4s, v1.4s, v2.s[0]"),
        Fp(MinS + "sqrdmlsh v0.4s, v1.4s, v2.4s"),
        Fp("movi v0.2d, #0\n" + MinH + "sqrdmlah h0, h1, h2"),
        Fp(MinS + "sqrdmlsh s0, s1, v2.s[1]"),
        // Accumulate overflow: 0x7fff + 0x4000 × 0x4000 doubled, 0x8000 − that; S the same.
        Fp("mvni v0.8h, #0x80, lsl #8\nmovi v1.8h, #0x40, lsl #8\nmovi v2.8h, #0x40, lsl #8\nsqrdmlah v0.8h, v1.8h, v2.8h"),
        Fp("movi v0.8h, #0x80, lsl #8\nmovi v1.8h, #0x40, lsl #8\nmovi v2.8h, #0x40, lsl #8\nsqrdmlsh v0.8h, v1.8h, v2.8h"),
        Fp("mvni v0.4s, #0x80, lsl #24\nmovi v1.4s, #0x40, lsl #24\nmovi v2.4s, #0x40, lsl #24\nsqrdmlah s0, s1, s2"),
        Fp("movi v0.4s, #0x80, lsl #24\nmovi v1.4s, #0x40, lsl #24\nmovi v2.4s, #0x40, lsl #24\nsqrdmlsh v0.2s, v1.2s, v2.s[1]"),
        // Just below saturation: no QC.
        Fp("mvni v0.8h, #0x80, lsl #8\nmovi v1.8h, #0x40, lsl #8\nmovi v2.8h, #0x40, lsl #8\nsqrdmlsh v0.8h, v1.8h, v2.8h"),
    ];

    /// <summary>
    /// gcc -O3 dot products of signed and unsigned bytes in functions built for armv8.2-a+dotprod without SVE (the rest
    /// of the program is armv9-a), over prefixes of the data windows.
    /// </summary>
    private const string DotLoops = """
        #define DOT(NAME, T) __attribute__((noinline, target("arch=armv8.2-a+dotprod"))) \
            static uint32_t NAME(const T *a, const T *b, int n) { uint32_t s = 0; for (int i = 0; i < n; i++) s += (uint32_t)(a[i] * b[i]); return s; }
        DOT(sdot_loop, int8_t)
        DOT(udot_loop, uint8_t)
        __attribute__((noinline)) static uint64_t dot0(void) { uint64_t h = 0; for (int n = 0; n < M - 16; n += 37) h = mix(h, sdot_loop((const int8_t *)A, (const int8_t *)B + 16, n)); return h; }
        __attribute__((noinline)) static uint64_t dot1(void) { uint64_t h = 0; for (int n = 0; n < M - 16; n += 37) h = mix(h, udot_loop(C + 16, A, n)); return h; }

        """;

    private static readonly string[] LoopNames = ["sdot loop (int8)", "udot loop (uint8)"];

    private static (byte[]?, string?, string?) BuildLoops() =>
        Arm64Sve2Tests.BuildCompiledCases(DotLoops, ["dot0", "dot1"], "simd-dotloop");

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> DotBuilt = new(() => Build(DotCases, "simd-dotprod"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> RdmBuilt = new(() => Build(RdmCases, "simd-rdm"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> LoopBuilt = new(BuildLoops);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Sdot_and_udot_give_the_digests_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(DotBuilt.Value, Names(DotCases), bits);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Sqrdmlah_and_sqrdmlsh_give_the_values_and_fpsr_qc_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(RdmBuilt.Value, Names(RdmCases), bits);

    /// <summary>
    /// The auto-vectorised dot products: gcc emitted AdvSIMD SDOT and UDOT (objdump of the guest), and the emulator's
    /// sums agree with qemu's.
    /// </summary>
    [SkippableFact]
    public void An_auto_vectorised_dot_product_loop_gives_the_result_qemu_gives()
    {
        var built = LoopBuilt.Value;
        Skip.If(built.Guest is null, built.Why);
        string disassembly = Arm64Sve2Tests.DisassembleGuest("simd-dotloop");
        Assert.Matches(@"\tsdot\tv\d+\.4s, v\d+\.16b, v\d+\.16b", disassembly);
        Assert.Matches(@"\tudot\tv\d+\.4s, v\d+\.16b, v\d+\.16b", disassembly);
        Arm64Sve2Tests.CompareWithQemu(built, LoopNames, 128);
    }

    /// <summary>
    /// The ID_AA64ISAR0_EL1 gate (<see cref="A64Interpreter.SimdIsar0Undefined"/>): allocated with the host's register
    /// (DP = RDM = 1), UNDEFINED with the field cleared (DP for SDOT/UDOT, RDM for SQRDMLAH/SQRDMLSH, the other field
    /// irrelevant) and for SQRDMLAH/SQRDMLSH size 00 or 11; null for an encoding outside the group.
    /// </summary>
    [Theory]
    [InlineData(0x4E829420u, 44, true)]  // sdot v0.4s, v1.16b, v2.16b
    [InlineData(0x2E829420u, 44, true)]  // udot v0.2s, v1.8b, v2.8b
    [InlineData(0x4FA2E820u, 44, true)]  // sdot v0.4s, v1.16b, v2.4b[3]
    [InlineData(0x2FB1E020u, 44, true)]  // udot v0.2s, v1.8b, v17.4b[1]
    [InlineData(0x6E428420u, 28, true)]  // sqrdmlah v0.8h, v1.8h, v2.8h
    [InlineData(0x2E828C20u, 28, true)]  // sqrdmlsh v0.2s, v1.2s, v2.2s
    [InlineData(0x7E828420u, 28, true)]  // sqrdmlah s0, s1, s2
    [InlineData(0x6F72D820u, 28, true)]  // sqrdmlah v0.8h, v1.8h, v2.h[7]
    [InlineData(0x7FA2F020u, 28, true)]  // sqrdmlsh s0, s1, v2.s[1]
    [InlineData(0x6E028420u, 28, false)] // sqrdmlah, size 00
    [InlineData(0x6EC28420u, 28, false)] // sqrdmlah, size 11
    [InlineData(0x7FC2F020u, 28, false)] // sqrdmlsh (scalar by element), size 11
    public void Dotprod_and_rdm_encodings_follow_id_aa64isar0(uint insn, int field, bool allocated)
    {
        Assert.Equal((ulong)1, (Arm64HostCpu.Aa64Isar0 >> field) & 0xF);
        Assert.Equal(!allocated, A64Interpreter.SimdIsar0Undefined(insn, Arm64HostCpu.Aa64Isar0));
        Assert.Equal(true, A64Interpreter.SimdIsar0Undefined(insn, Arm64HostCpu.Aa64Isar0 & ~(0xFUL << field)));
        int other = field == 44 ? 28 : 44;
        Assert.Equal(!allocated, A64Interpreter.SimdIsar0Undefined(insn, Arm64HostCpu.Aa64Isar0 & ~(0xFUL << other)));
        Assert.Null(A64Interpreter.SimdIsar0Undefined(0x4EA21C20u, Arm64HostCpu.Aa64Isar0)); // orr v0.16b, v1.16b, v2.16b
    }

    /// <summary>
    /// SQRDMLAH/SQRDMLSH with size 00 or 11 (unallocated): UNDEFINED (EC 0x00, at the instruction) on every preset, also
    /// with CPACR_EL1.FPEN trapping — the decode comes before CheckFPAdvSIMDEnabled64.
    /// </summary>
    [Theory]
    [InlineData(0x6E028420u)] // sqrdmlah, vector, size 00
    [InlineData(0x7FC2F020u)] // sqrdmlsh, scalar by element, size 11
    public void Sqrdmlah_with_an_unallocated_size_is_undefined_before_the_fp_trap(uint insn)
        => Arm64TestVm.AssertUndefinedBeforeFpTrap(insn);

    /// <summary>
    /// On every preset (their TRMs list FEAT_DotProd and FEAT_RDM) SDOT and SQRDMLAH run without SVE (V0 from the
    /// instruction: 0 + 4 × 2 × 3 = 24 per lane; 0x4000 + round(2 × 0x4000 × 0x4000 / 2^16) = 0x6000); ID_AA64ISAR0_EL1
    /// reads DP = RDM = 1; with CPACR_EL1.FPEN trapping they take the FP access trap (EC 0x07) at the instruction.
    /// </summary>
    [Theory]
    [InlineData(0x4E829420u, 0x0000_0018_0000_0018UL)] // sdot v0.4s, v1.16b, v2.16b
    [InlineData(0x6E428420u, 0x6000_6000_6000_6000UL)] // sqrdmlah v0.8h, v1.8h, v2.8h
    public void Dotprod_and_rdm_run_on_every_preset_and_follow_cpacr_fpen(uint insn, ulong low)
    {
        bool dot = insn == 0x4E829420u;
        Arm64TestVm.AssertRunsOnEveryPresetAndFollowsFpen(insn, v =>
        {
            v.SetOneRegBytes(Arm64SimdTests.VRegId(0), Arm64SimdTests.Splat(dot ? 0u : 0x4000_4000u));
            v.SetOneRegBytes(Arm64SimdTests.VRegId(1), Arm64SimdTests.Splat(dot ? 0x0202_0202u : 0x4000_4000u));
            v.SetOneRegBytes(Arm64SimdTests.VRegId(2), Arm64SimdTests.Splat(dot ? 0x0303_0303u : 0x4000_4000u));
            Assert.Equal(0x1UL << 44 | 0x1UL << 28, v.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1) & (0xFUL << 44 | 0xFUL << 28));
        }, v => Assert.Equal(((UInt128)low << 64) | low, Arm64SimdTests.V(v, 0)));
    }

    /// <summary>
    /// A host without FEAT_DotProd or FEAT_RDM (<see cref="Arm64CpuModel.DotProd"/> / <see cref="Arm64CpuModel.Rdm"/>
    /// 0): its ID_AA64ISAR0_EL1 reads the field 0 and the instruction is UNDEFINED (EC 0x00, at the instruction), while
    /// the other feature's field stays 1.
    /// </summary>
    [Theory]
    [InlineData(0x4E829420u, 44)] // sdot v0.4s, v1.16b, v2.16b
    [InlineData(0x6E428420u, 28)] // sqrdmlah v0.8h, v1.8h, v2.8h
    public void A_host_without_the_feature_reads_it_absent_and_undefines_the_instruction(uint insn, int field)
    {
        var model = field == 44 ? Arm64CpuModel.NeoverseN1 with { DotProd = 0 } : Arm64CpuModel.NeoverseN1 with { Rdm = 0 };
        using var s = Arm64TestVm.RunningWords(model, insn);
        var v = s.AddVcpu();
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x30_0000UL);
        ulong isar0 = v.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1);
        Assert.Equal(0UL, (isar0 >> field) & 0xF);
        Assert.Equal(1UL, (isar0 >> (field == 44 ? 28 : 44)) & 0xF);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.NotEqual(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        Assert.Equal(0x00UL, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
        Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
    }
}
