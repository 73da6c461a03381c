// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli;

/// <summary>
/// An arm64 vCPU's ID registers decoded into the feature names Linux prints in /proc/cpuinfo (arch/arm64/kernel/
/// cpuinfo.c hwcap_str, from the register fields arch/arm64/kernel/cpufeature.c arm64_elf_hwcaps tests): what
/// <c>caps</c> prints for an arm64 kernel, the part of the host CPU that decides which instructions a guest may use.
/// </summary>
internal static class Arm64FeatureNames
{
    // (register, field shift, minimum value, name), in hwcap_str's order. The signed FP/AdvSIMD fields are handled apart.
    private enum Reg { Isar0, Isar1, Pfr0, Zfr0 }

    private static readonly (Reg Reg, int Shift, int Min, string Name)[] s_fields =
    [
        (Reg.Isar0, 4, 1, "aes"),
        (Reg.Isar0, 4, 2, "pmull"),
        (Reg.Isar0, 8, 1, "sha1"),
        (Reg.Isar0, 12, 1, "sha2"),
        (Reg.Isar0, 16, 1, "crc32"),
        (Reg.Isar0, 20, 2, "atomics"),
        (Reg.Isar0, 28, 1, "asimdrdm"),
        (Reg.Isar1, 12, 1, "jscvt"),
        (Reg.Isar1, 16, 1, "fcma"),
        (Reg.Isar1, 20, 1, "lrcpc"),
        (Reg.Isar1, 0, 1, "dcpop"),
        (Reg.Isar0, 32, 1, "sha3"),
        (Reg.Isar0, 36, 1, "sm3"),
        (Reg.Isar0, 40, 1, "sm4"),
        (Reg.Isar0, 44, 1, "asimddp"),
        (Reg.Isar0, 12, 2, "sha512"),
        (Reg.Pfr0, 32, 1, "sve"),
        (Reg.Isar0, 48, 1, "asimdfhm"),
        (Reg.Isar1, 20, 2, "ilrcpc"),
        (Reg.Isar0, 52, 1, "flagm"),
        (Reg.Isar1, 36, 1, "sb"),
        (Reg.Isar1, 0, 2, "dcpodp"),
        (Reg.Zfr0, 0, 1, "sve2"),
        (Reg.Zfr0, 4, 1, "sveaes"),
        (Reg.Zfr0, 4, 2, "svepmull"),
        (Reg.Zfr0, 16, 1, "svebitperm"),
        (Reg.Zfr0, 32, 1, "svesha3"),
        (Reg.Zfr0, 40, 1, "svesm4"),
        (Reg.Isar0, 52, 2, "flagm2"),
        (Reg.Isar1, 32, 1, "frint"),
        (Reg.Zfr0, 44, 1, "svei8mm"),
        (Reg.Zfr0, 52, 1, "svef32mm"),
        (Reg.Zfr0, 56, 1, "svef64mm"),
        (Reg.Zfr0, 20, 1, "svebf16"),
        (Reg.Isar1, 52, 1, "i8mm"),
        (Reg.Isar1, 44, 1, "bf16"),
        (Reg.Isar1, 48, 1, "dgh"),
        (Reg.Isar0, 60, 1, "rng"),
    ];

    /// <summary>
    /// "fp asimd aes pmull …" for the four registers. FP and AdvSIMD (ID_AA64PFR0_EL1 bits 19:16 and 23:20) are signed:
    /// 0xF means not implemented, 0 gives fp / asimd, 1 adds fphp / asimdhp. paca and pacg (pointer authentication)
    /// come from ISAR1's APA/API and GPA/GPI fields. An SVE name needs the vCPU to have SVE (ZFR0 is RAZ otherwise).
    /// </summary>
    public static string Decode(ulong isar0, ulong isar1, ulong pfr0, ulong zfr0)
    {
        var names = new List<string>();
        int fp = SignedField(pfr0, 16), asimd = SignedField(pfr0, 20);
        if (fp >= 0) names.Add("fp");
        if (asimd >= 0) names.Add("asimd");
        bool sve = Field(pfr0, 32) >= 1;
        foreach (var (reg, shift, min, name) in s_fields)
        {
            ulong value = reg switch { Reg.Isar0 => isar0, Reg.Isar1 => isar1, Reg.Pfr0 => pfr0, _ => sve ? zfr0 : 0 };
            if (Field(value, shift) >= min) names.Add(name);
            // cpufeature.c: HWCAP_FPHP and HWCAP_ASIMDHP follow atomics in hwcap_str.
            if (name == "atomics")
            {
                if (fp >= 1) names.Add("fphp");
                if (asimd >= 1) names.Add("asimdhp");
            }
            if (name == "sb")
            {
                if (Field(isar1, 4) + Field(isar1, 8) > 0) names.Add("paca");
                if (Field(isar1, 24) + Field(isar1, 28) > 0) names.Add("pacg");
            }
        }
        return names.Count == 0 ? "none" : string.Join(' ', names);
    }

    private static int Field(ulong value, int shift) => (int)((value >> shift) & 0xF);

    private static int SignedField(ulong value, int shift) => (int)((long)(value << (60 - shift)) >> 60);
}
