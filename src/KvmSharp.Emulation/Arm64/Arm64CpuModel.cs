// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The parts of the emulated arm64 host CPU that differ between presets [D: this machine is x86_64, so no arm64 host
/// fact is observable]: the pointer-authentication fields of ID_AA64ISAR1_EL1 (APA, API, GPA, GPI) and
/// ID_AA64ISAR2_EL1 (APA3, GPA3) as the host's sanitised ftr registers show them. Everything else is the fixed
/// Neoverse-N1-like CPU of Arm64HostCpu. Chosen per emulated kernel through <see cref="EmulatorConfig.Arm64Cpu"/>.
/// </summary>
public sealed record Arm64CpuModel
{
    /// <summary>A short name for diagnostics.</summary>
    public string Name { get; init; } = "neoverse-n1";

    /// <summary>ID_AA64ISAR1_EL1.APA (bits 7:4): address authentication with QARMA5 (1 = FEAT_PAuth).</summary>
    public int Apa { get; init; }

    /// <summary>ID_AA64ISAR1_EL1.API (bits 11:8): address authentication with an IMPLEMENTATION DEFINED algorithm.</summary>
    public int Api { get; init; }

    /// <summary>ID_AA64ISAR1_EL1.GPA (bits 27:24): generic authentication with QARMA5 (1 = implemented).</summary>
    public int Gpa { get; init; }

    /// <summary>ID_AA64ISAR1_EL1.GPI (bits 31:28): generic authentication with an IMPLEMENTATION DEFINED algorithm.</summary>
    public int Gpi { get; init; }

    /// <summary>ID_AA64ISAR2_EL1.APA3 (bits 15:12): address authentication with QARMA3.</summary>
    public int Apa3 { get; init; }

    /// <summary>ID_AA64ISAR2_EL1.GPA3 (bits 11:8): generic authentication with QARMA3.</summary>
    public int Gpa3 { get; init; }

    /// <summary>Arm Neoverse N1 (Armv8.2): no pointer authentication (the default).</summary>
    public static Arm64CpuModel NeoverseN1 { get; } = new();

    /// <summary>
    /// The N1-like host with FEAT_PAuth using QARMA5 for both address and generic authentication (APA = 1, GPA = 1,
    /// as on Neoverse V1 / N2) [D: a preset for testing the pointer-authentication paths].
    /// </summary>
    public static Arm64CpuModel WithPointerAuth { get; } = new() { Name = "neoverse-n1+pauth", Apa = 1, Gpa = 1 };

    /// <summary>The host's sanitised ID_AA64ISAR1_EL1: the fixed fields of Arm64HostCpu plus this model's PAuth fields.</summary>
    internal ulong Aa64Isar1 => Arm64HostCpu.Aa64Isar1 | ((ulong)(Apa & 0xf) << 4) | ((ulong)(Api & 0xf) << 8) |
        ((ulong)(Gpa & 0xf) << 24) | ((ulong)(Gpi & 0xf) << 28);

    /// <summary>The host's sanitised ID_AA64ISAR2_EL1: only this model's PAuth (QARMA3) fields.</summary>
    internal ulong Aa64Isar2 => ((ulong)(Apa3 & 0xf) << 12) | ((ulong)(Gpa3 & 0xf) << 8);

    /// <summary>
    /// arch/arm64/kvm/arm.c kvm_has_full_ptr_auth: system_has_full_ptr_auth() (address and generic auth both present),
    /// and "both Address and Generic auth are implemented for a given algorithm (Q5, IMPDEF or Q3)" and "only a single
    /// algorithm is implemented" (GPA/GPI/GPA3 must be exactly IMP = 1). This answers KVM_CAP_ARM_PTRAUTH_ADDRESS and
    /// _GENERIC and decides whether system_supported_vcpu_features() keeps the two vCPU features.
    /// </summary>
    internal bool HasFullPtrAuth
    {
        get
        {
            bool apa = Apa != 0, api = Api != 0, apa3 = Apa3 != 0;
            bool gpa = Gpa == 1, gpi = Gpi == 1, gpa3 = Gpa3 == 1;
            bool address = apa || api || apa3, generic = Gpa != 0 || Gpi != 0 || Gpa3 != 0;
            if (!address || !generic) return false;
            return apa == gpa && api == gpi && apa3 == gpa3 && (apa ? 1 : 0) + (api ? 1 : 0) + (apa3 ? 1 : 0) == 1;
        }
    }
}
