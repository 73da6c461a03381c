// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>arch/x86/kvm/x86.c and friends.</summary>
internal sealed class X86Kvm : KvmArch
{
    public X86Kvm(EmulatorConfig config) : base(config) { }

    // arch/x86/include/asm/kvm_host.h: KVM_INTERNAL_MEM_SLOTS = 3 (TSS, identity map, APIC access page).
    public override int UserMemSlots => short.MaxValue - 3;

    // kvm_dev_ioctl KVM_GET_VCPU_MMAP_SIZE: PAGE_SIZE (kvm_run) + KVM_PIO_PAGE_OFFSET page + coalesced MMIO page.
    public override long VcpuMmapSize => 3L * EmulatorConfig.PageSize;

    public override int MaxVcpuIds => Config.MaxVcpus * 4;

    public override int MaxNrAddressSpaces => Config.Kconfig.KVM_SMM ? 2 : 1;

    public override long InitVm(ulong type, out VmArchState state)
    {
        state = default;
        // kvm_arch_init_vm: !kvm_is_vm_type_supported(type) → EINVAL (type < 32 && BIT(type) in supported_vm_types).
        if (type >= 32 || !Config.VmTypes.Contains((uint)type)) return Err.EINVAL;
        uint t = (uint)type;
        state = new VmArchState(
            // kvm->arch.has_private_mem: SW_PROTECTED (kvm_arch_init_vm), SNP (sev.c), TDX (tdx.c).
            HasPrivateMem: t is KvmConstants.KVM_X86_SW_PROTECTED_VM or KvmConstants.KVM_X86_SNP_VM or KvmConstants.KVM_X86_TDX_VM,
            // kvm->arch.has_protected_state: SEV-ES, SNP, TDX (encrypted register state).
            HasProtectedState: t is KvmConstants.KVM_X86_SEV_ES_VM or KvmConstants.KVM_X86_SNP_VM or KvmConstants.KVM_X86_TDX_VM,
            PhysBits: Config.MaxGpaBits);
        return 0;
    }

    // kvm_arch_nr_memslot_as_ids: KVM_MAX_NR_ADDRESS_SPACES unless the VM has protected state (no SMM).
    public override int NrMemslotAsIds(Kvm kvm) => kvm.ArchState.HasProtectedState ? 1 : MaxNrAddressSpaces;

    public override bool HasPrivateMem(Kvm kvm) => kvm.ArchState.HasPrivateMem;

    // [PATCH v8 25/46]: x86 kvm_arch_supports_gmem_init_shared() was !kvm_arch_has_private_mem(kvm); with
    // gmem_in_place_conversion every VM type may create INIT_SHARED (shared) guest_memfd.
    public override bool SupportsGmemInitShared(Kvm kvm) =>
        !kvm.ArchState.HasPrivateMem || kvm.Kernel.InPlaceConversion;

    // arch/x86/include/asm/kvm_host.h kvm_arch_has_readonly_mem: !kvm->arch.has_protected_state.
    public override bool HasReadonlyMem(Kvm kvm) => !kvm.ArchState.HasProtectedState;

