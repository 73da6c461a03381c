// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// KVM_MEMORY_ENCRYPT_OP on a SEV / SEV-ES / SNP VM: arch/x86/kvm/svm/sev.c sev_mem_enc_ioctl and the launch
/// commands, each in the kernel's order of checks. The firmware they call is <see cref="SevFirmware"/> (a model).
/// <para>
/// Modelled: KVM_SEV_INIT / ES_INIT (refused: only for VM type 0, which the emulated host serves with kvm_intel),
/// INIT2, LAUNCH_START, LAUNCH_UPDATE_DATA, LAUNCH_UPDATE_VMSA (SEV-ES: the vCPU's state becomes protected),
/// LAUNCH_MEASURE, LAUNCH_FINISH, GUEST_STATUS, SNP_LAUNCH_START, SNP_LAUNCH_UPDATE (<see cref="SevSnpLaunchUpdate"/>),
/// SNP_LAUNCH_FINISH (the VMSAs are encrypted: protected). The other known commands (LAUNCH_SECRET, DBG_*, SEND_*,
/// RECEIVE_*, GET_ATTESTATION_REPORT, CERT_EXPORT) answer ENOTTY before INIT2 as their handlers' first check
/// (<c>if (!sev_guest(kvm)) return -ENOTTY;</c>) and EINVAL after it (not modelled). Mirror VMs
/// (KVM_CAP_VM_COPY_ENC_CONTEXT_FROM) are not modelled.
/// </para>
/// </summary>
internal static class SevLaunch
{
    /// <summary>sev.c: SNP_POLICY_MASK_* ("As defined by SEV-SNP Firmware ABI, under 'Guest Policy'").</summary>
    public const ulong SnpPolicyMaskRsvdMbo = 1UL << 17;
    public const ulong SnpPolicyMaskValid = 0xffffUL | (1UL << 16) | SnpPolicyMaskRsvdMbo | (1UL << 19) | (1UL << 20);

    /// <summary>sev.c GHCB_VERSION_MAX / GHCB_VERSION_DEFAULT.</summary>
    private const ushort GhcbVersionMax = 2, GhcbVersionDefault = 2;

    /// <summary>
    /// sev_supported_vmsa_features, which KVM_X86_SEV_VMSA_FEATURES reports (X86/SystemAttributes.cs). sev.c
    /// sev_hardware_setup (6.18): DEBUG_SWAP with debug_swap (not modelled), and "if (sev_snp_enabled &amp;&amp; tsc_khz
    /// &amp;&amp; cpu_feature_enabled(X86_FEATURE_SNP_SECURE_TSC)) sev_supported_vmsa_features |= SVM_SEV_FEAT_SECURE_TSC".
    /// The emulated SNP host (a configuration offering KVM_X86_SNP_VM) is a model with Secure TSC (CPUID
    /// 0x8000001F EAX bit 8) and a non-zero tsc_khz.
    /// </summary>
    public static ulong SupportedVmsaFeatures(EmulatorConfig config) =>
        config.VmTypes.Contains(KvmConstants.KVM_X86_SNP_VM) && KvmSharp.Emulation.X86.KvmClock.HostTscKhz != 0 ? SevInfo.SvmSevFeatSecureTsc : 0;

