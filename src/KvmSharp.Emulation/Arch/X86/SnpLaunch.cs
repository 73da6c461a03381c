// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// KVM_SEV_SNP_LAUNCH_START and KVM_SEV_SNP_LAUNCH_FINISH (arch/x86/kvm/svm/sev.c snp_launch_start,
/// snp_launch_finish → snp_launch_update_vmsa); KVM_SEV_SNP_LAUNCH_UPDATE is <see cref="SevSnpLaunchUpdate"/>. The
/// firmware is <see cref="SevFirmware"/>: its guest context goes to "launch" at SNP_LAUNCH_START and to "running" at
/// SNP_LAUNCH_FINISH; its own checks of the policy (ABI version, SMT), the ID block's signature and the CPUID page are
/// not modelled (accepted).
/// </summary>
internal static class SnpLaunch
{
    /// <summary>snp_launch_start.</summary>
    public static long Start(Kvm kvm, SevInfo sev, ref kvm_sev_cmd cmd)
    {
        var kernel = kvm.Kernel;
        if (!sev.IsSnpGuest) return Err.ENOTTY;
        if (!UserMemory.CopyFromUser(kernel.Config, cmd.data, out kvm_sev_snp_launch_start p)) return Err.EFAULT;
        // "Don't allow userspace to allocate memory for more than 1 SNP context."
        if (sev.SnpContext) return Err.EINVAL;
        if (p.flags != 0) return Err.EINVAL;
        if ((p.policy & ~SevLaunch.SnpPolicyMaskValid) != 0) return Err.EINVAL;
        // "Check for policy bits that must be set".
        if ((p.policy & SevLaunch.SnpPolicyMaskRsvdMbo) == 0) return Err.EINVAL;
        // snp_context_create: SEV_CMD_SNP_GCTX_CREATE through argp->sev_fd; on failure "if (!sev->snp_context)
        // return -ENOTTY;" (so a descriptor that is not /dev/sev is ENOTTY here, not EBADF).
        if (SevFirmware.CheckFd(kernel, (int)cmd.sev_fd) != 0) return Err.ENOTTY;
        cmd.error = SevFirmware.SEV_RET_SUCCESS;
        // SEV_CMD_SNP_LAUNCH_START through the same descriptor, then snp_bind_asid (SNP_ACTIVATE through sev->fd).
        sev.Handle = SevFirmware.NewGuest(kernel, sev, p.policy);
        sev.Fd = (int)cmd.sev_fd;
        sev.Policy = p.policy;
        sev.SnpContext = true;
        // "if (snp_is_secure_tsc_enabled(kvm)) { WARN_ON_ONCE(!kvm->arch.default_tsc_khz); start.desired_tsc_khz =
        // kvm->arch.default_tsc_khz; }" (6.18): the rate KVM_SET_TSC_KHZ on the VM set before, the host's otherwise. A
        // later KVM_SET_TSC_KHZ on the VM changes default_tsc_khz only, not what the firmware took here.
        if (sev.IsSecureTscEnabled)
        {
            sev.DesiredTscKhz = kvm.Clock.DefaultTscKhz;
            SnpTscInfo.LaunchStart(sev, sev.DesiredTscKhz, X86.KvmClock.HostTscKhz);
        }
        return 0;
    }

