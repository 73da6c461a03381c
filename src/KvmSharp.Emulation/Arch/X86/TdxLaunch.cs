// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Emulation.X86;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The TD launch flow (arch/x86/kvm/vmx/tdx.c as of 6.18): KVM_TDX_CAPABILITIES, KVM_TDX_INIT_VM and
/// KVM_TDX_FINALIZE_VM on the VM fd (tdx_vm_ioctl), KVM_TDX_INIT_VCPU, KVM_TDX_INIT_MEM_REGION
/// (<see cref="TdxInitMemRegion"/>) and KVM_TDX_GET_CPUID on a vCPU fd (tdx_vcpu_ioctl), the vCPU creation rule of
/// tdx_vcpu_create and KVM_RUN's tdx_vcpu_pre_run. The TDX module behind them is <see cref="TdxModule"/>, a model;
/// SEAMCALL failures (hw_error) other than KVM's own checks are not modelled, so hw_error is always 0.
/// </summary>
internal static class TdxLaunch
{
    /// <summary>KVM_MAX_CPUID_ENTRIES.</summary>
    private const uint MaxCpuidEntries = 256;

    /// <summary>tdx.c: TDX_SHARED_BIT_PWL_5 / TDX_SHARED_BIT_PWL_4 as GPA bits.</summary>
    private const ulong SharedBitPwl5 = 1UL << 51, SharedBitPwl4 = 1UL << 47;

    /// <summary>
    /// kvm_tdx_capabilities.user_tdvmcallinfo_1_r11 (init_kvm_tdx_caps): TDVMCALLINFO_SETUP_EVENT_NOTIFY_INTERRUPT only.
    /// GetQuote's bit 0 was dropped by "[PATCH] KVM: TDX: Don't report base TDVMCALLs" (Xiaoyao Li, 2025-07-17,
    /// Fixes: 28224ef02b56, a 6.16 fix): GetQuote is part of the GHCI base spec; kvm-x86/linux tdx.c (2026) agrees.
    /// </summary>
    private const ulong UserTdvmcallinfo1R11 = 1UL << 1;

    private static readonly int s_capsSize = Marshal.SizeOf<kvm_tdx_capabilities>();
    private static readonly int s_initVmSize = Marshal.SizeOf<kvm_tdx_init_vm>();

    /// <summary>tdx_vm_ioctl (vt_mem_enc_ioctl checked is_td).</summary>
    public static long VmIoctl(Kvm kvm, IoctlArg arg)
    {
        // copy_from_user(&tdx_cmd, argp, sizeof(struct kvm_tdx_cmd)) → -EFAULT.
        if (!arg.CopyFromUser(out kvm_tdx_cmd cmd)) return Err.EFAULT;
        // "Userspace should never set hw_error." → -EINVAL.
        if (cmd.hw_error != 0) return Err.EINVAL;
        var td = CocoState.Tdx(kvm);
        long r;
        // mutex_lock(&kvm->lock).
        lock (td)
        {
            switch (cmd.id)
            {
                case KvmMemoryEncrypt.KVM_TDX_CAPABILITIES: r = Capabilities(kvm, cmd); break;
                case KvmMemoryEncrypt.KVM_TDX_INIT_VM: r = InitVm(kvm, td, cmd); break;
                case KvmMemoryEncrypt.KVM_TDX_FINALIZE_VM: r = Finalize(td); break;
                // default: r = -EINVAL; goto out (nothing copied back).
                default: return Err.EINVAL;
            }
        }
        // copy_to_user(argp, &tdx_cmd, sizeof(struct kvm_tdx_cmd)) → -EFAULT.
        if (!arg.CopyToUser(cmd)) r = Err.EFAULT;
        return r;
    }

    /// <summary>tdx_get_capabilities.</summary>
    private static long Capabilities(Kvm kvm, in kvm_tdx_cmd cmd)
    {
        var config = kvm.Kernel.Config;
        // "flags is reserved for future use".
        if (cmd.flags != 0) return Err.EINVAL;
        if (!UserMemory.CopyFromUser(config, cmd.data, out kvm_tdx_capabilities caps)) return Err.EFAULT;
        var leaves = TdxModule.ConfigLeaves();
        // "if (caps->cpuid.nent < td_conf->num_cpuid_config) { ret = -E2BIG; goto out; }" — nent is not written back.
        if (caps.cpuid.nent < leaves.Length) return Err.E2BIG;
        caps = default;
        caps.supported_attrs = TdxModule.SupportedAttrs;
        caps.supported_xfam = TdxModule.SupportedXfam;
        caps.user_tdvmcallinfo_1_r11 = UserTdvmcallinfo1R11;
        caps.cpuid.nent = (uint)leaves.Length;
        if (!UserMemory.CopyToUser(config, cmd.data, caps)) return Err.EFAULT;
        return UserMemory.CopyToUser(config, cmd.data + (ulong)s_capsSize, MemoryMarshal.AsBytes(leaves.AsSpan())) ? 0 : Err.EFAULT;
    }