    /// <summary>sev_mem_enc_ioctl.</summary>
    public static long VmIoctl(Kvm kvm, IoctlArg arg)
    {
        // if (!argp) return 0;
        if (arg.Value == 0) return 0;
        // copy_from_user(&sev_cmd, argp, sizeof(struct kvm_sev_cmd)) → -EFAULT.
        if (!arg.CopyFromUser(out kvm_sev_cmd cmd)) return Err.EFAULT;
        var sev = CocoState.Sev(kvm);
        // mutex_lock(&kvm->lock).
        lock (sev)
        {
            // "Once KVM_SEV_INIT2 initializes a KVM instance as an SNP guest, only allow the use of SNP-specific
            // commands": -EPERM, goto out (nothing copied back).
            if (sev.IsSnpGuest && cmd.id < KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START) return Err.EPERM;
            long r;
            switch (cmd.id)
            {
                case KvmMemoryEncrypt.KVM_SEV_ES_INIT:
                    // if (!sev_es_enabled) { r = -ENOTTY; goto out; } fallthrough to KVM_SEV_INIT.
                    if (!kvm.Kernel.Config.VmTypes.Contains(KvmConstants.KVM_X86_SEV_ES_VM)) return Err.ENOTTY;
                    r = GuestInit(kvm);
                    break;
                case KvmMemoryEncrypt.KVM_SEV_INIT:
                    r = GuestInit(kvm);
                    break;
                case KvmMemoryEncrypt.KVM_SEV_INIT2: r = Init2(kvm, sev, cmd); break;
                case KvmMemoryEncrypt.KVM_SEV_LAUNCH_START: r = LaunchStart(kvm, sev, ref cmd); break;
                case KvmMemoryEncrypt.KVM_SEV_LAUNCH_UPDATE_DATA: r = LaunchUpdateData(kvm, sev, ref cmd); break;
                case KvmMemoryEncrypt.KVM_SEV_LAUNCH_UPDATE_VMSA: r = LaunchUpdateVmsa(kvm, sev, ref cmd); break;
                case KvmMemoryEncrypt.KVM_SEV_LAUNCH_MEASURE: r = LaunchMeasure(kvm, sev, ref cmd); break;
                case KvmMemoryEncrypt.KVM_SEV_LAUNCH_FINISH: r = LaunchFinish(kvm, sev, ref cmd); break;
                case KvmMemoryEncrypt.KVM_SEV_GUEST_STATUS: r = GuestStatus(kvm, sev, ref cmd); break;
                case KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START: r = SnpLaunch.Start(kvm, sev, ref cmd); break;
                case KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE: r = SevSnpLaunchUpdate.LaunchUpdate(kvm, sev, ref cmd); break;
                case KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_FINISH: r = SnpLaunch.Finish(kvm, sev, ref cmd); break;
                case KvmMemoryEncrypt.KVM_SEV_SNP_ENABLE_REQ_CERTS when kvm.Kernel.Config.SnpReqCertsExit is not null:
                    r = SnpReqCerts.Enable(kvm, sev); // after 6.18 (Arch/X86/SnpReqCerts.cs)
                    break;
                case >= 5 and <= 21:
                    // LAUNCH_SECRET … SEND_CANCEL: every handler starts "if (!sev_guest(kvm)) return -ENOTTY;". Past
                    // that they are not modelled: -EINVAL like an unknown id (goto out, nothing copied back).
                    if (sev.IsSevGuest) return Err.EINVAL;
                    r = Err.ENOTTY;
                    break;
                default:
                    // default: r = -EINVAL; goto out;
                    return Err.EINVAL;
            }
            // After the switch: copy_to_user(argp, &sev_cmd, sizeof(struct kvm_sev_cmd)) → -EFAULT.
            if (!arg.CopyToUser(cmd)) r = Err.EFAULT;
            return r;
        }
    }

    /// <summary>
    /// svm_vcpu_pre_run (KVM_RUN's kvm_x86_call(vcpu_pre_run)): "if (to_kvm_sev_info(vcpu-&gt;kvm)-&gt;need_init) return
    /// -EINVAL;" — a vCPU of an SEV, SEV-ES or SNP VM does not run before KVM_SEV_INIT2 (svm_vm_init sets need_init for
    /// every type but DEFAULT and SW_PROTECTED; "KVM: SEV: introduce KVM_SEV_INIT2 operation", 6.10).
    /// </summary>
    public static long PreRun(KvmVcpu vcpu) =>
        CocoState.IsSevType(vcpu.Kvm) && CocoState.Sev(vcpu.Kvm).NeedInit ? Err.EINVAL : 0;

    /// <summary>sev_guest_init (KVM_SEV_INIT / KVM_SEV_ES_INIT): only for KVM_X86_DEFAULT_VM.</summary>
    private static long GuestInit(Kvm kvm) =>
        // "if (kvm->arch.vm_type != KVM_X86_DEFAULT_VM) return -EINVAL;" — this dispatcher sees only the SEV types.
        kvm.Type != KvmConstants.KVM_X86_DEFAULT_VM ? Err.EINVAL : Err.ENOTTY;

