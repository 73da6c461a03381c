// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Sve;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The SVE2 indexed multiplies and complex integer instructions (A64Interpreter.Sve2Indexed.cs), SQDMLALBT/SQDMLSLBT
/// and URECPE/URSQRTE against qemu-aarch64 -cpu max, the way <see cref="Arm64Sve2Tests"/> checks the other SVE2 groups
/// (its C program and helpers: one inline-asm block per case run on four windows of half random, half edge-value data
/// — so every element size meets its saturation limits — digesting Z0, P2, NZCV and the scatter buffer), at 128-, 256-
/// and 512-bit vectors. Every index value is covered for some size, and Zm is the highest register the encoding allows once, so
/// the index fields and the segment arithmetic are both exercised. The optional BitPerm, AES (with PMULL128), SHA3 and
/// SM4 instructions (A64Interpreter.Sve2Crypto.cs) likewise, on a CPU whose ID_AA64ZFR0_EL1 advertises them, and are
/// UNDEFINED on one that does not. The SVE2 floating point (A64Interpreter.Sve2Fp.cs) is compared with FPSR's cumulative
/// flags, under FPCR rounding modes, FZ and DN. Skips, with the reason, without the cross compiler or qemu-aarch64.
/// </summary>
public class Arm64Sve2MoreTests
{
    /// <summary>Blocks with Z0–Z2 (and Z4) from the data; they write Z0 (Z7 and Z15, copies of Z2, test the highest Zm).</summary>
    private static readonly string[] IndexedCases =
    [
        // MLA/MLS, SQRDMLAH/SQRDMLSH, SQDMULH/SQRDMULH, MUL (indexed).
        "mla z0.h, z1.h, z2.h[0]",
        "mla z0.h, z1.h, z2.h[7]",
        "mov z7.d, z2.d\nmls z0.h, z1.h, z7.h[5]",
        "mla z0.s, z1.s, z2.s[3]",
        "mls z0.s, z1.s, z2.s[1]",
        "mla z0.d, z1.d, z2.d[1]",
        "mov z15.d, z2.d\nmls z0.d, z1.d, z15.d[0]",
        "sqrdmlah z0.h, z1.h, z2.h[6]",
        "sqrdmlsh z0.h, z1.h, z2.h[3]",
        "sqrdmlah z0.s, z1.s, z2.s[2]",
        "sqrdmlsh z0.s, z1.s, z2.s[0]",
        "sqrdmlah z0.d, z1.d, z2.d[1]",
        "sqrdmlsh z0.d, z1.d, z2.d[0]",
        "sqdmulh z0.h, z1.h, z2.h[4]",
        "sqrdmulh z0.h, z1.h, z2.h[1]",
        "sqdmulh z0.s, z1.s, z2.s[3]",
        "sqrdmulh z0.s, z1.s, z2.s[2]",
        "sqdmulh z0.d, z1.d, z2.d[0]",
        "sqrdmulh z0.d, z1.d, z2.d[1]",
        "mul z0.h, z1.h, z2.h[2]",
        "mul z0.s, z1.s, z2.s[1]",
        "mul z0.d, z1.d, z2.d[1]",
        "dup z1.h, #-32768\ndup z2.h, #-32768\nsqdmulh z0.h, z1.h, z2.h[5]",
        "dup z1.d, #-1\nlsl z1.d, z1.d, #63\nmov z2.d, z1.d\nsqrdmulh z0.d, z1.d, z2.d[1]",
        // Long forms (indexed).
        "smullb z0.s, z1.h, z2.h[0]",
        "smullt z0.s, z1.h, z2.h[7]",
        "umullb z0.s, z1.h, z2.h[5]",
        "umullt z0.d, z1.s, z2.s[3]",
        "smullb z0.d, z1.s, z2.s[2]",
        "sqdmullb z0.s, z1.h, z2.h[3]",
        "sqdmullt z0.d, z1.s, z2.s[1]",
        "sqdmullt z0.s, z1.h, z2.h[6]",
        "smlalb z0.s, z1.h, z2.h[1]",
        "smlalt z0.d, z1.s, z2.s[3]",
        "umlalb z0.d, z1.s, z2.s[0]",
        "mov z7.d, z2.d\numlalt z0.s, z1.h, z7.h[4]",
        "smlslb z0.s, z1.h, z2.h[2]",
        "smlslt z0.d, z1.s, z2.s[1]",
        "umlslb z0.s, z1.h, z2.h[7]",
        "mov z15.d, z2.d\numlslt z0.d, z1.s, z15.s[2]",
        "sqdmlalb z0.s, z1.h, z2.h[0]",
        "sqdmlalt z0.d, z1.s, z2.s[3]",
        "sqdmlslb z0.d, z1.s, z2.s[2]",
        "sqdmlslt z0.s, z1.h, z2.h[5]",
        "dup z1.h, #-32768\ndup z2.h, #-32768\nsqdmlalb z0.s, z1.h, z2.h[1]",
        // SQDMLALBT/SQDMLSLBT (vectors: "SVE2 saturating multiply-add interleaved long").
        "sqdmlalbt z0.h, z1.b, z2.b",
        "sqdmlalbt z0.s, z1.h, z2.h",
        "sqdmlslbt z0.d, z1.s, z2.s",
        "sqdmlslbt z0.h, z1.b, z2.b",
        // URECPE/URSQRTE (predicated; "SVE2 integer unary operations (predicated)").
        "urecpe z0.s, p1/m, z1.s",
        "ursqrte z0.s, p1/m, z1.s",
        "lsr z1.s, z1.s, #1\nursqrte z0.s, p1/m, z1.s",
        "lsr z1.s, z1.s, #1\nurecpe z0.s, p1/m, z1.s",
        "dup z1.s, #-1\nlsl z1.s, z1.s, #31\nmov z2.d, z1.d\nsqdmlalbt z0.d, z1.s, z2.s",
        // Complex integer: CMLA, SQRDCMLAH (vectors and indexed), CDOT (vectors and indexed).
        "cmla z0.b, z1.b, z2.b, #0",
        "cmla z0.h, z1.h, z2.h, #90",
        "cmla z0.s, z1.s, z2.s, #180",
        "cmla z0.d, z1.d, z2.d, #270",
        "sqrdcmlah z0.b, z1.b, z2.b, #90",
        "sqrdcmlah z0.h, z1.h, z2.h, #0",
        "sqrdcmlah z0.s, z1.s, z2.s, #270",
        "sqrdcmlah z0.d, z1.d, z2.d, #180",
        "cmla z0.h, z1.h, z2.h[3], #0",
        "mov z7.d, z2.d\ncmla z0.h, z1.h, z7.h[1], #90",
        "cmla z0.s, z1.s, z2.s[1], #180",
        "mov z15.d, z2.d\ncmla z0.s, z1.s, z15.s[0], #270",
        "sqrdcmlah z0.h, z1.h, z2.h[2], #270",
        "sqrdcmlah z0.h, z1.h, z2.h[0], #180",
        "sqrdcmlah z0.s, z1.s, z2.s[1], #90",
        "sqrdcmlah z0.s, z1.s, z2.s[0], #0",
        "cdot z0.s, z1.b, z2.b, #0",
        "cdot z0.s, z1.b, z2.b, #90",
        "cdot z0.d, z1.h, z2.h, #180",
        "cdot z0.d, z1.h, z2.h, #270",
        "cdot z0.s, z1.b, z2.b[3], #0",
        "mov z7.d, z2.d\ncdot z0.s, z1.b, z7.b[1], #270",
        "cdot z0.d, z1.h, z2.h[1], #90",
        "mov z15.d, z2.d\ncdot z0.d, z1.h, z15.h[0], #180",
    ];