    /// <summary>tdx_td_init → setup_tdparams → __tdx_td_init.</summary>
    private static long InitVm(Kvm kvm, TdxInfo td, in kvm_tdx_cmd cmd)
    {
        var config = kvm.Kernel.Config;
        if (td.State != TdState.Uninitialized) return Err.EINVAL;
        if (cmd.flags != 0) return Err.EINVAL;
        if (!UserMemory.CopyFromUser(config, cmd.data, out kvm_tdx_init_vm init)) return Err.EFAULT;
        if (init.cpuid.nent > MaxCpuidEntries) return Err.E2BIG;
        var entries = new kvm_cpuid_entry2[init.cpuid.nent];
        if (!UserMemory.CopyFromUser(config, cmd.data + (ulong)s_initVmSize, MemoryMarshal.AsBytes(entries.AsSpan())))
            return Err.EFAULT;
        foreach (ulong v in init.reserved)
            if (v != 0) return Err.EINVAL;
        if (init.cpuid.padding != 0) return Err.EINVAL;

        // setup_tdparams.
        if (kvm.Vcpus.Count != 0) return Err.EBUSY;
        if ((init.attributes & ~TdxModule.SupportedAttrs) != 0) return Err.EINVAL;
        if ((init.xfam & ~TdxModule.SupportedXfam) != 0) return Err.EINVAL;
        // setup_tdparams_eptp_controls: CPUID.0x80000008.EAX[23:16] chooses GPAW 48 (4-level EPT) or 52 (5-level,
        // which the emulated host has when its MAXPHYADDR is 52).
        if (TdxModule.Find(entries, 0x8000_0008, 0) is not { } gpaw) return Err.EINVAL;
        int guestPa = (int)((gpaw.eax >> 16) & 0xff);
        if (guestPa is not (48 or 52)) return Err.EINVAL;
        if (guestPa == 52 && config.MaxGpaBits < 52) return Err.EINVAL;
        // setup_tdparams_cpuids: every entry must be one of the module's configuration leaves ("fail if there were
        // entries that didn't get copied to td_params").
        int copied = 0;
        foreach (var leaf in TdxModule.ConfigLeaves())
            if (TdxModule.Find(entries, leaf.function, leaf.index) is not null) copied++;
        if (copied != entries.Length) return Err.EINVAL;

        // __tdx_td_init: HKID, TDR/TDCS pages, TDH.MNG.CREATE/KEY.CONFIG/ADDCX/INIT all succeed in the model.
        td.HkidAssigned = true;
        td.Attributes = init.attributes;
        td.Xfam = init.xfam | TdxModule.XfamFixed1;
        td.Cpuid = entries;
        // kvm->arch.gfn_direct_bits = TDX_SHARED_BIT_PWL_5 with TDX_CONFIG_FLAGS_MAX_GPAW, else PWL_4.
        td.SharedGpaBit = guestPa == 52 ? SharedBitPwl5 : SharedBitPwl4;
        td.State = TdState.Initialized;
        TdxMeasurement.InitVm(td, init); // TDH.MNG.INIT: MRTD starts, MRCONFIGID/MROWNER/MROWNERCONFIG from TD_PARAMS
        return 0;
    }

    /// <summary>tdx_td_finalize.</summary>
    private static long Finalize(TdxInfo td)
    {
        // guard(mutex)(&kvm->slots_lock); "if (!is_hkid_assigned(kvm_tdx) || kvm_tdx->state == TD_STATE_RUNNABLE)
        // return -EINVAL;". nr_premapped (pages pre-faulted by KVM_PRE_FAULT_MEMORY and not yet added) is always 0
        // here: pre-faulting is refused before finalization (CocoState.PreFaultAllowed).
        if (!td.HkidAssigned || td.State == TdState.Runnable) return Err.EINVAL;
        // TDH.MR.FINALIZE succeeds (hw_error 0); kvm->arch.pre_fault_allowed = true.
        TdxMeasurement.Finalize(td);
        td.State = TdState.Runnable;
        return 0;
    }

