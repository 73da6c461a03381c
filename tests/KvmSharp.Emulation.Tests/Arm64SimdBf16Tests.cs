// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;
using static KvmSharp.Emulation.Tests.Arm64SveBf16Tests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The AdvSIMD and scalar BF16 and I8MM instructions (A64Interpreter.SimdBf16.cs, A64Interpreter.SimdI8mm.cs) against
/// qemu-aarch64 -cpu max with <see cref="Arm64SveBf16Tests"/>'s guest program, data windows and reshaping helpers (the
/// SVE vCPU loads Z0–Z2, so V0–V2 hold the low 128 bits; the digest covers all of Z0, so the zeroing of Z0 above bit
/// 128 — and above bit 64 for the 64-bit forms — is compared too), at 128- and 512-bit vectors. Also: UNDEFINED on a
/// CPU whose ID_AA64ISAR1_EL1 lacks BF16 or I8MM (the Neoverse-N1-like preset), before the CPACR_EL1.FPEN trap; and the
/// ID_AA64ISAR1_EL1 fields each preset shows, which userspace may lower but not raise.
/// </summary>
public class Arm64SimdBf16Tests
{
    /// <summary>V17 (Rm with the M bit set in the by-element forms) around <paramref name="insn"/>, saved and restored on the stack.</summary>
    private static string WithV17(string insn) => $"str q17, [sp, #-16]!\nmov v17.16b, v2.16b\n{insn}\nldr q17, [sp], #16";

    private static readonly string[] Bf16Cases =
    [
        Fp("bfdot v0.4s, v1.8h, v2.8h"),
        Fp("bfdot v0.2s, v1.4h, v2.4h", RoundUp | FlushZero | DefaultNan),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfdot v0.4s, v1.8h, v2.8h"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfdot v0.4s, v1.8h, v2.8h", RoundDown),
        Fp(TinyS + Tiny("z1") + Low("z2") + "bfdot v0.4s, v1.8h, v2.8h"),
        Fp(HugeS + Huge("z1") + Huge("z2") + "bfdot v0.2s, v1.4h, v2.4h"),
        Fp("bfdot v0.4s, v1.8h, v2.2h[0]"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfdot v0.4s, v1.8h, v2.2h[3]"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfdot v0.2s, v1.4h, v2.2h[1]"),
        Fp(WithV17("bfdot v0.4s, v1.8h, v17.2h[2]")),
        Fp("bfmmla v0.4s, v1.8h, v2.8h"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmmla v0.4s, v1.8h, v2.8h"),
        Fp(TinyS + Tiny("z1") + Low("z2") + "bfmmla v0.4s, v1.8h, v2.8h", RoundUp | FlushZero),
        Fp(HugeS + Huge("z1") + Huge("z2") + "bfmmla v0.4s, v1.8h, v2.8h"),
        Fp("bfmlalb v0.4s, v1.8h, v2.8h"),
        Fp("bfmlalt v0.4s, v1.8h, v2.8h"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmlalb v0.4s, v1.8h, v2.8h", RoundUp),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmlalt v0.4s, v1.8h, v2.8h", RoundDown),
        Fp(TinyS + Tiny("z1") + Low("z2") + "bfmlalb v0.4s, v1.8h, v2.8h", FlushZero),
        Fp(HugeS + Huge("z1") + Huge("z2") + "bfmlalt v0.4s, v1.8h, v2.8h", RoundZero),
        Fp("bfmlalt v0.4s, v1.8h, v2.8h", DefaultNan),
        Fp("bfmlalb v0.4s, v1.8h, v2.h[0]"),
        Fp("bfmlalt v0.4s, v1.8h, v2.h[7]", RoundUp),
        Fp(Near1S + Near1("z1") + Near1("z2") + "bfmlalb v0.4s, v1.8h, v2.h[5]"),
        Fp(Near1S + Near1("z1") + Near1("z2") + "mov v15.16b, v2.16b\nbfmlalt v0.4s, v1.8h, v15.h[2]", FlushZero),
        Fp("bfcvt h0, s1"),
        Fp("bfcvt h0, s1", RoundUp),
        Fp("and z1.s, z1.s, #0xffff8000\nbfcvt h0, s1"),
        Fp("orr z1.s, z1.s, #0x7fff\nbfcvt h0, s1", RoundDown),
        Fp("and z1.s, z1.s, #0x807fffff\nbfcvt h0, s1", FlushZero),
        Fp("orr z1.s, z1.s, #0x7f000000\nbfcvt h0, s1", RoundZero | DefaultNan),
        Fp("bfcvtn v0.4h, v1.4s"),
        Fp("bfcvtn v0.4h, v1.4s", RoundDown),
        Fp("and z1.s, z1.s, #0xffff8000\nbfcvtn v0.4h, v1.4s", RoundUp),
        Fp("and z1.s, z1.s, #0x807fffff\nbfcvtn v0.4h, v1.4s", FlushZero | DefaultNan),
        Fp("bfcvtn2 v0.8h, v1.4s"),
        Fp("and z1.s, z1.s, #0xffff8000\nbfcvtn2 v0.8h, v1.4s"),
        Fp("orr z1.s, z1.s, #0x7f000000\nbfcvtn2 v0.8h, v1.4s", RoundZero),
        Fp("and z1.s, z1.s, #0x807fffff\nbfcvtn2 v0.8h, v1.4s", FlushZero),
    ];

