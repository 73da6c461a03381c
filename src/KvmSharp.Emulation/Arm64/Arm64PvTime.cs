// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Stolen time (arch/arm64/kvm/pvtime.c, 6.18; Documentation/virt/kvm/arm/pvtime.rst): the KVM_ARM_VCPU_PVTIME_CTRL
/// attribute KVM_ARM_VCPU_PVTIME_IPA (kvm_arm_pvtime_set_attr / get_attr / has_attr), KVM_CAP_STEAL_TIME
/// (arm.c: "r = kvm_arm_pvtime_supported()"), and the SMCCC calls ARM_SMCCC_HV_PV_TIME_FEATURES / _ST
/// (hypercalls.c kvm_smccc_call_handler → kvm_hypercall_pv_features / kvm_init_stolen_time; Smccc.cs). The emulated host has
/// sched_info_on() [D: CONFIG_SCHED_INFO, as distribution kernels build it], so the feature exists. The stolen-time
/// counter itself stays 0: kvm_update_stolen_time adds current->sched_info.run_delay deltas, which the emulator does
/// not track [gap].
/// </summary>
internal static class Arm64PvTime
{
    /// <summary>INVALID_GPA (~0): vcpu->arch.steal.base before KVM_ARM_VCPU_PVTIME_IPA (kvm_arm_pvtime_vcpu_init at vCPU creation).</summary>
    public const ulong InvalidGpa = ulong.MaxValue;

    /// <summary>kvm_arm_pvtime_supported(): sched_info_on() of the emulated host [D].</summary>
    public const bool Supported = true;

    /// <summary>ARM_SMCCC_HV_PV_TIME_FEATURES: SMCCC_CALL_VAL(FAST, SMC_64, STANDARD_HYP, 0x20).</summary>
    public const uint PvTimeFeatures = 0xC500_0020;

    /// <summary>ARM_SMCCC_HV_PV_TIME_ST: SMCCC_CALL_VAL(FAST, SMC_64, STANDARD_HYP, 0x21).</summary>
    public const uint PvTimeSt = 0xC500_0021;

    /// <summary>sizeof(struct pvclock_vcpu_stolen_time): revision, attributes, stolen_time, padding[48].</summary>
    public const int StructSize = 64;

    /// <summary>
    /// kvm_arm_pvtime_set_attr: unsupported or not KVM_ARM_VCPU_PVTIME_IPA → ENXIO; get_user of a u64 → EFAULT; not
    /// 64-byte aligned → EINVAL; already set → EEXIST; "Check the address is in a valid memslot":
    /// kvm_is_error_hva(gfn_to_hva(kvm, ipa &gt;&gt; PAGE_SHIFT)) → EINVAL (no slot, or a read-only one: gfn_to_hva asks for
    /// a writable hva, KVM_HVA_ERR_RO_BAD). Nothing resets the base but vCPU creation.
    /// </summary>
    public static long SetAttr(KvmVcpu vcpu, in kvm_device_attr attr)
    {
        if (!Supported || attr.attr != KvmArm64VcpuAttrs.KVM_ARM_VCPU_PVTIME_IPA) return Err.ENXIO;
        var kvm = vcpu.Kvm;
        if (!UserMemory.CopyFromUser(kvm.Kernel.Config, attr.addr, out ulong ipa)) return Err.EFAULT;
        if ((ipa & 63) != 0) return Err.EINVAL;
        var state = Arm64VcpuState.Of(vcpu);
        if (state.StealBase != InvalidGpa) return Err.EEXIST;
        var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, ipa >> EmulatorConfig.PageShift);
        if (slot is null || (slot.Flags & KvmConstants.KVM_MEM_READONLY) != 0) return Err.EINVAL;
        state.StealBase = ipa;
        return 0;
    }

    /// <summary>kvm_arm_pvtime_get_attr: ENXIO as for set; put_user of vcpu->arch.steal.base (INVALID_GPA before a set) → EFAULT.</summary>
    public static long GetAttr(KvmVcpu vcpu, in kvm_device_attr attr)
    {
        if (!Supported || attr.attr != KvmArm64VcpuAttrs.KVM_ARM_VCPU_PVTIME_IPA) return Err.ENXIO;
        ulong ipa = Arm64VcpuState.Of(vcpu).StealBase;
        return UserMemory.CopyToUser(vcpu.Kvm.Kernel.Config, attr.addr, ipa) ? 0 : Err.EFAULT;
    }

    /// <summary>kvm_arm_pvtime_has_attr: KVM_ARM_VCPU_PVTIME_IPA when supported, else ENXIO.</summary>
    public static long HasAttr(in kvm_device_attr attr) =>
        Supported && attr.attr == KvmArm64VcpuAttrs.KVM_ARM_VCPU_PVTIME_IPA ? 0 : Err.ENXIO;

    /// <summary>
    /// kvm_hypercall_pv_features (reached through Smccc.Call once kvm_smccc_get_action let the call through:
    /// KVM_REG_ARM_STD_HYP_BIT_PV_TIME set): PV_TIME_FEATURES(x1 = PV_TIME_FEATURES or PV_TIME_ST) → SMCCC_RET_SUCCESS
    /// once the base is set, else NOT_SUPPORTED.
    /// </summary>
    public static ulong Features(Arm64VcpuState state, uint feature) =>
        (feature == PvTimeFeatures || feature == PvTimeSt) && state.StealBase != InvalidGpa ? 0 : Psci.NotSupported;

    /// <summary>
    /// kvm_init_stolen_time: with a base, the zeroed struct pvclock_vcpu_stolen_time is written there
    /// (kvm_write_guest_lock, its result ignored) and the base returned; without one INVALID_GPA.
    /// </summary>
    public static ulong InitStolenTime(KvmVcpu vcpu, Arm64VcpuState state)
    {
        ulong base_ = state.StealBase;
        if (base_ == InvalidGpa) return InvalidGpa;
        Span<byte> zero = stackalloc byte[StructSize];
        zero.Clear();
        _ = new Stage2Access(vcpu.Kvm) { DirtyRing = vcpu.DirtyRing }.Access(base_, zero, write: true, fetch: false);
        return base_;
    }
}
