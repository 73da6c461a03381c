// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// KVM_MEMORY_ENCRYPT_OP on a SEV / SEV-ES / SNP VM (arch/x86/kvm/svm/sev.c sev_mem_enc_ioctl), of which only
/// KVM_SEV_SNP_LAUNCH_UPDATE (snp_launch_update + sev_gmem_post_populate) is modelled.
/// <para>
/// Simplifications: an SNP VM is taken as initialized by KVM_SEV_INIT2 (sev_snp_guest() true) and launched by
/// KVM_SEV_SNP_LAUNCH_START (sev->snp_context present), and never finished (KVM_SEV_SNP_LAUNCH_FINISH); a SEV or
/// SEV-ES VM is never SNP. The other sub-commands are not modelled and answer like an unknown id (-EINVAL, nothing
/// copied back). sev_fd is accepted as given (the firmware is not emulated), so the firmware status written to
/// kvm_sev_cmd.error is always 0; the firmware's own page checks (e.g. a malformed CPUID page) and the SECRETS
/// page contents it generates are not modelled: every type but ZERO copies the source, ZERO zero-fills.
/// </para>
/// </summary>
internal static class SevSnpLaunchUpdate
{
    /// <summary>sev_mem_enc_ioctl (sev_enabled: the config selects KVM_AMD_SEV, HAVE_KVM_ARCH_GMEM_POPULATE).</summary>
    public static long VmIoctl(Kvm kvm, IoctlArg arg)
    {
        // if (!argp) return 0;
        if (arg.Value == 0) return 0;
        // copy_from_user(&sev_cmd, argp, sizeof(struct kvm_sev_cmd)) → -EFAULT.
        if (!arg.CopyFromUser(out kvm_sev_cmd cmd)) return Err.EFAULT;
        // "Once KVM_SEV_INIT2 initializes a KVM instance as an SNP guest, only allow the use of SNP-specific
        // commands": sev_snp_guest(kvm) && id < KVM_SEV_SNP_LAUNCH_START → -EPERM (goto out: nothing copied back).
        if (IsSnpGuest(kvm) && cmd.id < KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START) return Err.EPERM;
        // switch: default → -EINVAL, goto out (the unmodelled sub-commands answer the same).
        if (cmd.id != KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE) return Err.EINVAL;
        long r = LaunchUpdate(kvm, ref cmd);
        // After the switch: copy_to_user(argp, &sev_cmd, sizeof(struct kvm_sev_cmd)) → -EFAULT.
        if (!arg.CopyToUser(cmd)) r = Err.EFAULT;
        return r;
    }

    /// <summary>sev_snp_guest(): only the KVM_X86_SNP_VM type (after its KVM_SEV_INIT2, assumed).</summary>
    private static bool IsSnpGuest(Kvm kvm) => kvm.Type == KvmConstants.KVM_X86_SNP_VM;

    /// <summary>snp_launch_update.</summary>
    private static long LaunchUpdate(Kvm kvm, ref kvm_sev_cmd cmd)
    {
        var kernel = kvm.Kernel;
        var config = kernel.Config;
        // if (!sev_snp_guest(kvm) || !sev->snp_context) return -EINVAL;  (snp_context: LAUNCH_START assumed)
        if (!IsSnpGuest(kvm)) return Err.EINVAL;
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
        lock (kernel.SyncRoot)
        {
            // mutex_lock(&kvm->slots_lock); memslot = gfn_to_memslot(kvm, params.gfn_start);
            // if (!kvm_slot_can_be_private(memslot)) { ret = -EINVAL; goto out; }
            var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, p.gfn_start);
            if (slot is null || !slot.HasGmem) return Err.EINVAL;
            byte type = p.type;
            count = GmemPopulate.Populate(kvm, p.gfn_start, src, npages,
                (GmemInode inode, ulong index, ulong s, out PopulateFill fill) => PostPopulate(inode, index, s, type, v8, inPlace, out fill));
        }
        if (count < 0)
        {
            // "argp->error = sev_populate_args.fw_error; … ret = -EIO;": every failure of the first page is -EIO;
            // no firmware ran, so fw_error is still 0. params are not copied back.
            cmd.error = 0;
            return Err.EIO;
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
    private static long PostPopulate(GmemInode inode, ulong index, ulong src, byte type, bool v8, bool inPlace, out PopulateFill fill)
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
        if (GmemPopulate.Populated(inode, index)) return Err.EEXIST;
        // 6.18: if (src) copy_from_user(dst, src + i * PAGE_SIZE, PAGE_SIZE) → -EFAULT — done by the caller.
        return 0;
    }
}
