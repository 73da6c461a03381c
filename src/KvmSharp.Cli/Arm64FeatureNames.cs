// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli;

/// <summary>
/// An arm64 vCPU's ID registers decoded into the feature names Linux prints in /proc/cpuinfo (arch/arm64/kernel/
/// cpuinfo.c hwcap_str, from the register fields arch/arm64/kernel/cpufeature.c arm64_elf_hwcaps tests): what
/// <c>caps</c> prints for an arm64 kernel, the part of the host CPU that decides which instructions a guest may use.
/// Only the names these six registers decide: not evtstrm and cpuid (kernel services), mte (KVM hides it unless
/// KVM_CAP_ARM_MTE is enabled) or the SME family and what the other ID registers hold.
/// </summary>
internal static class Arm64FeatureNames
{
    /// <summary>The six registers; ZFR0 counts only with PFR0.SVE (it is RAZ for a vCPU without SVE).</summary>
    internal readonly record struct IdRegs(ulong Isar0, ulong Isar1, ulong Pfr0, ulong Zfr0, ulong Pfr1 = 0, ulong Mmfr2 = 0)
    {
        public int Isar0At(int shift) => Field(Isar0, shift);

        public int Isar1At(int shift) => Field(Isar1, shift);

        public int ZfrAt(int shift) => Field(Pfr0, 32) >= 1 ? Field(Zfr0, shift) : 0;

        // ID_AA64PFR0_EL1.FP (19:16) and AdvSIMD (23:20) are signed: 0xF = not implemented, 0 = present, 1 = with half.
        public int Fp => SignedField(Pfr0, 16);

        public int AdvSimd => SignedField(Pfr0, 20);

        public int Pfr1At(int shift) => Field(Pfr1, shift);
    }

    // Each name with the test cpufeature.c makes of the registers, in hwcap_str's order.
    private static readonly (string Name, Func<IdRegs, bool> Has)[] s_names =
    [
        ("fp", r => r.Fp >= 0),
        ("asimd", r => r.AdvSimd >= 0),
        ("aes", r => r.Isar0At(4) >= 1),
        ("pmull", r => r.Isar0At(4) >= 2),
        ("sha1", r => r.Isar0At(8) >= 1),
        ("sha2", r => r.Isar0At(12) >= 1),
        ("crc32", r => r.Isar0At(16) >= 1),
        ("atomics", r => r.Isar0At(20) >= 2),
        ("fphp", r => r.Fp >= 1),
        ("asimdhp", r => r.AdvSimd >= 1),
        ("asimdrdm", r => r.Isar0At(28) >= 1),
        ("jscvt", r => r.Isar1At(12) >= 1),
        ("fcma", r => r.Isar1At(16) >= 1),
        ("lrcpc", r => r.Isar1At(20) >= 1),
        ("dcpop", r => r.Isar1At(0) >= 1),
        ("sha3", r => r.Isar0At(32) >= 1),
        ("sm3", r => r.Isar0At(36) >= 1),
        ("sm4", r => r.Isar0At(40) >= 1),
        ("asimddp", r => r.Isar0At(44) >= 1),
        ("sha512", r => r.Isar0At(12) >= 2),
        ("sve", r => Field(r.Pfr0, 32) >= 1),
        ("asimdfhm", r => r.Isar0At(48) >= 1),
        ("dit", r => Field(r.Pfr0, 48) >= 1),
        ("uscat", r => Field(r.Mmfr2, 32) >= 1),
        ("ilrcpc", r => r.Isar1At(20) >= 2),
        ("flagm", r => r.Isar0At(52) >= 1),
        // HWCAP_CAP(ID_AA64PFR1_EL1, SSBS, SSBS2, …): the MRS/MSR SSBS register form, not PSTATE.SSBS alone.
        ("ssbs", r => r.Pfr1At(4) >= 2),
        ("sb", r => r.Isar1At(36) >= 1),
        // PAuth: address (APA 7:4, API 11:8) and generic (GPA 27:24, GPI 31:28) authentication.
        ("paca", r => r.Isar1At(4) + r.Isar1At(8) > 0),
        ("pacg", r => r.Isar1At(24) + r.Isar1At(28) > 0),
        ("dcpodp", r => r.Isar1At(0) >= 2),
        ("sve2", r => r.ZfrAt(0) >= 1),
        ("sveaes", r => r.ZfrAt(4) >= 1),
        ("svepmull", r => r.ZfrAt(4) >= 2),
        ("svebitperm", r => r.ZfrAt(16) >= 1),
        ("svesha3", r => r.ZfrAt(32) >= 1),
        ("svesm4", r => r.ZfrAt(40) >= 1),
        ("flagm2", r => r.Isar0At(52) >= 2),
        ("frint", r => r.Isar1At(32) >= 1),
        ("svei8mm", r => r.ZfrAt(44) >= 1),
        ("svef32mm", r => r.ZfrAt(52) >= 1),
        ("svef64mm", r => r.ZfrAt(56) >= 1),
        ("svebf16", r => r.ZfrAt(20) >= 1),
        ("i8mm", r => r.Isar1At(52) >= 1),
        ("bf16", r => r.Isar1At(44) >= 1),
        ("dgh", r => r.Isar1At(48) >= 1),
        ("rng", r => r.Isar0At(60) >= 1),
        ("bti", r => r.Pfr1At(0) >= 1),
    ];

    /// <summary>"fp asimd aes pmull …" for the six registers ("none" when they offer nothing).</summary>
    public static string Decode(IdRegs regs)
    {
        var names = s_names.Where(n => n.Has(regs)).Select(n => n.Name).ToList();
        return names.Count == 0 ? "none" : string.Join(' ', names);
    }

    private static int Field(ulong value, int shift) => (int)((value >> shift) & 0xF);

    private static int SignedField(ulong value, int shift) => (int)((long)(value << (60 - shift)) >> 60);
}