    /// <summary>sev_guest_init2 → __sev_guest_init.</summary>
    private static long Init2(Kvm kvm, SevInfo sev, in kvm_sev_cmd cmd)
    {
        // if (!to_kvm_sev_info(kvm)->need_init) return -EINVAL;  (then the VM type, always an SEV type here)
        if (!sev.NeedInit) return Err.EINVAL;
        if (!UserMemory.CopyFromUser(kvm.Kernel.Config, cmd.data, out kvm_sev_init data)) return Err.EFAULT;
        bool esActive = kvm.Type != KvmConstants.KVM_X86_SEV_VM;
        ulong validVmsaFeatures = esActive ? SupportedVmsaFeatures(kvm.Kernel.Config) : 0;
        // __sev_guest_init: created_vcpus, flags, vmsa_features, ghcb_version, sev->active — each -EINVAL.
        if (kvm.Vcpus.Count != 0) return Err.EINVAL;
        if (data.flags != 0) return Err.EINVAL;
        // "if (!snp_active) valid_vmsa_features &= ~SVM_SEV_FEAT_SECURE_TSC;" (6.18): Secure TSC is SNP-only.
        if (kvm.Type != KvmConstants.KVM_X86_SNP_VM) validVmsaFeatures &= ~SevInfo.SvmSevFeatSecureTsc;
        if ((data.vmsa_features & ~validVmsaFeatures) != 0) return Err.EINVAL;
        if (data.ghcb_version > GhcbVersionMax || (!esActive && data.ghcb_version != 0)) return Err.EINVAL;
        if (sev.Active) return Err.EINVAL;
        sev.Active = true;
        sev.EsActive = esActive;
        sev.VmsaFeatures = data.vmsa_features;
        // "default to [GHCB v2] for SEV-ES guests created via KVM_SEV_INIT2".
        sev.GhcbVersion = esActive && data.ghcb_version == 0 ? GhcbVersionDefault : data.ghcb_version;
        if (kvm.Type == KvmConstants.KVM_X86_SNP_VM) sev.VmsaFeatures |= SevInfo.SvmSevFeatSnpActive;
        // sev_asid_new and sev_platform_init succeed (ASIDs are not a limited resource here).
        sev.NeedInit = false;
        return 0;
    }

    /// <summary>psp_copy_user_blob: NULL or empty → -EINVAL, above SEV_FW_BLOB_MAX_SIZE → -EINVAL, memdup_user → -EFAULT.</summary>
    internal static long CopyUserBlob(EmulatorConfig config, ulong uaddr, uint len)
    {
        if (uaddr == 0 || len == 0) return Err.EINVAL;
        if (len > SevFirmware.SevFwBlobMaxSize) return Err.EINVAL;
        return UserMemory.CopyFromUser(config, uaddr, new byte[len]) ? 0 : Err.EFAULT;
    }

    /// <summary>sev_launch_start.</summary>
    private static long LaunchStart(Kvm kvm, SevInfo sev, ref kvm_sev_cmd cmd)
    {
        var kernel = kvm.Kernel;
        if (!sev.IsSevGuest) return Err.ENOTTY;
        if (!UserMemory.CopyFromUser(kernel.Config, cmd.data, out kvm_sev_launch_start p)) return Err.EFAULT;
        if (p.dh_uaddr != 0 && CopyUserBlob(kernel.Config, p.dh_uaddr, p.dh_len) is var dh and < 0) return dh;
        if (p.session_uaddr != 0 && CopyUserBlob(kernel.Config, p.session_uaddr, p.session_len) is var s and < 0) return s;
        // __sev_issue_cmd(argp->sev_fd, SEV_CMD_LAUNCH_START, ...). The model: a non-zero handle asks to share the
        // keys of an existing guest, which it does not keep (SEV_RET_INVALID_GUEST); a VM whose ASID is already bound
        // to a guest fails ACTIVATE (sev_bind_asid: SEV_RET_ASID_OWNED = 12) and the new context is decommissioned.
        long r = SevFirmware.Issue(kernel, (int)cmd.sev_fd, ref cmd.error, () =>
            p.handle != 0 ? SevFirmware.SEV_RET_INVALID_GUEST : sev.Handle != 0 ? 12u : SevFirmware.SEV_RET_SUCCESS);
        if (r != 0) return r;
        uint handle = SevFirmware.NewGuest(kernel, sev, p.policy);
        // "return handle to userspace": copy_to_user(params) → sev_unbind_asid, -EFAULT.
        p.handle = handle;
        if (!UserMemory.CopyToUser(kernel.Config, cmd.data, p))
        {
            sev.FirmwareState = SevGuestState.Uninit;
            return Err.EFAULT;
        }
        sev.Handle = handle;
        sev.Fd = (int)cmd.sev_fd;
        sev.Policy = p.policy;
        return 0;
    }

