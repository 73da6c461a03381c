// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using static KvmSharp.Abi.Arm64.KvmArm64FwRegs;

namespace KvmSharp.Emulation.Arm64;

/// <summary>kvm->arch.psci_version and kvm->arch.smccc_feat: the VM-wide firmware state userspace configures.</summary>
internal sealed class Arm64FwState
{
    /// <summary>kvm->arch.psci_version: 0 until userspace writes KVM_REG_ARM_PSCI_VERSION.</summary>
    public ulong PsciVersion { get; set; }

    // kvm_arm_init_hypercalls: every standard, standard-hypervisor and vendor service on; the second vendor bitmap
    // (implementation discovery, for KVM_CAP_ARM_WRITABLE_IMP_ID_REGS users) off.
    public ulong StdBmap { get; set; } = Arm64FwRegs.StdFeatures;

    public ulong StdHypBmap { get; set; } = Arm64FwRegs.StdHypFeatures;

    public ulong VendorHypBmap { get; set; } = Arm64FwRegs.VendorHypFeatures;

    public ulong VendorHypBmap2 { get; set; }
}

/// <summary>
/// The firmware pseudo-registers (arch/arm64/kvm/hypercalls.c kvm_arm_fw_reg_ids[], kvm_arm_get_fw_reg,
/// kvm_arm_set_fw_reg, kvm_arm_set_fw_reg_bmap): the PSCI version the VM speaks, the SMCCC workaround levels of the
/// emulated host (<see cref="Arm64HostCpu"/>), and the hypercall service bitmaps.
/// </summary>
internal static class Arm64FwRegs
{
    /// <summary>KVM_ARM_SMCCC_STD_FEATURES = GENMASK(KVM_REG_ARM_STD_BMAP_BIT_COUNT - 1, 0): TRNG 1.0.</summary>
    public const ulong StdFeatures = 1UL << KVM_REG_ARM_STD_BIT_TRNG_V1_0;

    /// <summary>KVM_ARM_SMCCC_STD_HYP_FEATURES: PV_TIME.</summary>
    public const ulong StdHypFeatures = 1UL << KVM_REG_ARM_STD_HYP_BIT_PV_TIME;

    /// <summary>KVM_ARM_SMCCC_VENDOR_HYP_FEATURES: FUNC_FEAT and PTP.</summary>
    public const ulong VendorHypFeatures = (1UL << KVM_REG_ARM_VENDOR_HYP_BIT_FUNC_FEAT) | (1UL << KVM_REG_ARM_VENDOR_HYP_BIT_PTP);

    /// <summary>KVM_ARM_SMCCC_VENDOR_HYP_FEATURES_2: DISCOVER_IMPL_VER and DISCOVER_IMPL_CPUS.</summary>
    public const ulong VendorHypFeatures2 = (1UL << KVM_REG_ARM_VENDOR_HYP_BIT_DISCOVER_IMPL_VER) | (1UL << KVM_REG_ARM_VENDOR_HYP_BIT_DISCOVER_IMPL_CPUS);

    /// <summary>kvm_arm_fw_reg_ids[] (kvm_arm_copy_fw_reg_indices lists them in this order).</summary>
    public static ulong[] Indices { get; } =
    [
        KVM_REG_ARM_PSCI_VERSION, KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1, KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2,
        KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3, KVM_REG_ARM_STD_BMAP, KVM_REG_ARM_STD_HYP_BMAP, KVM_REG_ARM_VENDOR_HYP_BMAP,
        KVM_REG_ARM_VENDOR_HYP_BMAP_2,
    ];

    /// <summary>
    /// kvm_psci_version: with KVM_ARM_VCPU_PSCI_0_2 the VM's chosen version, else KVM_ARM_PSCI_LATEST (1.1); without
    /// it PSCI 0.1.
    /// </summary>
    public static ulong PsciVersion(Arm64FwState fw, bool psci02) =>
        !psci02 ? KVM_ARM_PSCI_0_1 : fw.PsciVersion != 0 ? fw.PsciVersion : KVM_ARM_PSCI_1_1;

    /// <summary>get_kernel_wa_level: what the host's mitigation state lets KVM promise the guest.</summary>
    private static ulong KernelWaLevel(ulong id)
    {
        if (id == KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1)
        {
            return Arm64HostCpu.SpectreV2 switch
            {
                SpectreState.Mitigated => KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1_AVAIL,
                SpectreState.Unaffected => KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1_NOT_REQUIRED,
                _ => KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1_NOT_AVAIL,
            };
        }
        if (id == KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2)
        {
            // "As for the hypercall discovery, we pretend we don't have any FW mitigation if SSBS is there at all times."
            return Arm64HostCpu.SpectreV4 switch
            {
                SpectreState.Mitigated when Arm64HostCpu.HasSsbs => KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_AVAIL,
                SpectreState.Mitigated or SpectreState.Unaffected => KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_REQUIRED,
                _ => KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_AVAIL,
            };
        }
        return Arm64HostCpu.SpectreBhb switch
        {
            SpectreState.Mitigated => KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3_AVAIL,
            SpectreState.Unaffected => KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3_NOT_REQUIRED,
            _ => KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3_NOT_AVAIL,
        };
    }

