// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The arm64 vCPU ioctls (virt/kvm/kvm_main.c kvm_vcpu_ioctl → arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl), called
/// with vcpu->mutex held. KVM_GET/SET_MP_STATE report and set the power state (RUNNABLE / STOPPED / SUSPENDED). The vCPU device attributes of the PMU, timer and PV-time groups are modelled (Arm64PmuAttrs.cs,
/// Arm64TimerAttrs.cs, Arm64PvTime.cs); vCPU events are not (they answer EINVAL like an unknown ioctl).
/// KVM_ARM_VCPU_FINALIZE finalizes an SVE vCPU (Arm64Sve.cs); before that KVM_RUN and KVM_GET_REG_LIST answer EPERM.
/// KVM_GET_REG_LIST lists the core registers (Arm64CoreRegs), the SVE registers (Arm64Sve), the firmware
/// pseudo-registers (Arm64FwRegs), the timer registers (Arm64Timer), the modelled system registers (Arm64SysRegs) and
/// the CCSIDR demux ids (Arm64CacheRegs), in kvm_arm_copy_reg_indices order. With an in-kernel vGIC the first KVM_RUN
/// checks its set-up (Vgic/VgicInit.cs); the interpreter delivers no interrupts from it, and guest accesses to its frames are not
/// emulated in the kernel (they exit as MMIO).
/// </summary>
internal static class Arm64VcpuIoctls
{
    /// <summary>KVM_VCPU_VALID_FEATURES = BIT(KVM_VCPU_MAX_FEATURES) - 1, KVM_VCPU_MAX_FEATURES = 9 (6.18).</summary>
    private const uint ValidFeatures = (1u << 9) - 1;

    /// <summary>
    /// system_supported_vcpu_features() of the emulated host [D]: POWER_OFF, PSCI_0_2 and PMU_V3
    /// (kvm_supports_guest_pmuv3: the host has a PMUv3, KVM_CAP_ARM_PMU_V3 = 1), plus PTRAUTH_ADDRESS/GENERIC when the
    /// host CPU model has full pointer authentication (<see cref="Arm64PtrAuth.SupportedFeatures"/>; not the default
    /// N1) and SVE when it has SVE (<see cref="Arm64Sve.SupportedFeatures"/>) — no AArch32 EL1, no nested virtualization. A PMU vCPU gets the PMU registers (Arm64PmuRegs) and runs once
    /// KVM_ARM_VCPU_PMU_V3_INIT created its PMU (Arm64PmuAttrs: kvm_arm_pmu_v3_enable at the first KVM_RUN).
    /// </summary>
    private const uint BaseSupportedFeatures = (1u << KvmArm64Constants.KVM_ARM_VCPU_POWER_OFF) | (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2) |
        (1u << KvmArm64Constants.KVM_ARM_VCPU_PMU_V3);

