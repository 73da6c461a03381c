// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Pointer authentication for the vCPU (6.18): whether the emulated host offers it (<see cref="Arm64CpuModel.HasFullPtrAuth"/>,
/// arm.c kvm_has_full_ptr_auth), the rule that KVM_ARM_VCPU_PTRAUTH_ADDRESS and _GENERIC come together
/// (arm.c kvm_vcpu_init_check_features), the ten key registers (sys_regs.c PTRAUTH_KEY: reset_unknown, undef_access,
/// ptrauth_visibility → REG_HIDDEN without vcpu_has_ptrauth), and the ID register fields sanitised away for a VM
/// without it (Arm64IdRegState.Limit). The interpreter executes the PAC/AUT instructions with these keys
/// (A64Interpreter.PointerAuth.cs, QARMA5 in Arm64PacCipher).
/// </summary>
internal static class Arm64PtrAuth
{
    /// <summary>ID_AA64ISAR1_EL1.{GPI, GPA, API, APA}.</summary>
    public const ulong Isar1Mask = (0xfUL << 28) | (0xfUL << 24) | (0xfUL << 8) | (0xfUL << 4);

    /// <summary>ID_AA64ISAR2_EL1.{APA3, GPA3}.</summary>
    public const ulong Isar2Mask = (0xfUL << 12) | (0xfUL << 8);

    public const uint AddressFeature = 1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_ADDRESS;

    public const uint GenericFeature = 1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_GENERIC;

    /// <summary>system_supported_vcpu_features: "if (!kvm_has_full_ptr_auth())" both PTRAUTH bits are cleared.</summary>
    public static uint SupportedFeatures(Arm64CpuModel model) => model.HasFullPtrAuth ? AddressFeature | GenericFeature : 0;

    /// <summary>
    /// kvm_vcpu_init_check_features: "For now make sure that both address/generic pointer authentication features are
    /// requested by the userspace together" (-EINVAL), checked after the unsupported-feature test.
    /// </summary>
    public static bool BothOrNeither(uint features) => ((features & AddressFeature) != 0) == ((features & GenericFeature) != 0);

    /// <summary>
    /// vcpu_has_ptrauth: (ARM64_HAS_ADDRESS_AUTH || ARM64_HAS_GENERIC_AUTH) &amp;&amp; (either feature) — with the
    /// both-or-neither rule, the VM was initialised with the pair.
    /// </summary>
    public static bool Has(uint features) => (features & (AddressFeature | GenericFeature)) != 0;

    /// <summary>The first KVM_ARM_VCPU_INIT of a pointer-authentication VM: the ID registers keep the PAuth fields.</summary>
    public static void InitVm(Arm64VmState vm)
    {
        lock (vm.IdRegs) vm.IdRegs.EnablePtrAuth();
    }

    /// <summary>
    /// sys_reg_descs[] PTRAUTH_KEY(APIA), (APIB), (APDA), (APDB), PTRAUTH_KEY(APGA): KEYLO then KEYHI, reset_unknown.
    /// With the features the guest's accesses do not trap (HCR_EL2.APK set by vcpu_set_pauth_traps): plain registers.
    /// </summary>
    public static IEnumerable<SysRegDesc> Descs()
    {
        string[] keys = ["APIA", "APIB", "APDA", "APDB", "APGA"];
        for (int k = 0; k < keys.Length; k++)
        {
            // APIAKEY (CRm 1, op2 0/1), APIBKEY (CRm 1, op2 2/3), APDAKEY (CRm 2, 0/1), APDBKEY (CRm 2, 2/3), APGAKEY (CRm 3, 0/1).
            int crm = 1 + k / 2, op2 = (k % 2) * 2;
            yield return new SysRegDesc($"{keys[k]}KEYLO_EL1", 3, 0, 2, crm, op2, SysRegReset.Unknown, PtrAuth: true);
            yield return new SysRegDesc($"{keys[k]}KEYHI_EL1", 3, 0, 2, crm, op2 + 1, SysRegReset.Unknown, PtrAuth: true);
        }
    }
}
