// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// KVM_MEMORY_ENCRYPT_OP on a TDX VM or vCPU (arch/x86/kvm/vmx/main.c vt_mem_enc_ioctl / vt_vcpu_mem_enc_ioctl,
/// arch/x86/kvm/vmx/tdx.c tdx_vm_ioctl / tdx_vcpu_ioctl), of which only KVM_TDX_INIT_MEM_REGION is modelled.
/// <para>
/// Simplification: the TD is taken as initialized — KVM_TDX_INIT_VM done (HKID assigned, 4-level GPAW so the shared
/// bit is GPA bit 47) and KVM_TDX_INIT_VCPU done on every vCPU — and never finalized (KVM_TDX_FINALIZE_VM is not
/// modelled). Those sub-commands and KVM_TDX_CAPABILITIES / KVM_TDX_GET_CPUID are not modelled and answer like an
/// unknown id (-EINVAL). The TD measurement (KVM_TDX_MEASURE_MEMORY_REGION) has no observable effect here, and a
/// pending signal (-EINTR between pages) is not modelled.
/// </para>
/// </summary>
internal static class TdxInitMemRegion
{
    // arch/x86/kvm/vmx/tdx.c: TDX_SHARED_BIT_PWL_4 = gpa_to_gfn(BIT_ULL(47)); kvm->arch.gfn_direct_bits after INIT_VM.
    private const ulong SharedGpaBit = 1UL << 47;

    /// <summary>tdx_vm_ioctl (via vt_mem_enc_ioctl, is_td(kvm) already checked).</summary>
    public static long VmIoctl(IoctlArg arg)
    {
        // copy_from_user(&tdx_cmd, argp, sizeof(struct kvm_tdx_cmd)) → -EFAULT.
        if (!arg.CopyFromUser(out kvm_tdx_cmd cmd)) return Err.EFAULT;
        // "Userspace should never set hw_error." → -EINVAL.
        if (cmd.hw_error != 0) return Err.EINVAL;
        // switch (tdx_cmd.id): KVM_TDX_INIT_MEM_REGION is a vCPU command → default: -EINVAL (nothing copied back).
        // KVM_TDX_CAPABILITIES / INIT_VM / FINALIZE_VM are not modelled and answer the same.
        return Err.EINVAL;
    }

    /// <summary>vt_vcpu_mem_enc_ioctl → tdx_vcpu_ioctl.</summary>
    public static long VcpuIoctl(KvmVcpu vcpu, IoctlArg arg)
    {
        // vt_vcpu_mem_enc_ioctl: if (!is_td_vcpu(vcpu)) return -EINVAL;
        if (vcpu.Kvm.Type != KvmConstants.KVM_X86_TDX_VM) return Err.EINVAL;
        // tdx_vcpu_ioctl: !is_hkid_assigned || TD_STATE_RUNNABLE → -EINVAL (assumed initialized, never finalized).
        // copy_from_user(&cmd, argp, sizeof(cmd)) → -EFAULT; cmd.hw_error → -EINVAL.
        if (!arg.CopyFromUser(out kvm_tdx_cmd cmd)) return Err.EFAULT;
        if (cmd.hw_error != 0) return Err.EINVAL;
        // switch (cmd.id): KVM_TDX_INIT_VCPU / KVM_TDX_GET_CPUID not modelled; default: -EINVAL. The cmd itself is
        // not copied back.
        return cmd.id == KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION ? InitMemRegion(vcpu, cmd) : Err.EINVAL;
    }