    /// <summary>
    /// <paramref name="insn"/> under FPCR = <paramref name="fpcr"/> (RMode bits 23:22, FZ bit 24, DN bit 25) with FPSR
    /// cleared first and stored afterwards into the digested scatter buffer, so the cumulative flags are compared too.
    /// </summary>
    private static string Fp(string insn, uint fpcr = 0) =>
        $"msr fpsr, xzr\nmov x11, #0x{fpcr:x}\nmsr fpcr, x11\n{insn}\nmrs x11, fpsr\nstr x11, [x13]\nmsr fpcr, xzr";

    private const uint RoundUp = 1u << 22, RoundDown = 2u << 22, RoundZero = 3u << 22, FlushZero = 1u << 24, DefaultNan = 1u << 25;

    /// <summary>SVE2 floating point: the data's edge bytes make zeros, infinities, NaNs (quiet and signalling) and denormals.</summary>
    private static readonly string[] FpCases =
    [
        Fp("faddp z0.h, p1/m, z0.h, z1.h"),
        Fp("faddp z0.s, p1/m, z0.s, z1.s", RoundUp),
        Fp("faddp z0.d, p1/m, z0.d, z1.d", RoundZero),
        Fp("faddp z0.s, p1/m, z0.s, z1.s", FlushZero | DefaultNan),
        Fp("fmaxp z0.h, p1/m, z0.h, z1.h"),
        Fp("fmaxp z0.s, p1/m, z0.s, z1.s"),
        Fp("fminp z0.d, p1/m, z0.d, z1.d"),
        Fp("fminp z0.s, p1/m, z0.s, z1.s", DefaultNan),
        Fp("fmaxnmp z0.h, p1/m, z0.h, z1.h"),
        Fp("fmaxnmp z0.d, p1/m, z0.d, z1.d"),
        Fp("fminnmp z0.s, p1/m, z0.s, z1.s"),
        Fp("fminnmp z0.s, p1/m, z0.s, z1.s", FlushZero),
        Fp("flogb z0.h, p1/m, z1.h"),
        Fp("flogb z0.s, p1/m, z1.s"),
        Fp("flogb z0.d, p1/m, z1.d"),
        Fp("flogb z0.s, p1/m, z1.s", FlushZero),
        Fp("fcvtnt z0.h, p1/m, z1.s"),
        Fp("fcvtnt z0.h, p1/m, z1.s", RoundDown),
        Fp("fcvtnt z0.h, p1/m, z1.s", FlushZero | DefaultNan),
        Fp("fcvtnt z0.s, p1/m, z1.d"),
        Fp("fcvtnt z0.s, p1/m, z1.d", RoundUp),
        Fp("fcvtlt z0.s, p1/m, z1.h"),
        Fp("fcvtlt z0.s, p1/m, z1.h", DefaultNan),
        Fp("fcvtlt z0.d, p1/m, z1.s"),
        Fp("fcvtlt z0.d, p1/m, z1.s", FlushZero),
        Fp("fcvtx z0.s, p1/m, z1.d"),
        Fp("fcvtx z0.s, p1/m, z1.d", FlushZero),
        Fp("fcvtxnt z0.s, p1/m, z1.d"),
        Fp("fcvtxnt z0.s, p1/m, z1.d", RoundUp | DefaultNan),
        Fp("lsr z1.d, z1.d, #4\nfcvtx z0.s, p1/m, z1.d"),
        Fp("lsr z1.d, z1.d, #3\nfcvtx z0.s, p1/m, z1.d", FlushZero),
        Fp("fmlalb z0.s, z1.h, z2.h"),
        Fp("fmlalt z0.s, z1.h, z2.h", RoundUp),
        Fp("fmlslb z0.s, z1.h, z2.h", RoundDown),
        Fp("fmlslt z0.s, z1.h, z2.h", RoundZero),
        Fp("fmlalb z0.s, z1.h, z2.h", FlushZero),
        Fp("fmlalt z0.s, z1.h, z2.h", DefaultNan),
        Fp("fmlalb z0.s, z1.h, z2.h[7]"),
        Fp("fmlalt z0.s, z1.h, z2.h[0]", RoundDown),
        Fp("fmlslb z0.s, z1.h, z2.h[3]"),
        Fp("mov z7.d, z2.d\nfmlslt z0.s, z1.h, z7.h[4]", FlushZero),
        Fp("lsr z0.s, z0.s, #9\nlsr z1.h, z1.h, #6\nlsr z2.h, z2.h, #6\nfmlalb z0.s, z1.h, z2.h"),
        Fp("lsr z0.s, z0.s, #9\nlsr z1.h, z1.h, #6\nlsr z2.h, z2.h, #6\nfmlslt z0.s, z1.h, z2.h[2]", RoundUp | FlushZero),
    ];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> FpBuilt =
        new(() => Arm64Sve2Tests.Build(Arm64Sve2Tests.Program(FpCases, [], 0), "sve2-fp", "-Wno-unused-function", "-Wno-unused-const-variable"));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    public void Sve2_floating_point_instructions_give_the_values_and_fpsr_flags_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(FpBuilt.Value, [.. FpCases.Select(c => c.Replace("\n", "; "))], bits);