    /// <summary>sev_launch_update_data.</summary>
    private static long LaunchUpdateData(Kvm kvm, SevInfo sev, ref kvm_sev_cmd cmd)
    {
        var config = kvm.Kernel.Config;
        if (!sev.IsSevGuest) return Err.ENOTTY;
        if (!UserMemory.CopyFromUser(config, cmd.data, out kvm_sev_launch_update_data p)) return Err.EFAULT;
        // sev_pin_memory(kvm, vaddr, size, &npages, FOLL_WRITE) (X86/SevRegions.cs), unpinned before returning.
        long pin = SevRegions.Pin(kvm, sev, p.uaddr, p.len, out _);
        if (pin != 0) return pin;
        byte[]? digest = HashUser(config, p.uaddr, p.len);
        if (digest is null) return Err.ENOMEM;
        // sev_issue_cmd(kvm, SEV_CMD_LAUNCH_UPDATE_DATA, …): sev->fd, the guest in LUPDATE; the firmware wants
        // 16-byte aligned address and length (SEV API LAUNCH_UPDATE_DATA).
        return SevFirmware.Issue(kvm.Kernel, sev.Fd, ref cmd.error, () =>
        {
            if (sev.Handle == 0) return SevFirmware.SEV_RET_INVALID_GUEST;
            if (sev.FirmwareState != SevGuestState.LaunchUpdate) return SevFirmware.SEV_RET_INVALID_GUEST_STATE;
            if ((p.uaddr & 15) != 0) return SevFirmware.SEV_RET_INVALID_ADDRESS;
            if ((p.len & 15) != 0) return SevFirmware.SEV_RET_INVALID_LEN;
            SevFirmware.Measure(sev, "LAUNCH_UPDATE_DATA", digest);
            return SevFirmware.SEV_RET_SUCCESS;
        });
    }