    /// <summary>tdx_vcpu_init_mem_region.</summary>
    private static long InitMemRegion(KvmVcpu vcpu, in kvm_tdx_cmd cmd)
    {
        var kvm = vcpu.Kvm;
        var kernel = kvm.Kernel;
        var config = kernel.Config;
        // tdx->state != VCPU_TD_STATE_INITIALIZED → -EINVAL; kvm_tdx->state == TD_STATE_RUNNABLE → -EINVAL:
        // assumed initialized and not finalized (see the class remarks).
        // if (cmd->flags & ~KVM_TDX_MEASURE_MEMORY_REGION) return -EINVAL;
        if ((cmd.flags & ~KvmMemoryEncrypt.KVM_TDX_MEASURE_MEMORY_REGION) != 0) return Err.EINVAL;
        // copy_from_user(&region, u64_to_user_ptr(cmd->data), sizeof(region)) → -EFAULT.
        if (!UserMemory.CopyFromUser(config, cmd.data, out kvm_tdx_init_mem_region region)) return Err.EFAULT;

        int shift = EmulatorConfig.PageShift;
        ulong page = (ulong)EmulatorConfig.PageSize;
        ulong mask = page - 1;
        ulong size = unchecked(region.nr_pages << shift);
        // !PAGE_ALIGNED(source_addr) || !PAGE_ALIGNED(gpa) || !nr_pages || gpa + (nr_pages << PAGE_SHIFT) <= gpa ||
        // !vt_is_tdx_private_gpa(kvm, gpa) || !vt_is_tdx_private_gpa(kvm, gpa + size - 1) → -EINVAL.
        if ((region.source_addr & mask) != 0 || (region.gpa & mask) != 0 || region.nr_pages == 0 ||
            unchecked(region.gpa + size) <= region.gpa ||
            !IsPrivateGpa(region.gpa) || !IsPrivateGpa(unchecked(region.gpa + size - 1)))
            return Err.EINVAL;

        bool v8 = config.Generation == KernelGeneration.InPlaceConversionV8;
        bool inPlace = kernel.InPlaceConversion;
        long ret = 0;
        lock (kernel.SyncRoot)
        {
            // guard(mutex)(&kvm->slots_lock); one page per kvm_gmem_populate() call.
            while (region.nr_pages != 0)
            {
                long n = GmemPopulate.Populate(kvm, region.gpa >> shift, region.source_addr, 1,
                    (GmemInode inode, ulong index, ulong src, out PopulateFill fill) => PostPopulate(inode, index, src, v8, inPlace, out fill));
                if (n < 0)
                {
                    ret = n;
                    break;
                }
                // "if (gmem_ret != 1) { ret = -EIO; break; }"
                if (n != 1)
                {
                    ret = Err.EIO;
                    break;
                }
                // 6.18: source_addr += PAGE_SIZE always; [PATCH v8]: "if (region.source_addr) region.source_addr += …".
                if (!v8 || region.source_addr != 0) region.source_addr += page;
                region.gpa += page;
                region.nr_pages--;
            }
        }
        // copy_to_user(u64_to_user_ptr(cmd->data), &region, sizeof(region)) → -EFAULT, on success and on failure.
        if (!UserMemory.CopyToUser(config, cmd.data, region)) ret = Err.EFAULT;
        return ret;
    }

    /// <summary>vt_is_tdx_private_gpa: !kvm_is_addr_direct(kvm, gpa), i.e. the shared bit is clear.</summary>
    private static bool IsPrivateGpa(ulong gpa) => (gpa & SharedGpaBit) == 0;

    /// <summary>tdx_gmem_post_populate.</summary>
    private static long PostPopulate(GmemInode inode, ulong index, ulong src, bool v8, bool inPlace, out PopulateFill fill)
    {
        fill = PopulateFill.CopySource;
        if (v8)
        {
            // Newer tree: "if (!src_page) return -EOPNOTSUPP;" — [PATCH v8]: unless gmem_in_place_conversion, then
            // the page is added from its own contents (src_page = pfn_to_page(pfn)).
            if (src == 0)
            {
                if (!inPlace) return Err.EOPNOTSUPP;
                fill = PopulateFill.InPlace;
            }
            // No generic "already prepared" check any more: a page added before is already in the S-EPT,
            // TDH.MEM.PAGE.ADD fails and tdx_gmem_post_populate returns -EIO [D].
            if (GmemPopulate.Populated(inode, index)) return Err.EIO;
        }
        // 6.18: get_user_pages_fast(src, 1, 0, &src_page) (a NULL source faults: -EFAULT) — done by the caller.
        return 0;
    }
}