    /// <summary>The optional extensions (built with +sve2-aes+sve2-bitperm+sve2-sha3+sve2-sm4); they write Z0.</summary>
    private static readonly string[] CryptoCases =
    [
        "bext z0.b, z1.b, z2.b",
        "bext z0.h, z1.h, z2.h",
        "bdep z0.s, z1.s, z2.s",
        "bdep z0.b, z1.b, z2.b",
        "bgrp z0.d, z1.d, z2.d",
        "bgrp z0.h, z1.h, z2.h",
        "bext z0.d, z1.d, z2.d",
        "bdep z0.d, z1.d, z2.d",
        "bgrp z0.s, z1.s, z2.s",
        "rax1 z0.d, z1.d, z2.d",
        "aese z0.b, z0.b, z1.b",
        "aesd z0.b, z0.b, z1.b",
        "aesmc z0.b, z0.b",
        "aesimc z0.b, z0.b",
        "aese z0.b, z0.b, z1.b\naesmc z0.b, z0.b\naesd z0.b, z0.b, z2.b\naesimc z0.b, z0.b",
        "pmullb z0.q, z1.d, z2.d",
        "pmullt z0.q, z1.d, z2.d",
        "sm4e z0.s, z0.s, z1.s",
        "sm4ekey z0.s, z1.s, z2.s",
        "sm4ekey z0.s, z1.s, z2.s\nsm4e z0.s, z0.s, z2.s",
    ];