    public static long Ioctl(KvmVcpu vcpu, uint request, IoctlArg arg)
    {
        var state = Arm64VcpuState.Of(vcpu);
        if (request == KvmIoctls.KVM_RUN)
        {
            // kvm_vcpu_ioctl: "if (arg) goto out" (-EINVAL); kvm_arch_vcpu_run_pid_change: !kvm_vcpu_initialized → -ENOEXEC.
            if (arg.Value != 0) return Err.EINVAL;
            if (!state.Initialized) return Err.ENOEXEC;
            // kvm_arch_vcpu_run_pid_change: "if (!kvm_arm_vcpu_is_finalized(vcpu)) return -EPERM;".
            if (!Arm64Sve.IsFinalized(state.Cpu)) return Err.EPERM;
            if (!state.HasRunOnce)
            {
                // kvm_arch_vcpu_run_pid_change, first run: "Map the VGIC hardware resources before running a vcpu
                // the first time on this VM" (kvm_vgic_map_resources; its errno fails KVM_RUN).
                long r;
                lock (vcpu.Kvm.Kernel.SyncRoot) r = Vgic.VgicInit.MapResources(vcpu.Kvm);
                if (r != 0) return r;
                // kvm_timer_enable (the timer PPIs, claimed against each other and the PMU's), then, for a PMU vCPU,
                // kvm_arm_pmu_v3_enable.
                r = Arm64TimerAttrs.Enable(vcpu);
                if (r != 0) return r;
                r = Arm64PmuAttrs.Enable(vcpu);
                if (r != 0) return r;
                state.HasRunOnce = true;
                // "set_bit(KVM_ARCH_FLAG_HAS_RAN_ONCE, &kvm->arch.flags)" under config_lock: ID registers and
                // firmware bitmaps become immutable (kvm_vm_has_ran_once).
                var vm = Arm64VmState.Of(vcpu.Kvm);
                lock (vm.IdRegs) lock (vm.Firmware) vm.HasRanOnce = true;
            }
            return Arm64Run.Run(vcpu, state);
        }
        // arm.c KVM_SET/GET/HAS_DEVICE_ATTR: no KVM_ARM_VCPU_INIT needed (Arm64PmuAttrs.cs).
        if (Arm64VcpuAttrs.IsRequest(request)) return Arm64VcpuAttrs.Ioctl(vcpu, request, arg);
        if (request == KvmArm64Ioctls.KVM_ARM_VCPU_INIT)
            return arg.CopyFromUser(out kvm_vcpu_init init) ? VcpuInit(vcpu, state, init) : Err.EFAULT;
        if (request == KvmArm64Ioctls.KVM_GET_REG_LIST)
            return GetRegList(vcpu, state, arg);
        if (request == KvmArm64Sve.KVM_ARM_VCPU_FINALIZE)
        {
            // arm.c KVM_ARM_VCPU_FINALIZE: "if (!kvm_vcpu_initialized(vcpu)) return -ENOEXEC; if (get_user(what,
            // (const int __user *)argp)) return -EFAULT; return kvm_arm_vcpu_finalize(vcpu, what);".
            if (!state.Initialized) return Err.ENOEXEC;
            if (!arg.CopyFromUser(out int what)) return Err.EFAULT;
            return Arm64Sve.Finalize(state.Cpu, what);
        }
        if (request == KvmArm64Ioctls.KVM_GET_ONE_REG || request == KvmArm64Ioctls.KVM_SET_ONE_REG)
        {
            if (!state.Initialized) return Err.ENOEXEC;
            if (!arg.CopyFromUser(out kvm_one_reg reg)) return Err.EFAULT;
            return request == KvmArm64Ioctls.KVM_GET_ONE_REG ? GetOneReg(vcpu, state, reg) : SetOneReg(vcpu, state, reg);
        }
        if (request == SetGuestDebugRequest)
        {
            // kvm_main.c copies the whole arm64 struct kvm_guest_debug (control, pad, dbg_bcr/bvr/wcr/wvr[16]); guest.c
            // kvm_arch_vcpu_ioctl_set_guest_debug: "if (dbg->control & ~KVM_GUESTDBG_VALID_MASK) return -EINVAL";
            // with KVM_GUESTDBG_ENABLE "vcpu->guest_debug = dbg->control" (USE_HW also copies dbg->arch), else
            // "vcpu->guest_debug = 0; vcpu_clear_flag(vcpu, DBG_SS_ACTIVE_PENDING)". SINGLESTEP is acted on
            // (Arm64SingleStep); BRK routing and the host's breakpoints and watchpoints in Arm64HostDebug.
            if (!arg.CopyFromUserPrefix(sizeof(ulong), out ulong control) || (uint)arg.Buffer.Length < SetGuestDebugSize) return Err.EFAULT;
            if (((uint)control & ~GuestDebugValidMask) != 0) return Err.EINVAL;
            Arm64HostDebug.Set(state, (uint)control, arg.Buffer);
            if (((uint)control & KvmConstants.KVM_GUESTDBG_ENABLE) != 0)
            {
                state.GuestDebug = (uint)control;
            }
            else
            {
                state.GuestDebug = 0;
                Arm64SingleStep.Disabled(state);
            }
            return 0;
        }
        if (request == KvmIoctls.KVM_GET_MP_STATE)
        {
            // kvm_vcpu_ioctl → kvm_arch_vcpu_ioctl_get_mpstate: "*mp_state = READ_ONCE(vcpu->arch.mp_state)";
            // copy_to_user → EFAULT.
            return arg.CopyToUser(new kvm_mp_state { mp_state = state.MpState }) ? 0 : Err.EFAULT;
        }
        if (request == KvmIoctls.KVM_SET_MP_STATE)
        {
            // kvm_arch_vcpu_ioctl_set_mpstate (under mp_state_lock): RUNNABLE is written, STOPPED →
            // __kvm_arm_vcpu_power_off, SUSPENDED → kvm_arm_vcpu_suspend (mp_state = SUSPENDED + KVM_REQ_SUSPEND:
            // the next KVM_RUN blocks as for WFI, Arm64Run), anything else EINVAL with nothing changed.
            if (!arg.CopyFromUser(out kvm_mp_state mp)) return Err.EFAULT;
            if (mp.mp_state is not (KvmMpState.KVM_MP_STATE_RUNNABLE or KvmMpState.KVM_MP_STATE_STOPPED or KvmMpState.KVM_MP_STATE_SUSPENDED))
                return Err.EINVAL;
            lock (vcpu.Kvm.Kernel.SyncRoot) state.MpState = mp.mp_state;
            return 0;
        }
        // KVM_GET/SET_REGS, KVM_GET/SET_SREGS: -EINVAL on arm64 (guest.c); every other request: "default: r = -EINVAL".
        return Err.EINVAL;
    }

