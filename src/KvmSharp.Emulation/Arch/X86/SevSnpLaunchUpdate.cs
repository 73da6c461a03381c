// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// KVM_SEV_SNP_LAUNCH_UPDATE (arch/x86/kvm/svm/sev.c snp_launch_update + sev_gmem_post_populate), reached through
/// <see cref="SevLaunch.VmIoctl"/>. Each page goes through the modelled firmware (<see cref="SevFirmware"/>): the
/// descriptor in kvm_sev_cmd.sev_fd must be /dev/sev and the guest still in its launch state (before
/// SNP_LAUNCH_FINISH), else the page fails and the call is -EIO with the firmware status in kvm_sev_cmd.error. The
/// firmware's own page checks (e.g. a malformed CPUID page) are not modelled: every type but ZERO copies the source,
/// ZERO zero-fills, and SECRETS is then overwritten with the firmware's secrets page (SnpPsp.SecretsPage).
/// </summary>
internal static class SevSnpLaunchUpdate
{
    /// <summary>snp_launch_update.</summary>
    public static long LaunchUpdate(Kvm kvm, SevInfo sev, ref kvm_sev_cmd cmd)
    {
        var kernel = kvm.Kernel;
        var config = kernel.Config;
        // if (!sev_snp_guest(kvm) || !sev->snp_context) return -EINVAL;
        if (!sev.IsSnpGuest || !sev.SnpContext) return Err.EINVAL;
        // copy_from_user(&params, u64_to_user_ptr(argp->data), sizeof(params)) → -EFAULT.
        if (!UserMemory.CopyFromUser(config, cmd.data, out kvm_sev_snp_launch_update p)) return Err.EFAULT;

        ulong page = (ulong)EmulatorConfig.PageSize;
        ulong mask = page - 1;
        // !params.len ("KVM: SEV: Reject non-positive effective lengths during SNP-launch update", Sean
        // Christopherson, v2) || !PAGE_ALIGNED(params.len) || params.flags || type not NORMAL/ZERO/UNMEASURED/
        // SECRETS/CPUID → -EINVAL. The padding is not checked.
        if (p.len == 0 || (p.len & mask) != 0 || p.flags != 0 ||
            p.type is not (KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_NORMAL or KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_ZERO
                or KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_UNMEASURED or KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_SECRETS
                or KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_CPUID))
            return Err.EINVAL;

        bool zero = p.type == KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_ZERO;
        // src = params.type == KVM_SEV_SNP_PAGE_TYPE_ZERO ? NULL : u64_to_user_ptr(params.uaddr);
        ulong src = zero ? 0 : p.uaddr;
        bool v8 = config.Generation == KernelGeneration.InPlaceConversionV8;
        // Newer tree ("[PATCH v3] KVM: SEV: … page-aligned source", Michael Roth, 2026-01; kvm_gmem_populate's
        // WARN_ON_ONCE(!PAGE_ALIGNED(src))): if (!PAGE_ALIGNED(src)) return -EINVAL. 6.18 copies from any address.
        if (v8 && (src & mask) != 0) return Err.EINVAL;
        long npages = (long)(p.len / page);
        bool inPlace = kernel.InPlaceConversion;

        long count;
        uint fwError = 0;
        lock (kernel.SyncRoot)
        {
            // mutex_lock(&kvm->slots_lock); memslot = gfn_to_memslot(kvm, params.gfn_start);
            // if (!kvm_slot_can_be_private(memslot)) { ret = -EINVAL; goto out; }
            var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, p.gfn_start);
            if (slot is null || !slot.HasGmem) return Err.EINVAL;
            byte type = p.type;
            int sevFd = (int)cmd.sev_fd;
            count = GmemPopulate.Populate(kvm, p.gfn_start, src, npages,
                (GmemInode inode, ulong index, ulong s, out PopulateFill fill) =>
                    PostPopulate(kernel, sev, sevFd, inode, index, s, type, v8, inPlace, ref fwError, out fill));
        }
        if (count < 0)
        {
            // "argp->error = sev_populate_args.fw_error; … ret = -EIO;": every failure of the first page is -EIO,
            // with the firmware's status when the firmware ran (0 otherwise). params are not copied back.
            cmd.error = fwError;
            return Err.EIO;
        }
        // The firmware's RMPUPDATE left every launched page assigned and validated (SnpRmp.LaunchUpdated).
        lock (kernel.SyncRoot)
        {
            if (GuestMemoryPath.GfnToMemslot(kvm, 0, p.gfn_start) is { GmemFile: GmemFile f } s)
                for (ulong i = 0; i < (ulong)count; i++)
                {
                    ulong index = p.gfn_start + i - s.BaseGfn + s.GmemPgoff;
                    SnpRmp.LaunchUpdated(kvm, f.GmemInode, index, p.gfn_start + i);
                    // PAGE_TYPE_SECRETS: the firmware writes the secrets page itself (SnpPsp.SecretsPage).
                    if (p.type == KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_SECRETS) f.GmemInode.WritePage(index, SnpPsp.SecretsPage(sev));
                }
        }
        p.gfn_start += (ulong)count;
        p.len -= (ulong)count * page;
        // 6.18: "if (params.type != KVM_SEV_SNP_PAGE_TYPE_ZERO) params.uaddr += count * PAGE_SIZE;"
        // [PATCH v8]: "if (src && params.type != KVM_SEV_SNP_PAGE_TYPE_ZERO)".
        if (!zero && (!v8 || src != 0)) p.uaddr += (ulong)count * page;
        // copy_to_user(u64_to_user_ptr(argp->data), &params, sizeof(params)) → -EFAULT.
        return UserMemory.CopyToUser(config, cmd.data, p) ? 0 : Err.EFAULT;
    }

    /// <summary>sev_gmem_post_populate, one 4 KiB page.</summary>
    private static long PostPopulate(EmulatedKernel kernel, SevInfo sev, int sevFd, GmemInode inode, ulong index, ulong src,
        byte type, bool v8, bool inPlace, ref uint fwError, out PopulateFill fill)
    {
        bool zero = type == KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_ZERO;
        fill = zero ? PopulateFill.Zero : PopulateFill.CopySource;
        if (!zero && src == 0)
        {
            // 6.18: WARN_ON_ONCE(type != ZERO && !src) → -EINVAL. [PATCH v8]: allowed with gmem_in_place_conversion
            // ("the data needs to come from a separate physical page" otherwise).
            if (!v8 || !inPlace) return Err.EINVAL;
            fill = PopulateFill.InPlace;
        }
        // snp_lookup_rmpentry(): an RMP entry already assigned → -EEXIST ("ret = ret ? -EINVAL : -EEXIST").
        if (GmemPopulate.Populated(inode, index) || SnpRmp.Get(inode, index).Assigned) return Err.EEXIST;
        // 6.18: if (src) copy_from_user(dst, src + i * PAGE_SIZE, PAGE_SIZE) → -EFAULT — the copy itself is the
        // caller's, the check is made here so it comes before the firmware, as in the kernel.
        if (fill == PopulateFill.CopySource && !UserMemory.CopyFromUser(kernel.Config, src, new byte[EmulatorConfig.PageSize]))
            return Err.EFAULT;
        // rmp_make_private, then __sev_issue_cmd(sev_fd, SEV_CMD_SNP_LAUNCH_UPDATE, …, &fw_error): -EBADF for a
        // descriptor that is not /dev/sev, the firmware's status once the guest left its launch state.
        long r = SevFirmware.Issue(kernel, sevFd, ref fwError, () =>
            sev.FirmwareState == SevGuestState.LaunchUpdate ? SevFirmware.SEV_RET_SUCCESS : SevFirmware.SEV_RET_INVALID_GUEST_STATE);
        return r;
    }
}
