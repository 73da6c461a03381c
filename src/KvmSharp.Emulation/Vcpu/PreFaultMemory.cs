// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Emulation.X86;

namespace KvmSharp.Emulation.Vcpu;

/// <summary>
/// KVM_PRE_FAULT_MEMORY: virt/kvm/kvm_main.c kvm_vcpu_pre_fault_memory (generic checks, loop, in-place update) and
/// arch/x86/kvm/mmu/mmu.c kvm_arch_vcpu_pre_fault_memory / kvm_tdp_map_page (one page per iteration).
/// </summary>
internal static class PreFaultMemory
{
    /// <summary>kvm_vcpu_ioctl KVM_PRE_FAULT_MEMORY: copy in, run, always copy the (updated) range back.</summary>
    public static long Ioctl(KvmVcpu vcpu, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_pre_fault_memory range)) return Err.EFAULT;
        // While the loop runs, a kick (IKernel.KickThread, tgkill in the real kernel) to this thread stays pending
        // and is seen by the signal_pending(current) check before the next page, instead of going straight to the
        // no-op handler as it does for a thread outside the kernel.
        var kernel = vcpu.Kvm.Kernel;
        kernel.EnterRun(vcpu);
        long r;
        try
        {
            r = Run(vcpu, ref range);
        }
        finally
        {
            kernel.LeaveRun(vcpu);
        }
        // "Pass back leftover range."
        return arg.CopyToUser(range) ? r : Err.EFAULT;
    }

    private static long Run(KvmVcpu vcpu, ref kvm_pre_fault_memory range)
    {
        ulong page = (ulong)EmulatorConfig.PageSize;
        if (range.flags != 0) return Err.EINVAL;
        // Padding is not validated.
        if ((range.gpa & (page - 1)) != 0 || (range.size & (page - 1)) != 0 || range.gpa + range.size <= range.gpa)
            return Err.EINVAL;
        ulong fullSize = range.size;
        long r;
        do
        {
            // kvm_vcpu_pre_fault_memory: "if (signal_pending(current)) { r = -EINTR; break; }" before every page (x86
            // kvm_tdp_map_page repeats the check in its RET_PF_RETRY loop, same outcome). cond_resched() after each
            // page only yields; it never ends the loop.
            if (vcpu.SignalPending)
            {
                r = Err.EINTR;
                break;
            }
            r = MapPage(vcpu, range.gpa);
            if (r < 0) break;
            r = (long)Math.Min((ulong)r, range.size); // "return min(range->size, end - range->gpa);"
            range.size -= (ulong)r;
            range.gpa += (ulong)r;
        }
        while (range.size != 0);
        // "Return success if at least one page was mapped successfully."
        return fullSize == range.size ? r : 0;
    }

    /// <summary>kvm_arch_vcpu_pre_fault_memory for one 4 KiB mapping: bytes mapped, or -errno.</summary>
    private static long MapPage(KvmVcpu vcpu, ulong gpa)
    {
        var kvm = vcpu.Kvm;
        var config = kvm.Kernel.Config;
        // kvm->arch.pre_fault_allowed: DEFAULT and SW_PROTECTED at creation, SEV/SEV-ES (no private memory);
        // SNP after KVM_SEV_SNP_LAUNCH_FINISH, TDX after KVM_TDX_FINALIZE_VM (Arch/X86/CocoState.cs).
        if (!Arch.CocoState.PreFaultAllowed(kvm)) return Err.EOPNOTSUPP;
        // kvm_mmu_reload: with shadow paging and no memslot ever created there are no MMU pages (observed ENOSPC) —
        // unless the guest has paging on: mmu_alloc_shadow_roots then finds CR3's gfn outside every memslot and installs
        // the dummy root before make_mmu_pages_available, so the load succeeds and kvm_tdp_map_page answers EOPNOTSUPP
        // below (observed; found by the differential fuzzer: KVM_SET_SREGS to long mode, then KVM_PRE_FAULT_MEMORY on a
        // VM without memslots, tests/KvmSharp.Fuzzing.Tests/FoundDivergenceTests.cs).
        if (!config.TdpEnabled && !kvm.MmuPagesAvailable && (vcpu.Cpu.Sregs.cr0 & X86Consts.CR0_PG) == 0) return Err.ENOSPC;
        // kvm_tdp_map_page: "Restrict to TDP page fault" → -EOPNOTSUPP with shadow paging (observed).
        if (!config.TdpEnabled) return Err.EOPNOTSUPP;
        var result = vcpu.Memory.Prefault(gpa);
        switch (result.Status)
        {
            case GpaStatus.Done:
                // kvm_arch_vcpu_pre_fault_memory: "Adjust the number of bytes to the end of the mapped huge page." —
                // end = (gpa & KVM_HPAGE_MASK(level)) + KVM_HPAGE_SIZE(level) (the caller clamps to the range).
                if (MmuMappings.Lookup(kvm, gpa >> EmulatorConfig.PageShift) is { } leaf)
                    return (long)((leaf.End << EmulatorConfig.PageShift) - gpa);
                return EmulatorConfig.PageSize;
            case GpaStatus.Mmio:
                // RET_PF_EMULATE → -ENOENT.
                return Err.ENOENT;
            default:
                // kvm_tdp_map_page goes through the whole fault path, kvm_do_userfault included ([PATCH v3 05/15]): a
                // page whose userfault bit is set is not pre-faulted, and the memory fault exit is filled as for KVM_RUN.
                if (!result.NoExit) vcpu.Run.SetMemoryFault(result.Gpa, (ulong)EmulatorConfig.PageSize, result.Private, result.IsUserfault);
                return result.Errno;
        }
    }
}