    /// <summary>
    /// tdx_vcpu_create's first rule: "if (kvm_tdx->state != TD_STATE_INITIALIZED) return -EIO;" — a TD's vCPUs are
    /// created after KVM_TDX_INIT_VM and before KVM_TDX_FINALIZE_VM. On success the vCPU's FPU is confidential
    /// (fpstate_set_confidential) and its state protected ("guest_state_protected = !(attributes &amp;
    /// TDX_TD_ATTR_DEBUG)", always: DEBUG is not among KVM_SUPPORTED_TD_ATTRS). The next rule there ("TDX module mandates
    /// APICv, which requires an in-kernel local APIC": -EINVAL without a split irqchip) belongs with the in-kernel
    /// irqchip and goes right after this call.
    /// </summary>
    public static long VcpuCreate(Kvm kvm)
    {
        if (!CocoState.IsTd(kvm)) return 0;
        return CocoState.Tdx(kvm).State != TdState.Initialized ? Err.EIO : 0;
    }

    /// <summary>The TD vCPU's flags from tdx_vcpu_create (called once the vCPU exists).</summary>
    public static void VcpuCreated(KvmVcpu vcpu)
    {
        if (!CocoState.IsTd(vcpu.Kvm)) return;
        var coco = CocoState.Vcpu(vcpu);
        coco.FpstateConfidential = true;
        coco.GuestStateProtected = (CocoState.Tdx(vcpu.Kvm).Attributes & TdxModule.TdAttrDebug) == 0;
        // vcpu->arch.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NX (KVM's view; the TD's real state is the module's).
        vcpu.Cpu.Sregs.efer = X86Consts.EFER_SCE | X86Consts.EFER_LME | X86Consts.EFER_LMA | X86Consts.EFER_NX;
    }

    /// <summary>
    /// tdx_vcpu_pre_run (kvm_arch_vcpu_ioctl_run, after the immediate_exit check): "if (to_kvm_tdx(vcpu-&gt;kvm)-&gt;state
    /// != TD_STATE_RUNNABLE || to_tdx(vcpu)-&gt;state != VCPU_TD_STATE_INITIALIZED) return -EINVAL;".
    /// </summary>
    public static long PreRun(KvmVcpu vcpu)
    {
        if (!CocoState.IsTd(vcpu.Kvm)) return 0;
        return CocoState.Tdx(vcpu.Kvm).State != TdState.Runnable || !CocoState.Vcpu(vcpu).TdInitialized ? Err.EINVAL : 0;
    }

    /// <summary>tdx_vcpu_ioctl (vt_vcpu_mem_enc_ioctl checked is_td_vcpu).</summary>
    public static long VcpuIoctl(KvmVcpu vcpu, IoctlArg arg)
    {
        var td = CocoState.Tdx(vcpu.Kvm);
        // "if (!is_hkid_assigned(kvm_tdx) || kvm_tdx->state == TD_STATE_RUNNABLE) return -EINVAL;" before the copy.
        if (!td.HkidAssigned || td.State == TdState.Runnable) return Err.EINVAL;
        if (!arg.CopyFromUser(out kvm_tdx_cmd cmd)) return Err.EFAULT;
        if (cmd.hw_error != 0) return Err.EINVAL;
        // The cmd itself is not copied back by any vCPU sub-command.
        return cmd.id switch
        {
            KvmMemoryEncrypt.KVM_TDX_INIT_VCPU => InitVcpu(vcpu, td, cmd),
            KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION => TdxInitMemRegion.InitMemRegion(vcpu, td, cmd),
            KvmMemoryEncrypt.KVM_TDX_GET_CPUID => GetCpuid(vcpu, td, cmd),
            _ => Err.EINVAL,
        };
    }