    public override long? CheckExtension(Kvm? kvm, long cap) => cap switch
    {
        // kvm_vm_ioctl_check_extension: BIT() mask of kvm_caps.supported_vm_types (6.8+; unknown before).
        // KVM_CAP_SYNC_REGS: "r = kvm_sync_valid_fields(kvm)" — 0 on a VM with protected state ("KVM: x86: Don't allow
        // KVM_RUN with sync regs for protected guests"); elsewhere the configuration's answer (the host's, 7).
        KvmCaps.KVM_CAP_SYNC_REGS when kvm is { ArchState.HasProtectedState: true } => 0,
        KvmCaps.KVM_CAP_VM_TYPES => Config.Generation.HasVmTypes() ? Config.VmTypes.Aggregate(0L, (m, t) => m | (1L << (int)t)) : 0,
        // KVM_CAP_PRE_FAULT_MEMORY: r = tdp_enabled (6.11+; unknown before).
        KvmCaps.KVM_CAP_PRE_FAULT_MEMORY => Config.Generation.HasPreFaultMemory() && Config.TdpEnabled ? 1 : 0,
        // KVM_CAP_READONLY_MEM: r = kvm ? kvm_arch_has_readonly_mem(kvm) : 1.
        KvmCaps.KVM_CAP_READONLY_MEM => kvm is null || HasReadonlyMem(kvm) ? 1 : 0,
        // "KVM: Add KVM_EXIT_MEMORY_FAULT exit to report faults to userspace" (6.8): r = 1 on x86.
        KvmCaps.KVM_CAP_MEMORY_FAULT_INFO => Config.Generation.HasUserMemory2() ? 1 : 0,
        // KVM_CAP_EXIT_HYPERCALL: r = KVM_EXIT_HYPERCALL_VALID_MASK (on /dev/kvm and every VM).
        KvmCaps.KVM_CAP_EXIT_HYPERCALL => (long)KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK,
        // KVM_CAP_NR_VCPUS: min(num_online_cpus(), KVM_MAX_VCPUS); KVM_CAP_MAX_VCPUS: KVM_MAX_VCPUS.
        // KVM_CAP_ENFORCE_PV_FEATURE_CPUID: r = 1 (since 5.10, so in every modeled generation; a vCPU-level cap).
        KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID => 1,
        // KVM_CAP_EXCEPTION_PAYLOAD: r = 1 (since 5.0; observed 1 on this host).
        KvmCaps.KVM_CAP_EXCEPTION_PAYLOAD => 1,
        // KVM_CAP_X2APIC_API: KVM_X2APIC_API_VALID_FLAGS, with the "suppress EOI broadcast" series this host's kernel
        // carries: 15 on /dev/kvm, on a VM 11 (no ENABLE_SUPPRESS_EOI_BROADCAST) unless its irqchip is split (observed
        // on kvm_pvm 6.18; X86/Irqchip/X2apicApi.cs).
        KvmCaps.KVM_CAP_X2APIC_API => kvm is { Irqchip.Mode: not Emulation.X86.Irqchip.IrqchipMode.Split } ? 11 : 15,
        // KVM_CAP_DISABLE_QUIRKS: r = 1; KVM_CAP_DISABLE_QUIRKS2: r = kvm_caps.supported_quirks (X86/Quirks.cs; observed
        // 1 and 0x5ff on this host, on /dev/kvm and a VM).
        KvmCaps.KVM_CAP_DISABLE_QUIRKS => 1,
        KvmCaps.KVM_CAP_DISABLE_QUIRKS2 => (long)Emulation.X86.Quirks.Supported(Config.Generation),
        // KVM_CAP_X86_TRIPLE_FAULT_EVENT: r = 1 (6.0, so every modeled generation; observed 1 on this host).
        KvmCaps.KVM_CAP_X86_TRIPLE_FAULT_EVENT => 1,
        // KVM_CAP_MSR_PLATFORM_INFO: r = 1 (4.19; observed 1 on /dev/kvm and a VM here).
        KvmCaps.KVM_CAP_MSR_PLATFORM_INFO => 1,
        // KVM_CAP_XSAVE: boot_cpu_has(X86_FEATURE_XSAVE). KVM_CAP_XSAVE2 (5.17, so every modeled generation): the
        // XSAVE image's size, at least sizeof(struct kvm_xsave); on /dev/kvm too.
        KvmCaps.KVM_CAP_XSAVE => 1,
        // KVM_CAP_MCE: r = KVM_MAX_MCE_BANKS (observed 32 on /dev/kvm and a VM).
        KvmCaps.KVM_CAP_MCE => Emulation.X86.MceBanks.MaxBanks,
        // KVM_CAP_VCPU_ATTRIBUTES: r = 1 (5.16, so every modeled generation): KVM_VCPU_TSC_CTRL, X86/TscAttributes.cs.
        KvmCaps.KVM_CAP_VCPU_ATTRIBUTES => 1,
        KvmCaps.KVM_CAP_XSAVE2 => Emulation.X86.XsaveRules.CapXsave2(Config.X86Cpu),
        // KVM_CAP_ADJUST_CLOCK: r = KVM_CLOCK_VALID_FLAGS; KVM_CAP_GET_TSC_KHZ: r = 1; KVM_CAP_TSC_CONTROL and
        // KVM_CAP_VM_TSC_CONTROL: r = kvm_caps.has_tsc_control — no scaling here (X86/KvmClock.cs).
        KvmCaps.KVM_CAP_ADJUST_CLOCK => Emulation.X86.KvmClock.ValidFlags,
        KvmCaps.KVM_CAP_GET_TSC_KHZ => 1,
        KvmCaps.KVM_CAP_TSC_CONTROL or KvmCaps.KVM_CAP_VM_TSC_CONTROL => 0,
        // The in-kernel irqchip (X86/Irqchip/): x86.c kvm_vm_ioctl_check_extension "case KVM_CAP_IRQCHIP: …
        // KVM_CAP_IRQ_INJECT_STATUS: … KVM_CAP_SPLIT_IRQCHIP: r = 1"; kvm_main.c KVM_CAP_SIGNAL_MSI 1, KVM_CAP_IRQ_ROUTING
        // KVM_MAX_IRQ_ROUTES; KVM_CAP_MSI_DEVID is arm64's (0 here). Probed on this host: 1, 1, 1, 1, 4096, 0.
        KvmCaps.KVM_CAP_IRQCHIP or KvmCaps.KVM_CAP_IRQ_INJECT_STATUS or KvmCaps.KVM_CAP_SPLIT_IRQCHIP or KvmCaps.KVM_CAP_SIGNAL_MSI =>
            Config.X86InKernelIrqchip ? 1 : 0,
        KvmCaps.KVM_CAP_IRQ_ROUTING => Config.X86InKernelIrqchip ? Emulation.X86.Irqchip.IrqRouting.MaxIrqRoutes : 0,
        KvmCaps.KVM_CAP_MSI_DEVID => 0,
        // x86.c kvm_vm_ioctl_check_extension: KVM_CAP_PIT, KVM_CAP_PIT2, KVM_CAP_PIT_STATE2, KVM_CAP_REINJECT_CONTROL
        // r = 1 under CONFIG_KVM_IOAPIC (probed 1 on /dev/kvm and a VM, with or without an irqchip).
        KvmCaps.KVM_CAP_PIT or KvmCaps.KVM_CAP_PIT2 or KvmCaps.KVM_CAP_PIT_STATE2 or KvmCaps.KVM_CAP_REINJECT_CONTROL =>
            Config.X86InKernelIrqchip ? 1 : 0,
        KvmCaps.KVM_CAP_NR_VCPUS => Math.Min(Config.OnlineCpus, Config.MaxVcpus),
        KvmCaps.KVM_CAP_MAX_VCPUS => Config.MaxVcpus,
        _ => null,
    };