    /// <summary><see cref="Arm64Sve2Tests.Sve2Cpu"/> with ID_AA64ZFR0_EL1.AES = 2, BitPerm = 1, SHA3 = 1 and SM4 = 1.</summary>
    private static Arm64CpuModel CryptoCpu(int bits) => Arm64Sve2Tests.Sve2Cpu(bits) with
    {
        SveFeatures = Arm64Sve2Tests.Sve2Cpu(bits).SveFeatures | (2UL << 4) | (1UL << 16) | (1UL << 32) | (1UL << 40),
    };

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> CryptoBuilt =
        new(() => Arm64Sve2Tests.Build(Arm64Sve2Tests.Program(CryptoCases, [], 0), "sve2-crypto", "-Wno-unused-function",
            "-Wno-unused-const-variable", "-march=armv9-a+sve2-aes+sve2-bitperm+sve2-sha3+sve2-sm4"));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    public void Sve2_bitperm_aes_and_sha3_instructions_give_the_digests_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(CryptoBuilt.Value, [.. CryptoCases.Select(c => c.Replace("\n", "; "))], bits, CryptoCpu(bits));

    /// <summary>
    /// BEXT, RAX1, AESE, AESMC, PMULLB .Q, SM4E and SM4EKEY on the SVE2 CPU without the optional fields: UNDEFINED (EC
    /// 0x00, at the instruction); with them they execute.
    /// </summary>
    [Theory]
    [InlineData(0x4502B020u, false, false)] // bext z0.b, z1.b, z2.b
    [InlineData(0x4522F420u, false, false)] // rax1 z0.d, z1.d, z2.d
    [InlineData(0x4522E020u, false, false)] // aese z0.b, z0.b, z1.b
    [InlineData(0x4520E000u, false, false)] // aesmc z0.b, z0.b
    [InlineData(0x45026820u, false, false)] // pmullb z0.q, z1.d, z2.d
    [InlineData(0x4502B020u, true, true)]
    [InlineData(0x4522F420u, true, true)]
    [InlineData(0x4522E020u, true, true)]
    [InlineData(0x4520E000u, true, true)]
    [InlineData(0x45026820u, true, true)]
    [InlineData(0x4523E020u, false, false)] // sm4e z0.s, z0.s, z1.s
    [InlineData(0x4522F020u, false, false)] // sm4ekey z0.s, z1.s, z2.s
    [InlineData(0x4523E020u, true, true)]
    [InlineData(0x4522F020u, true, true)]
    public void Optional_sve2_instructions_follow_their_id_aa64zfr0_fields(uint insn, bool advertised, bool executes)
    {
        using var s = Arm64TestVm.RunningWords(advertised ? CryptoCpu(128) : Arm64Sve2Tests.Sve2Cpu(128), insn);
        var v = s.AddVcpu(1u << KvmArm64Constants.KVM_ARM_VCPU_SVE);
        v.FinalizeSve();
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(executes, v.GetOneReg(KvmArm64Regs.X(9)) == Arm64Guest.UcallDone);
        if (executes) return;
        Assert.Equal(0UL, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
        Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
    }

    /// <summary>
    /// The Neoverse V2-like preset advertises what the interpreter implements: ID_AA64ZFR0_EL1 as the guest's MRS
    /// reads it has SVEver = 1, AES = 2, BitPerm = 1, BF16 = 1, SHA3 = 1, SM4 = 1, I8MM = 1, and BEXT runs there.
    /// </summary>
    [Fact]
    public void The_neoverse_v2_preset_advertises_the_optional_sve2_extensions_it_runs()
    {
        using var s = new Arm64TestVm(a =>
        {
            a.Emit(0x4502B020); // bext z0.b, z1.b, z2.b
            a.Emit(0xD5380483); // mrs x3, id_aa64zfr0_el1
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.NeoverseV2 });
        var v = s.AddVcpu(1u << KvmArm64Constants.KVM_ARM_VCPU_SVE);
        v.FinalizeSve();
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(1, 0), [.. Enumerable.Repeat((byte)0xA5, 256)]);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(2, 0), [.. Enumerable.Repeat((byte)0x0F, 256)]);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        ulong zfr0 = v.GetOneReg(KvmArm64Regs.X(3));
        Assert.Equal(0x0000_1101_0011_0021UL, zfr0 & 0x0000_FFFF_00FF_00FFUL);
        // bext of 0xA5 under mask 0x0F: the low nibble 0101.
        Assert.Equal([.. Enumerable.Repeat((byte)0x05, 16), .. new byte[240]], v.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0)));
    }

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Built =
        new(() => Arm64Sve2Tests.Build(Arm64Sve2Tests.Program(IndexedCases, [], 0), "sve2-more", "-Wno-unused-function", "-Wno-unused-const-variable"));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    public void Sve2_indexed_and_complex_integer_instructions_give_the_digests_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(Built.Value, [.. IndexedCases.Select(c => c.Replace("\n", "; "))], bits);
}