    private static readonly string[] I8mmCases =
    [
        "smmla v0.4s, v1.16b, v2.16b",
        "ummla v0.4s, v1.16b, v2.16b",
        "usmmla v0.4s, v1.16b, v2.16b",
        "usdot v0.4s, v1.16b, v2.16b",
        "usdot v0.2s, v1.8b, v2.8b",
        "usdot v0.4s, v1.16b, v2.4b[0]",
        "usdot v0.2s, v1.8b, v2.4b[3]",
        "sudot v0.4s, v1.16b, v2.4b[1]",
        "sudot v0.2s, v1.8b, v2.4b[2]",
        WithV17("usdot v0.4s, v1.16b, v17.4b[3]"),
        WithV17("sudot v0.4s, v1.16b, v17.4b[2]"),
    ];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Bf16Built = new(() => Build(Bf16Cases, "simd-bf16"));
    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> I8mmBuilt = new(() => Build(I8mmCases, "simd-i8mm"));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Advsimd_and_scalar_bf16_instructions_give_the_values_and_fpsr_flags_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(Bf16Built.Value, Names(Bf16Cases), bits);

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(512)]
    public void Advsimd_i8mm_instructions_give_the_digests_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(I8mmBuilt.Value, Names(I8mmCases), bits);

    /// <summary>
    /// BFCVT, BFCVTN2, BFDOT (vector, element), BFMLALT (element), BFMMLA, SMMLA, UMMLA, USDOT (element) and SUDOT:
    /// UNDEFINED (EC 0x00, at the instruction) on the Neoverse-N1-like preset (ID_AA64ISAR1_EL1.BF16 = I8MM = 0) even
    /// with CPACR_EL1.FPEN trapping — the decode comes first — and on the Neoverse V1-like preset the FP access trap
    /// (EC 0x07) with FPEN trapping, else executed. BFMMLA and SMMLA with Q = 0 are unallocated: UNDEFINED on both.
    /// </summary>
    [Theory]
    [InlineData(0x1E634020u, true)]  // bfcvt h0, s1
    [InlineData(0x4EA16820u, true)]  // bfcvtn2 v0.8h, v1.4s
    [InlineData(0x6E42FC20u, true)]  // bfdot v0.4s, v1.8h, v2.8h
    [InlineData(0x0F71F820u, true)]  // bfdot v0.2s, v1.4h, v17.2h[3]
    [InlineData(0x4FFFF820u, true)]  // bfmlalt v0.4s, v1.8h, v15.h[7]
    [InlineData(0x6E42EC20u, true)]  // bfmmla v0.4s, v1.8h, v2.8h
    [InlineData(0x2E42EC20u, false)] // bfmmla with Q = 0
    [InlineData(0x4E82A420u, true)]  // smmla v0.4s, v1.16b, v2.16b
    [InlineData(0x0E82A420u, false)] // smmla with Q = 0
    [InlineData(0x6E82A420u, true)]  // ummla v0.4s, v1.16b, v2.16b
    [InlineData(0x4FB1F820u, true)]  // usdot v0.4s, v1.16b, v17.4b[3]
    [InlineData(0x0F22F020u, true)]  // sudot v0.2s, v1.8b, v2.4b[1]
    public void Bf16_and_i8mm_advsimd_instructions_follow_id_aa64isar1(uint insn, bool allocated)
    {
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.NeoverseV1 })
        {
            foreach (ulong cpacr in new[] { 0x30_0000UL, 0UL })
            {
                using var s = Arm64TestVm.RunningWords(model, insn);
                var v = s.AddVcpu();
                v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, cpacr);
                Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
                bool has = model == Arm64CpuModel.NeoverseV1 && allocated, trapped = cpacr == 0;
                Assert.Equal(has && !trapped, v.GetOneReg(KvmArm64Regs.X(9)) == Arm64Guest.UcallDone);
                if (has && !trapped) continue;
                Assert.Equal(has ? 0x07UL : 0x00UL, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
                Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
            }
        }
    }

    private const ulong Isar1Bf16 = 0xFUL << 44, Isar1I8mm = 0xFUL << 52;

    /// <summary>
    /// ID_AA64ISAR1_EL1.BF16 (bits 47:44) and I8MM (55:52) read 1 on the Neoverse V1- and V2-like presets and 0 on the
    /// N1-like one; the register is ID_WRITABLE apart from the PAuth fields and both fields are FTR_LOWER_SAFE
    /// (arch/arm64/kvm/sys_regs.c, arch/arm64/kernel/cpufeature.c ftr_id_aa64isar1), so userspace may clear them on V1
    /// but not set them on N1 (EINVAL). Clearing them does not make the instructions UNDEFINED: like the hardware, the
    /// emulated CPU runs what the host implements.
    /// </summary>
    [Fact]
    public void Id_aa64isar1_bf16_and_i8mm_show_the_preset_and_may_be_lowered_only()
    {
        foreach (var (model, expected) in new[] { (Arm64CpuModel.NeoverseN1, 0UL), (Arm64CpuModel.NeoverseV1, (1UL << 44) | (1UL << 52)), (Arm64CpuModel.NeoverseV2, (1UL << 44) | (1UL << 52)) })
        {
            using var s = Arm64TestVm.RunningWords(model, 0x6E42FC20 /* bfdot v0.4s, v1.8h, v2.8h */);
            var v = s.AddVcpu();
            v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x30_0000);
            ulong isar1 = v.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1);
            Assert.Equal(expected, isar1 & (Isar1Bf16 | Isar1I8mm));
            if (expected == 0)
            {
                Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => v.SetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1, isar1 | (1UL << 44))).Errno);
                Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => v.SetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1, isar1 | (1UL << 52))).Errno);
                continue;
            }
            v.SetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1, isar1 & ~(Isar1Bf16 | Isar1I8mm));
            Assert.Equal(isar1 & ~(Isar1Bf16 | Isar1I8mm), v.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1));
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
            Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        }
    }
}