    public override long EnableCap(Kvm kvm, in kvm_enable_cap cap) => Emulation.X86.VmEnableCap.Apply(kvm, cap);

    /// <summary>
    /// x86.c kvm_arch_vcpu_precreate: "if (!kvm->arch.max_vcpu_ids) kvm->arch.max_vcpu_ids = KVM_MAX_VCPU_IDS; if (id
    /// >= kvm->arch.max_vcpu_ids) return -EINVAL;" (KVM_CAP_MAX_VCPU_ID, X86/VmEnableCap.cs), then the vendor's
    /// vcpu_precreate (none for SVM).
    /// </summary>
    public override long VcpuPrecreate(Kvm kvm, int id)
    {
        if (kvm.X86MaxVcpuIds == 0) kvm.X86MaxVcpuIds = (ulong)MaxVcpuIds;
        return (ulong)id >= kvm.X86MaxVcpuIds ? Err.EINVAL : 0;
    }

    /// <summary>kvm_arch_dev_ioctl (x86.c): the /dev/kvm requests generic code does not know; default -EINVAL.</summary>
    public override long DevIoctl(uint request, IoctlArg arg)
    {
        if (request == KvmIoctls.KVM_GET_MSR_INDEX_LIST)
            return Emulation.X86.MsrIo.IndexList(arg, Emulation.X86.MsrLists.IndexList(Config));
        if (request == KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST)
            return Emulation.X86.MsrIo.IndexList(arg, Emulation.X86.MsrLists.FeatureList(Config));
        if (request == KvmIoctls.KVM_GET_MSRS)
            return Emulation.X86.MsrIo.GetFeatureMsrs(Config, arg);
        if (request == KvmIoctls.KVM_X86_GET_MCE_CAP_SUPPORTED)
            return Emulation.X86.MceBanks.GetSupportedIoctl(arg);
        if (Emulation.X86.CpuidIoctls.IsDevRequest(request))
            return Emulation.X86.CpuidIoctls.GetDevCpuid(Config, request, arg);
        if (Emulation.X86.SystemAttributes.IsRequest(request))
            return Emulation.X86.SystemAttributes.Ioctl(Config, request, arg);
        return Err.EINVAL;
    }