    /// <summary>snp_launch_finish.</summary>
    public static long Finish(Kvm kvm, SevInfo sev, ref kvm_sev_cmd cmd)
    {
        var kernel = kvm.Kernel;
        var config = kernel.Config;
        if (!sev.IsSnpGuest) return Err.ENOTTY;
        if (!sev.SnpContext) return Err.EINVAL;
        if (!UserMemory.CopyFromUser(config, cmd.data, out kvm_sev_snp_launch_finish p)) return Err.EFAULT;
        if (p.flags != 0) return Err.EINVAL;
        // "Measure all vCPUs using LAUNCH_UPDATE before finalizing the launch flow": snp_launch_update_vmsa.
        foreach (var vcpu in kvm.Vcpus)
        {
            lock (vcpu.Mutex)
            {
                long r = SevLaunch.SyncVmsa(vcpu, out var vmsa);
                if (r != 0) return r;
                // rmp_make_private(VMSA page), then SEV_CMD_SNP_LAUNCH_UPDATE (page type VMSA) through argp->sev_fd.
                // A guest no longer in its launch state (a second LAUNCH_FINISH) fails there: the model answers the
                // firmware's SEV_RET_INVALID_GUEST_STATE (-EIO) and leaves the vCPU as it was.
                r = SevFirmware.Issue(kernel, (int)cmd.sev_fd, ref cmd.error, () =>
                {
                    if (sev.FirmwareState != SevGuestState.LaunchUpdate) return SevFirmware.SEV_RET_INVALID_GUEST_STATE;
                    SevFirmware.Measure(sev, "SNP_LAUNCH_UPDATE_VMSA", vmsa);
                    return SevFirmware.SEV_RET_SUCCESS;
                });
                if (r != 0) return r;
                // "svm->vcpu.arch.guest_state_protected = true;" — and only that: unlike __sev_launch_update_vmsa,
                // snp_launch_update_vmsa does not call fpstate_set_confidential, so KVM_GET/SET_FPU and XSAVE keep
                // answering on an SNP vCPU (sev.c as read for 6.18; followed, not judged).
                CocoState.Vcpu(vcpu).GuestStateProtected = true;
                // Secure TSC: the firmware's GUEST_TSC_SCALE / GUEST_TSC_OFFSET in the VMSA (SnpTscInfo, a model).
                if (SnpTscInfo.Of(sev) is { } tsc)
                {
                    vcpu.Cpu.Msrs.SecureTscScale = tsc.Scale;
                    vcpu.Cpu.Msrs.SecureTscOffset = tsc.Offset;
                }
                // The VMSA page's RMP entry: assigned, validated, VMSA (SEV-SNP firmware ABI, LAUNCH_UPDATE page type VMSA).
                SnpRmp.MarkVmsa(vcpu);
            }
        }
        byte[]? idBlock = null, idAuth = null;
        if (p.id_block_en != 0)
        {
            // psp_copy_user_blob(id_block_uaddr, KVM_SEV_SNP_ID_BLOCK_SIZE), then id_auth (KVM_SEV_SNP_ID_AUTH_SIZE).
            long r = SevLaunch.CopyUserBlob(config, p.id_block_uaddr, KvmMemoryEncrypt.KVM_SEV_SNP_ID_BLOCK_SIZE);
            if (r != 0) return r;
            r = SevLaunch.CopyUserBlob(config, p.id_auth_uaddr, KvmMemoryEncrypt.KVM_SEV_SNP_ID_AUTH_SIZE);
            if (r != 0) return r;
            // The blobs' bytes, for the attestation report (SnpPsp.LaunchFinished); the copies above succeeded.
            idBlock = new byte[KvmMemoryEncrypt.KVM_SEV_SNP_ID_BLOCK_SIZE];
            idAuth = new byte[KvmMemoryEncrypt.KVM_SEV_SNP_ID_AUTH_SIZE];
            UserMemory.CopyFromUser(config, p.id_block_uaddr, idBlock);
            UserMemory.CopyFromUser(config, p.id_auth_uaddr, idAuth);
        }
        // sev_issue_cmd(kvm, SEV_CMD_SNP_LAUNCH_FINISH, data, &argp->error): through sev->fd. Success sets
        // kvm->arch.pre_fault_allowed (CocoState.PreFaultAllowed).
        byte[] hostData = [.. p.host_data];
        return SevFirmware.Issue(kernel, sev.Fd, ref cmd.error, () =>
        {
            if (sev.FirmwareState != SevGuestState.LaunchUpdate) return SevFirmware.SEV_RET_INVALID_GUEST_STATE;
            SevFirmware.Measure(sev, "SNP_LAUNCH_FINISH host_data", hostData);
            sev.FirmwareState = SevGuestState.Running;
            SnpPsp.LaunchFinished(sev, hostData, idBlock, idAuth, p.auth_key_en != 0); // the report's launch fields
            return SevFirmware.SEV_RET_SUCCESS;
        });
    }
}