    /// <summary>SHA-256 of user memory, page by page; null when a page cannot be read (the pin fails).</summary>
    private static byte[]? HashUser(EmulatorConfig config, ulong uaddr, ulong len)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunk = new byte[EmulatorConfig.PageSize];
        for (ulong done = 0; done < len;)
        {
            int n = (int)Math.Min((ulong)chunk.Length, len - done);
            if (!UserMemory.CopyFromUser(config, uaddr + done, chunk.AsSpan(0, n))) return null;
            h.AppendData(chunk, 0, n);
            done += (ulong)n;
        }
        return h.GetHashAndReset();
    }

    /// <summary>
    /// sev_es_sync_vmsa's checks, then the VMSA's measured bytes: "if (svm->vcpu.guest_debug || (svm->vmcb->save.dr7
    /// &amp; ~DR7_FIXED_1)) return -EINVAL;".
    /// </summary>
    internal static long SyncVmsa(KvmVcpu vcpu, out byte[] vmsa)
    {
        vmsa = [];
        if (vcpu.Emulator.GuestDebugFlags != 0 || (vcpu.Cpu.State.Dr7 & ~X86.VcpuState.Dr7Fixed1) != 0) return Err.EINVAL;
        var regs = vcpu.Cpu.GetRegs();
        var sregs = vcpu.Cpu.Sregs;
        vmsa = [.. MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref regs, 1)),
            .. MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref sregs, 1)),
            .. BitConverter.GetBytes(vcpu.Cpu.State.Xcr0)];
        return 0;
    }

    /// <summary>sev_launch_update_vmsa → __sev_launch_update_vmsa per vCPU (in creation order; stops at the first error).</summary>
    private static long LaunchUpdateVmsa(Kvm kvm, SevInfo sev, ref kvm_sev_cmd cmd)
    {
        if (!sev.IsEsGuest) return Err.ENOTTY;
        foreach (var vcpu in kvm.Vcpus)
        {
            lock (vcpu.Mutex)
            {
                // "if (vcpu->guest_debug) { pr_warn_once(…); return -EINVAL; }", then sev_es_sync_vmsa.
                if (vcpu.Emulator.GuestDebugFlags != 0) return Err.EINVAL;
                long r = SyncVmsa(vcpu, out var vmsa);
                if (r != 0) return r;
                r = SevFirmware.Issue(kvm.Kernel, sev.Fd, ref cmd.error, () =>
                {
                    if (sev.Handle == 0) return SevFirmware.SEV_RET_INVALID_GUEST;
                    if (sev.FirmwareState != SevGuestState.LaunchUpdate) return SevFirmware.SEV_RET_INVALID_GUEST_STATE;
                    SevFirmware.Measure(sev, "LAUNCH_UPDATE_VMSA", vmsa);
                    return SevFirmware.SEV_RET_SUCCESS;
                });
                if (r != 0) return r;
                // fpstate_set_confidential(&vcpu->arch.guest_fpu); vcpu->arch.guest_state_protected = true;
                var coco = CocoState.Vcpu(vcpu);
                coco.FpstateConfidential = true;
                coco.GuestStateProtected = true;
            }
        }
        return 0;
    }

    /// <summary>sev_launch_measure.</summary>
    private static long LaunchMeasure(Kvm kvm, SevInfo sev, ref kvm_sev_cmd cmd)
    {
        var config = kvm.Kernel.Config;
        if (!sev.IsSevGuest) return Err.ENOTTY;
        if (!UserMemory.CopyFromUser(config, cmd.data, out kvm_sev_launch_measure p)) return Err.EFAULT;
        // "User wants to query the blob length": len 0 goes straight to the command with no buffer.
        bool blob = false;
        uint dataLen = 0;
        if (p.len != 0 && p.uaddr != 0)
        {
            if (p.len > SevFirmware.SevFwBlobMaxSize) return Err.EINVAL;
            blob = true;
            dataLen = p.len;
        }
        byte[]? measurement = null;
        // The model's firmware: the guest must be in LUPDATE; a buffer shorter than the blob (or none) gets
        // SEV_RET_INVALID_LEN with the length it needs; a delivered measurement moves the guest to LSECRET.
        long r = SevFirmware.Issue(kvm.Kernel, sev.Fd, ref cmd.error, () =>
        {
            if (sev.Handle == 0) return SevFirmware.SEV_RET_INVALID_GUEST;
            if (sev.FirmwareState != SevGuestState.LaunchUpdate) return SevFirmware.SEV_RET_INVALID_GUEST_STATE;
            bool shortBuffer = dataLen < SevFirmware.MeasurementLength;
            dataLen = SevFirmware.MeasurementLength;
            if (shortBuffer) return SevFirmware.SEV_RET_INVALID_LEN;
            measurement = SevFirmware.MeasurementBlob(sev);
            sev.FirmwareState = SevGuestState.LaunchSecret;
            return SevFirmware.SEV_RET_SUCCESS;
        });
        if (p.len != 0)
        {
            // "if (ret) goto e_free_blob;" — nothing copied back.
            if (r != 0) return r;
            // copy_to_user(p, blob, params.len): the kernel's zeroed buffer of the user's length.
            if (blob)
            {
                var bytes = new byte[p.len];
                measurement!.CopyTo(bytes, 0);
                if (!UserMemory.CopyToUser(config, p.uaddr, bytes)) r = Err.EFAULT;
            }
        }
        // done: params.len = data.len; copy_to_user(measure, &params, sizeof(params)) → -EFAULT.
        p.len = dataLen;
        if (!UserMemory.CopyToUser(config, cmd.data, p)) r = Err.EFAULT;
        return r;
    }

    /// <summary>sev_launch_finish: the firmware wants the guest in LSECRET (after LAUNCH_MEASURE).</summary>
    private static long LaunchFinish(Kvm kvm, SevInfo sev, ref kvm_sev_cmd cmd)
    {
        if (!sev.IsSevGuest) return Err.ENOTTY;
        return SevFirmware.Issue(kvm.Kernel, sev.Fd, ref cmd.error, () =>
        {
            if (sev.Handle == 0) return SevFirmware.SEV_RET_INVALID_GUEST;
            if (sev.FirmwareState != SevGuestState.LaunchSecret) return SevFirmware.SEV_RET_INVALID_GUEST_STATE;
            sev.FirmwareState = SevGuestState.Running;
            return SevFirmware.SEV_RET_SUCCESS;
        });
    }

    /// <summary>sev_guest_status.</summary>
    private static long GuestStatus(Kvm kvm, SevInfo sev, ref kvm_sev_cmd cmd)
    {
        if (!sev.IsSevGuest) return Err.ENOTTY;
        long r = SevFirmware.Issue(kvm.Kernel, sev.Fd, ref cmd.error, () =>
            sev.Handle == 0 ? SevFirmware.SEV_RET_INVALID_GUEST : SevFirmware.SEV_RET_SUCCESS);
        if (r != 0) return r;
        var status = new kvm_sev_guest_status { handle = sev.Handle, policy = (uint)sev.Policy, state = (uint)sev.FirmwareState };
        return UserMemory.CopyToUser(kvm.Kernel.Config, cmd.data, status) ? 0 : Err.EFAULT;
    }
}