    /// <summary>arm64 struct kvm_guest_debug: control, pad, then kvm_guest_debug_arch's four __u64[16] arrays.</summary>
    private const uint SetGuestDebugSize = 8 + 4 * 16 * 8;

    /// <summary>KVM_SET_GUEST_DEBUG as arm64 encodes it: _IOW(KVMIO, 0x9b, 520 bytes).</summary>
    internal static readonly uint SetGuestDebugRequest = IoctlEncoding._IOW(KvmIoctls.KVMIO, 0x9b, SetGuestDebugSize);

    /// <summary>arch/arm64/include/asm/kvm_host.h KVM_GUESTDBG_VALID_MASK: ENABLE | USE_SW_BP | USE_HW (0x20000) | SINGLESTEP.</summary>
    internal const uint GuestDebugValidMask = KvmConstants.KVM_GUESTDBG_ENABLE | KvmConstants.KVM_GUESTDBG_SINGLESTEP
        | KvmConstants.KVM_GUESTDBG_USE_SW_BP | 0x20000;

    private const uint PmuFeature = 1u << KvmArm64Constants.KVM_ARM_VCPU_PMU_V3;

    /// <summary>kvm_arch_vcpu_ioctl_vcpu_init → kvm_vcpu_set_target → kvm_vcpu_init_check_features / __kvm_vcpu_set_target.</summary>
    private static long VcpuInit(KvmVcpu vcpu, Arm64VcpuState state, kvm_vcpu_init init)
    {
        // "Treat the power-off vCPU feature as ephemeral."
        bool powerOff = (init.features[0] & (1u << KvmArm64Constants.KVM_ARM_VCPU_POWER_OFF)) != 0;
        uint features = init.features[0] & ~(1u << KvmArm64Constants.KVM_ARM_VCPU_POWER_OFF);
        // kvm_vcpu_set_target: target != KVM_ARM_TARGET_GENERIC_V8 && target != kvm_target_cpu() → -EINVAL (the
        // emulated host's kvm_target_cpu() is the generic target too).
        if (init.target != KvmArm64Constants.KVM_ARM_TARGET_GENERIC_V8) return Err.EINVAL;
        // kvm_vcpu_init_check_features: unknown bits or any features[1..6] → -ENOENT; unsupported → -EINVAL.
        if ((features & ~ValidFeatures) != 0) return Err.ENOENT;
        for (int i = 1; i < 7; i++)
        {
            if (init.features[i] != 0) return Err.ENOENT;
        }
        var vm = Arm64VmState.Of(vcpu.Kvm);
        var model = vm.IdRegs.Model;
        if ((features & ~(BaseSupportedFeatures | Arm64PtrAuth.SupportedFeatures(model) | Arm64Sve.SupportedFeatures(model))) != 0)
            return Err.EINVAL;
        if (!Arm64PtrAuth.BothOrNeither(features)) return Err.EINVAL;
        lock (vcpu.Kvm.Kernel.SyncRoot)
        {
            // kvm_vcpu_init_changed: every vCPU of a VM must be initialized with the same features.
            if (vm.ConfiguredFeatures is uint configured && configured != features) return Err.EINVAL;
            // First init of the VM: kvm_setup_vcpu → kvm_arm_set_default_pmu, and the ID registers' first reset
            // (reset_vm_ftr_id_reg → sanitise_id_aa64dfr0_el1: PMUVer of the PMU).
            if (vm.ConfiguredFeatures is null && (features & PmuFeature) != 0) Arm64PmuRegs.InitVm(vm);
            // reset_vm_ftr_id_reg with vcpu_has_ptrauth: ID_AA64ISAR1/2_EL1 keep the host's PAuth fields.
            if (vm.ConfiguredFeatures is null && Arm64PtrAuth.Has(features)) Arm64PtrAuth.InitVm(vm);
            // kvm_vcpu_enable_sve sets KVM_ARCH_FLAG_GUEST_HAS_SVE before the ID registers' first reset.
            if (vm.ConfiguredFeatures is null && (features & Arm64Sve.Feature) != 0) Arm64Sve.InitVm(vm);
            vm.ConfiguredFeatures = features;
        }
        state.Features = features;
        state.Cpu.HasPmu = (features & PmuFeature) != 0;
        state.Cpu.HasPtrAuth = Arm64PtrAuth.Has(features);
        state.Initialized = true;
        // kvm_reset_vcpu; a re-init resets the vCPU as well (kvm_vcpu_enable_sve before finalization, the SVE
        // state zeroed after it).
        Arm64Sve.InitVcpu(state.Cpu, features);
        state.Cpu.Reset();
        state.PendingMmio = null;
        // "Handle the start in power-off case": KVM_MP_STATE_STOPPED, else RUNNABLE.
        state.Stopped = powerOff;
        return 0;
    }