    public override long VmIoctl(Kvm kvm, uint request, IoctlArg arg)
    {
        if (request == KvmIoctls.KVM_SET_TSS_ADDR)
        {
            // kvm_vm_ioctl_set_tss_addr: addr > (unsigned int)(-3 * PAGE_SIZE) → EINVAL (three pages below 4 GiB).
            return arg.Value > unchecked((uint)(-3 * EmulatorConfig.PageSize)) ? Err.EINVAL : 0;
        }
        if (request == KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR)
        {
            // kvm_arch_vm_ioctl: "if (kvm->created_vcpus) goto set_identity_unlock" (EINVAL, before the copy), then
            // copy_from_user (EFAULT), then kvm_vm_ioctl_set_identity_map_addr: the vendor hook — VMX keeps the address
            // for its real-mode EPT identity table, SVM has none — returns 0. Nothing here reads it back.
            if (kvm.Vcpus.Count != 0) return Err.EINVAL;
            return arg.CopyFromUserPrefix(sizeof(ulong), out ulong _) ? 0 : Err.EFAULT;
        }
        if (request == KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP)
            return MemoryEncryptOp.VmIoctl(kvm, arg);
        // kvm_arch_vm_ioctl KVM_MEMORY_ENCRYPT_REG_REGION / UNREG_REGION (X86/SevRegions.cs).
        if (request == KvmIoctls.KVM_MEMORY_ENCRYPT_REG_REGION) return SevRegions.Register(kvm, arg);
        if (request == KvmIoctls.KVM_MEMORY_ENCRYPT_UNREG_REGION) return SevRegions.Unregister(kvm, arg);
        // kvm_arch_vm_ioctl KVM_X86_SET_MSR_FILTER (X86/MsrFilter.cs).
        if (request == KvmMsrFilter.KVM_X86_SET_MSR_FILTER)
            return Emulation.X86.MsrFilter.SetIoctl(kvm, arg);
        // KVM_CREATE_IRQCHIP, KVM_GET/SET_IRQCHIP (x86.c) and the generic KVM_IRQ_LINE(_STATUS), KVM_SET_GSI_ROUTING,
        // KVM_SIGNAL_MSI (kvm_main.c) of the in-kernel irqchip (X86/Irqchip/IrqchipIoctls.cs).
        if (Config.X86InKernelIrqchip && Emulation.X86.Irqchip.IrqchipIoctls.IsVmRequest(request))
            return Emulation.X86.Irqchip.IrqchipIoctls.VmIoctl(kvm, request, arg);
        // KVM_CREATE_PIT(2), KVM_GET/SET_PIT(2), KVM_REINJECT_CONTROL (x86.c, under CONFIG_KVM_IOAPIC like the
        // irqchip: X86/Irqchip/PitIoctls.cs).
        if (Config.X86InKernelIrqchip && Emulation.X86.Irqchip.PitIoctls.IsVmRequest(request))
            return Emulation.X86.Irqchip.PitIoctls.VmIoctl(kvm, request, arg);
        // kvm_arch_vm_ioctl: KVM_SET_CLOCK, KVM_GET_CLOCK, KVM_SET_TSC_KHZ, KVM_GET_TSC_KHZ (X86/KvmClock.cs).
        if (Emulation.X86.KvmClock.IsVmRequest(request))
            return kvm.Clock.VmIoctl(kvm, request, arg);
        // kvm_arch_vm_ioctl: default r = -ENOTTY.
        return Err.ENOTTY;
    }

    public override long PrepareMemoryRegion(Kvm kvm, KvmMemorySlot newSlot, MemslotChange change)
    {
        // kvm_arch_prepare_memory_region: CREATE/MOVE beyond kvm_mmu_max_gfn() → EINVAL.
        if (change is MemslotChange.Create or MemslotChange.Move)
        {
            ulong maxGfn = (1UL << (kvm.ArchState.PhysBits - EmulatorConfig.PageShift)) - 1;
            if (newSlot.BaseGfn + newSlot.NPages > maxGfn) return Err.EINVAL;
        }
        return 0;
    }
}
