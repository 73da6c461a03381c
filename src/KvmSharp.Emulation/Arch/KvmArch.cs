// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The kvm_arch_* hooks generic KVM calls (include/linux/kvm_host.h), one subclass per architecture, so the
/// generic code in KvmMain/ and GuestMemfd/ reads like virt/kvm/.
/// </summary>
internal abstract class KvmArch
{
    protected KvmArch(EmulatorConfig config) => Config = config;

    protected EmulatorConfig Config { get; }

    public static KvmArch For(EmulatorConfig config) => config.Architecture switch
    {
        Architecture.X86_64 => new X86Kvm(config),
        Architecture.Arm64 => new Arm64Kvm(config),
        _ => throw new ArgumentOutOfRangeException(nameof(config), config.Architecture, "unknown architecture"),
    };

    /// <summary>KVM_USER_MEM_SLOTS = KVM_MEM_SLOTS_NUM (SHRT_MAX) - KVM_INTERNAL_MEM_SLOTS.</summary>
    public abstract int UserMemSlots { get; }

    /// <summary>KVM_MAX_VCPU_IDS: x86 KVM_MAX_VCPUS * KVM_VCPU_ID_RATIO (4); arm64 KVM_MAX_VCPUS.</summary>
    public abstract int MaxVcpuIds { get; }

    /// <summary>KVM_GET_VCPU_MMAP_SIZE: the kvm_run page plus the arch's extra pages.</summary>
    public abstract long VcpuMmapSize { get; }

    /// <summary>kvm_arch_init_vm(): validates the KVM_CREATE_VM type and fills the per-VM arch state.</summary>
    public abstract long InitVm(ulong type, out VmArchState state);

    /// <summary>kvm_arch_nr_memslot_as_ids().</summary>
    public abstract int NrMemslotAsIds(Kvm kvm);

    /// <summary>KVM_MAX_NR_ADDRESS_SPACES; KVM_CAP_MULTI_ADDRESS_SPACE is generic only when it is above 1.</summary>
    public abstract int MaxNrAddressSpaces { get; }

    /// <summary>kvm_arch_has_private_mem().</summary>
    public abstract bool HasPrivateMem(Kvm kvm);

    /// <summary>kvm_arch_supports_gmem_init_shared(); the generic __weak default is true (virt/kvm/guest_memfd.c).</summary>
    public virtual bool SupportsGmemInitShared(Kvm kvm) => true;

    /// <summary>kvm_arch_has_readonly_mem().</summary>
    public abstract bool HasReadonlyMem(Kvm kvm);

    /// <summary>The arch part of KVM_CHECK_EXTENSION (kvm_vm_ioctl_check_extension); null when not modeled.</summary>
    public abstract long? CheckExtension(Kvm? kvm, long cap);

    /// <summary>
    /// kvm_vm_ioctl_enable_cap (the arch part of KVM_ENABLE_CAP). The default is arm64's as far as it is modeled:
    /// flags → -EINVAL, and none of its caps (KVM_CAP_ARM_MTE …) exist here, so every cap is -EINVAL
    /// (arch/arm64/kvm/arm.c; KVM_CAP_EXIT_HYPERCALL is unknown there).
    /// </summary>
    public virtual long EnableCap(Kvm kvm, in kvm_enable_cap cap) => Err.EINVAL;

    /// <summary>kvm_arch_dev_ioctl for requests generic code does not know.</summary>
    public virtual long DevIoctl(uint request, IoctlArg arg) => Err.EINVAL;

    /// <summary>kvm_arch_vm_ioctl for requests generic code does not know.</summary>
    public abstract long VmIoctl(Kvm kvm, uint request, IoctlArg arg);

    /// <summary>kvm_arch_prepare_memory_region(): the arch's veto on a new or moved slot.</summary>
    public abstract long PrepareMemoryRegion(Kvm kvm, KvmMemorySlot newSlot, MemslotChange change);

    /// <summary>
    /// The arch's entries of kvm_device_ops_table (kvm_register_device_ops), null for a type it does not register
    /// (x86 registers none: KVM_DEV_TYPE_VFIO is generic).
    /// </summary>
    public virtual KvmMain.Devices.KvmDeviceOps? DeviceOps(uint type) => null;

    /// <summary>kvm_arch_vcpu_precreate: the arch's veto on KVM_CREATE_VCPU before the vCPU is allocated.</summary>
    public virtual long VcpuPrecreate(Kvm kvm, int id) => 0;
}

/// <summary>Per-VM arch facts decided at KVM_CREATE_VM.</summary>
internal readonly record struct VmArchState(bool HasPrivateMem, bool HasProtectedState, int PhysBits);
