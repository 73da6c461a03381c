// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// KVM_TDX_INIT_MEM_REGION (arch/x86/kvm/vmx/tdx.c tdx_vcpu_init_mem_region + tdx_gmem_post_populate), reached
/// through <see cref="TdxLaunch.VcpuIoctl"/>: only on a vCPU that KVM_TDX_INIT_VCPU initialized and before
/// KVM_TDX_FINALIZE_VM; the shared bit is the one KVM_TDX_INIT_VM chose (GPA bit 51 for GPAW 52, 47 for GPAW 48).
/// The TD measurement (KVM_TDX_MEASURE_MEMORY_REGION) goes to <see cref="TdxMeasurement"/> (MRTD, seen by the TD's
/// TDG.MR.REPORT); a pending signal (-EINTR between pages) is not modelled.
/// </summary>
internal static class TdxInitMemRegion
{
    /// <summary>tdx_vcpu_init_mem_region.</summary>
    public static long InitMemRegion(KvmVcpu vcpu, TdxInfo td, in kvm_tdx_cmd cmd)
    {
        var kvm = vcpu.Kvm;
        var kernel = kvm.Kernel;
        var config = kernel.Config;
        // "if (tdx->state != VCPU_TD_STATE_INITIALIZED) return -EINVAL;" then, under slots_lock, "Once TD is
        // finalized, the initial guest memory is fixed": TD_STATE_RUNNABLE → -EINVAL (tdx_vcpu_ioctl refused that
        // already).
        if (!CocoState.Vcpu(vcpu).TdInitialized || td.State == TdState.Runnable) return Err.EINVAL;
        ulong sharedBit = td.SharedGpaBit;
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
            !IsPrivateGpa(region.gpa, sharedBit) || !IsPrivateGpa(unchecked(region.gpa + size - 1), sharedBit))
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
                // TDH.MEM.PAGE.ADD mapped the page: guest-accessible without TDG.MEM.PAGE.ACCEPT (TdxSept).
                TdxSept.Added(kvm, region.gpa >> shift);
                // TDH.MEM.PAGE.ADD's and (KVM_TDX_MEASURE_MEMORY_REGION) TDH.MR.EXTEND's MRTD updates (TdxMeasurement).
                TdxMeasurement.PageAdded(kvm, td, region.gpa, (cmd.flags & KvmMemoryEncrypt.KVM_TDX_MEASURE_MEMORY_REGION) != 0);
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

    /// <summary>vt_is_tdx_private_gpa: !kvm_is_addr_direct(kvm, gpa), i.e. the shared bit (gfn_direct_bits) is clear.</summary>
    private static bool IsPrivateGpa(ulong gpa, ulong sharedBit) => (gpa & sharedBit) == 0;

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