    /// <summary>tdx_vcpu_init → kvm_apic_set_base, tdx_td_vcpu_init.</summary>
    private static long InitVcpu(KvmVcpu vcpu, TdxInfo td, in kvm_tdx_cmd cmd)
    {
        var coco = CocoState.Vcpu(vcpu);
        if (cmd.flags != 0) return Err.EINVAL;
        if (coco.TdInitialized) return Err.EINVAL;
        lock (vcpu.Mutex)
        {
            // "TDX requires X2APIC, userspace is responsible for configuring guest CPUID accordingly":
            // apic_base = APIC_DEFAULT_PHYS_BASE | LAPIC_MODE_X2APIC | (reset BSP ? MSR_IA32_APICBASE_BSP : 0);
            // kvm_apic_set_base(vcpu, apic_base, true) fails (-EINVAL here) when X2APIC_ENABLE is reserved, i.e. the
            // guest's CPUID.1:ECX lacks x2APIC (bit 21).
            if (TdxModule.Find(vcpu.Cpu.Cpuid.Entries, 1, 0) is not { } leaf1 || (leaf1.ecx & (1u << 21)) == 0) return Err.EINVAL;
            // kvm_vcpu_is_reset_bsp: vcpu_id == kvm->arch.bsp_vcpu_id (0 unless KVM_SET_BOOT_CPU_ID).
            vcpu.Cpu.Sregs.apic_base = 0xfee0_0000UL | (1UL << 11) | (1UL << 10) | (vcpu.Id == 0 ? 1UL << 8 : 0);
            // tdx_td_vcpu_init: TDH.VP.CREATE/ADDCX/INIT(vcpu_rcx = cmd->data); "vcpu->arch.mp_state =
            // KVM_MP_STATE_RUNNABLE".
            vcpu.Cpu.State.MpState = KvmMpState.KVM_MP_STATE_RUNNABLE;
            SetInitialState(vcpu, td, cmd.data);
            coco.TdInitialized = true;
            TdxVcpuIndex.Initialized(vcpu); // TDH.VP.CREATE/INIT: the module's NUM_VCPUS and VCPU_INDEX (TDG.VP.INFO)
        }
        return 0;
    }

    /// <summary>
    /// The TD vCPU's architectural state after TDH.VP.INIT, as the emulator models the TDX module (Intel TDX Module
    /// ABI spec, "Initial State of Guest TD VCPU"; not checked against hardware): 32-bit protected mode without
    /// paging, flat 4 GiB segments, RIP = 0xFFFFFFF0, CR0 = PE | NE | ET, RCX = the value TDH.VP.INIT got ("VMM can
    /// pass one 64bit auxiliary data to vcpu via RCX for guest BIOS", tdx.c) and RBX = the GPAW. Userspace cannot read
    /// it (the state is protected); the guest starts from it.
    /// </summary>
    private static void SetInitialState(KvmVcpu vcpu, TdxInfo td, ulong rcx)
    {
        var cpu = vcpu.Cpu;
        Array.Clear(cpu.Gpr);
        cpu.Gpr[X86Cpu.RCX] = rcx;
        cpu.Gpr[X86Cpu.RBX] = (ulong)System.Numerics.BitOperations.TrailingZeroCount(td.SharedGpaBit) + 1;
        cpu.Rip = 0xffff_fff0;
        cpu.Rflags = 0x2;
        var code = new kvm_segment { @base = 0, limit = 0xffff_ffff, selector = 0x8, type = 0xb, present = 1, db = 1, s = 1, g = 1 };
        var data = code with { selector = 0x10, type = 0x3 };
        cpu.Sregs.cs = code;
        cpu.Sregs.ds = cpu.Sregs.es = cpu.Sregs.fs = cpu.Sregs.gs = cpu.Sregs.ss = data;
        cpu.Sregs.cr0 = X86Consts.CR0_PE | X86Consts.CR0_ET | (1UL << 5);
    }

    /// <summary>tdx_vcpu_get_cpuid: the TD's CPUID leaves, E2BIG (with the needed count written back) when nent is short.</summary>
    private static long GetCpuid(KvmVcpu vcpu, TdxInfo td, in kvm_tdx_cmd cmd)
    {
        var config = vcpu.Kvm.Kernel.Config;
        if (!UserMemory.CopyFromUser(config, cmd.data, out kvm_cpuid2 header)) return Err.EFAULT;
        var entries = TdxModule.TdCpuid(td);
        long r = header.nent < entries.Count ? Err.E2BIG : 0;
        header.nent = (uint)entries.Count;
        if (!UserMemory.CopyToUser(config, cmd.data, header)) return Err.EFAULT;
        if (r != 0) return r;
        var bytes = MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(entries));
        return UserMemory.CopyToUser(config, cmd.data + (ulong)Marshal.SizeOf<kvm_cpuid2>(), bytes) ? 0 : Err.EFAULT;
    }
}