    /// <summary>kvm_arm_get_fw_reg: the exact ids of <see cref="Indices"/>, anything else -ENOENT.</summary>
    public static long Get(Arm64VmState vm, bool psci02, ulong id, Span<byte> value, out int size)
    {
        size = 0;
        var fw = vm.Firmware;
        ulong val;
        lock (fw)
        {
            if (id == KVM_REG_ARM_PSCI_VERSION) val = PsciVersion(fw, psci02);
            else if (id == KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1 || id == KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2 || id == KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3)
                val = KernelWaLevel(id) & KVM_REG_FEATURE_LEVEL_MASK;
            else if (id == KVM_REG_ARM_STD_BMAP) val = fw.StdBmap;
            else if (id == KVM_REG_ARM_STD_HYP_BMAP) val = fw.StdHypBmap;
            else if (id == KVM_REG_ARM_VENDOR_HYP_BMAP) val = fw.VendorHypBmap;
            else if (id == KVM_REG_ARM_VENDOR_HYP_BMAP_2) val = fw.VendorHypBmap2;
            else return Vfs.Err.ENOENT;
        }
        size = sizeof(ulong);
        BinaryPrimitives.WriteUInt64LittleEndian(value, val);
        return 0;
    }

    /// <summary>
    /// kvm_arm_set_fw_reg: "if (KVM_REG_SIZE(reg->id) != sizeof(val)) return -ENOENT", copy_from_user (EFAULT), then
    /// the per-register rules; an unknown id is -ENOENT, a refused value -EINVAL.
    /// </summary>
    public static long Set(Arm64VmState vm, bool psci02, ulong id, Func<int, byte[]?> copyFromUser)
    {
        if (Abi.Arm64.KvmArm64Regs.KVM_REG_SIZE(id) != sizeof(ulong)) return Vfs.Err.ENOENT;
        byte[]? bytes = copyFromUser(sizeof(ulong));
        if (bytes is null) return Vfs.Err.EFAULT;
        ulong val = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var fw = vm.Firmware;
        if (id == KVM_REG_ARM_PSCI_VERSION)
        {
            // 0.1 only without KVM_ARM_VCPU_PSCI_0_2, 0.2/1.0/1.1 only with it; no run-once check upstream.
            bool ok = val == KVM_ARM_PSCI_0_1 ? !psci02 : (val is KVM_ARM_PSCI_0_2 or KVM_ARM_PSCI_1_0 or KVM_ARM_PSCI_1_1) && psci02;
            if (!ok) return Vfs.Err.EINVAL;
            lock (fw) fw.PsciVersion = val;
            return 0;
        }
        if (id == KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1 || id == KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3)
        {
            // Userspace may ask for no more than the host offers; nothing is stored.
            if ((val & ~KVM_REG_FEATURE_LEVEL_MASK) != 0) return Vfs.Err.EINVAL;
            return KernelWaLevel(id) < val ? Vfs.Err.EINVAL : 0;
        }
        if (id == KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2)
        {
            if ((val & ~(KVM_REG_FEATURE_LEVEL_MASK | KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_ENABLED)) != 0) return Vfs.Err.EINVAL;
            // "The enabled bit must not be set unless the level is AVAIL."
            if ((val & KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_ENABLED) != 0 &&
                (val & KVM_REG_FEATURE_LEVEL_MASK) != KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_AVAIL)
                return Vfs.Err.EINVAL;
            // "Map all the possible incoming states to the only two we really want to deal with."
            ulong waLevel;
            switch (val & KVM_REG_FEATURE_LEVEL_MASK)
            {
                case KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_AVAIL:
                case KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_UNKNOWN:
                    waLevel = KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_AVAIL;
                    break;
                case KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_AVAIL:
                case KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_REQUIRED:
                    waLevel = KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2_NOT_REQUIRED;
                    break;
                default:
                    return Vfs.Err.EINVAL;
            }
            // "We can deal with NOT_AVAIL on NOT_REQUIRED, but not the other way around."
            return KernelWaLevel(id) < waLevel ? Vfs.Err.EINVAL : 0;
        }
        if (id == KVM_REG_ARM_STD_BMAP) return SetBmap(vm, val, StdFeatures, () => fw.StdBmap, v => fw.StdBmap = v);
        if (id == KVM_REG_ARM_STD_HYP_BMAP) return SetBmap(vm, val, StdHypFeatures, () => fw.StdHypBmap, v => fw.StdHypBmap = v);
        if (id == KVM_REG_ARM_VENDOR_HYP_BMAP) return SetBmap(vm, val, VendorHypFeatures, () => fw.VendorHypBmap, v => fw.VendorHypBmap = v);
        if (id == KVM_REG_ARM_VENDOR_HYP_BMAP_2) return SetBmap(vm, val, VendorHypFeatures2, () => fw.VendorHypBmap2, v => fw.VendorHypBmap2 = v);
        return Vfs.Err.ENOENT;
    }

    /// <summary>
    /// kvm_arm_set_fw_reg_bmap: "Check for unsupported bit" (-EINVAL), then under config_lock: after the VM ran, a
    /// changed value is -EBUSY.
    /// </summary>
    private static long SetBmap(Arm64VmState vm, ulong val, ulong features, Func<ulong> get, Action<ulong> set)
    {
        if ((val & ~features) != 0) return Vfs.Err.EINVAL;
        lock (vm.Firmware)
        {
            if (vm.HasRanOnce && val != get()) return Vfs.Err.EBUSY;
            set(val);
            return 0;
        }
    }
}