    /// <summary>
    /// arm.c KVM_GET_REG_LIST: ENOEXEC before KVM_ARM_VCPU_INIT, "r = -EPERM; if (!kvm_arm_vcpu_is_finalized(vcpu))
    /// break;" (an SVE vCPU before KVM_ARM_VCPU_FINALIZE), copy_from_user of n (EFAULT), the needed count written
    /// back, E2BIG when n is smaller, then the ids (kvm_arm_copy_reg_indices).
    /// </summary>
    private static long GetRegList(KvmVcpu vcpu, Arm64VcpuState state, IoctlArg arg)
    {
        if (!state.Initialized) return Err.ENOEXEC;
        if (!Arm64Sve.IsFinalized(state.Cpu)) return Err.EPERM;
        if (!arg.CopyFromUser(out ulong n)) return Err.EFAULT;
        // copy_core_reg_indices, copy_sve_reg_indices, kvm_arm_copy_fw_reg_indices, copy_timer_indices,
        // kvm_arm_copy_sys_reg_indices.
        var ids = Arm64CoreRegs.Indices(state.Cpu.Sve is not null).Concat(Arm64Sve.Indices(state.Cpu)).Concat(Arm64FwRegs.Indices).Concat(Arm64Timer.Indices).Concat(Arm64SysRegs.Indices(state.Cpu)).ToArray();
        if (!arg.CopyToUser((ulong)ids.Length)) return Err.EFAULT;
        if (n < (ulong)ids.Length) return Err.E2BIG;
        // put_user of each id after the count: the user's array must hold them all.
        if (arg.Buffer.Length < (ids.Length + 1) * sizeof(ulong)) return Err.EFAULT;
        for (int i = 0; i < ids.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(arg.Buffer[((i + 1) * sizeof(ulong))..], ids[i]);
        return 0;
    }

    /// <summary>The register space kvm_arm_get_reg / kvm_arm_set_reg send an id to.</summary>
    private enum RegSpace
    {
        Core,
        Sve,
        Firmware,
        Timer,
        SysReg,
    }

    /// <summary>
    /// kvm_arm_get_reg / kvm_arm_set_reg: the upper bits are checked by the core path (-EINVAL); KVM_REG_ARM_CORE to
    /// core_reg, KVM_REG_ARM_FW and KVM_REG_ARM_FW_FEAT_BMAP to the firmware registers, KVM_REG_ARM64_SVE to
    /// get_sve_reg / set_sve_reg (Arm64Sve), then is_timer_reg, then kvm_arm_sys_reg_{get,set}_reg.
    /// </summary>
    private static RegSpace SpaceOf(ulong id)
    {
        if ((id & ~KvmArm64Regs.KVM_REG_SIZE_MASK) >> 32 != KvmArm64Regs.KVM_REG_ARM64 >> 32) return RegSpace.Core;
        ulong coproc = id & KvmArm64Regs.KVM_REG_ARM_COPROC_MASK;
        if (coproc == KvmArm64Regs.KVM_REG_ARM_CORE) return RegSpace.Core;
        if (coproc == KvmArm64Sve.KVM_REG_ARM64_SVE) return RegSpace.Sve;
        if (coproc == KvmArm64FwRegs.KVM_REG_ARM_FW || coproc == KvmArm64FwRegs.KVM_REG_ARM_FW_FEAT_BMAP) return RegSpace.Firmware;
        return Arm64Timer.IsTimerReg(id) ? RegSpace.Timer : RegSpace.SysReg;
    }

    private static bool HasPsci02(Arm64VcpuState state) => (state.Features & (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2)) != 0;

    private static long GetOneReg(KvmVcpu vcpu, Arm64VcpuState state, kvm_one_reg reg)
    {
        // The largest register: an SVE Z-register slice (KVM_REG_SIZE_U2048).
        Span<byte> value = stackalloc byte[Arm64Sve.ZregSize];
        int size;
        long r;
        switch (SpaceOf(reg.id))
        {
            case RegSpace.Firmware:
                r = Arm64FwRegs.Get(Arm64VmState.Of(vcpu.Kvm), HasPsci02(state), reg.id, value, out size);
                break;
            case RegSpace.Timer:
                // get_timer_reg: copy_to_user of KVM_REG_SIZE(id) bytes of kvm_arm_timer_get_reg (the ids are U64).
                size = sizeof(ulong);
                BinaryPrimitives.WriteUInt64LittleEndian(value, state.Cpu.Timer.Get(reg.id));
                r = 0;
                break;
            case RegSpace.SysReg:
                r = Arm64SysRegs.Get(state.Cpu, reg.id, value, out size);
                break;
            case RegSpace.Sve:
                r = Arm64Sve.Get(state.Cpu, reg.id, value, out size);
                break;
            default:
                r = Arm64CoreRegs.Get(state.Cpu, reg.id, value, out size);
                break;
        }
        if (r != 0) return r;
        // copy_to_user(uaddr, addr, KVM_REG_SIZE(reg->id)).
        var config = vcpu.Kvm.Kernel.Config;
        if (!UserMemory.AccessOk(config, reg.addr, (ulong)size)) return Err.EFAULT;
        return HostMemory.WriteProcessMemory(reg.addr, value[..size]) == size ? 0 : Err.EFAULT;
    }

    private static long SetOneReg(KvmVcpu vcpu, Arm64VcpuState state, kvm_one_reg reg)
    {
        var config = vcpu.Kvm.Kernel.Config;
        byte[]? CopyFromUser(int size)
        {
            byte[] bytes = new byte[size];
            return UserMemory.CopyFromUser(config, reg.addr, bytes) ? bytes : null;
        }
        switch (SpaceOf(reg.id))
        {
            case RegSpace.Firmware:
                return Arm64FwRegs.Set(Arm64VmState.Of(vcpu.Kvm), HasPsci02(state), reg.id, CopyFromUser);
            case RegSpace.Timer:
            {
                // set_timer_reg: copy_from_user (EFAULT), then kvm_arm_timer_set_reg.
                byte[]? bytes = CopyFromUser(sizeof(ulong));
                if (bytes is null) return Err.EFAULT;
                state.Cpu.Timer.Set(reg.id, BinaryPrimitives.ReadUInt64LittleEndian(bytes));
                return 0;
            }
            case RegSpace.SysReg:
                return Arm64SysRegs.Set(state.Cpu, reg.id, CopyFromUser);
            case RegSpace.Sve:
                return Arm64Sve.Set(state.Cpu, reg.id, CopyFromUser);
            default:
                return Arm64CoreRegs.Set(state.Cpu, reg.id, CopyFromUser);
        }
    }
}
