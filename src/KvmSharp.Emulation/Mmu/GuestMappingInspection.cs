// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation;

/// <summary>
/// One leaf the emulated x86 TDP MMU or arm64 stage 2 installed for a guest fault (see <see cref="GuestMappingInspection"/>).
/// </summary>
/// <param name="Gpa">The first guest physical address the leaf maps (aligned to its size).</param>
/// <param name="PageShift">log2 of the leaf's size: 12 (4 KiB), 21 (2 MiB) or 30 (1 GiB). On arm64 (4 KiB granule): a
/// level-3 page, a level-2 block (PMD_SIZE) or a level-1 block (PUD_SIZE).</param>
/// <param name="Private">The fault was private (kvm_page_fault.is_private); always false on arm64.</param>
/// <param name="GmemOrder">kvm_gmem_get_pfn's max_order at the fault (0 for a fault that did not go through guest_memfd;
/// always 0 on arm64, whose gmem_abort passes no max_order).</param>
public readonly record struct GuestFaultMapping(ulong Gpa, int PageShift, bool Private, int GmemOrder);

/// <summary>
/// What the emulated x86 MMU actually mapped: the leaf installed by the last guest fault (KVM_RUN or
/// KVM_PRE_FAULT_MEMORY) covering a GPA, at the level arch/x86/kvm/mmu/mmu.c kvm_mmu_hugepage_adjust chose
/// (Mmu/MmuMappingLevel.cs), until a zap removed it. A test and tooling hook: the kernel shows this only through
/// tracepoints (kvm_mmu_set_spte) and the pages_4k/2m/1g statistics. For an arm64 VM: the stage-2 leaf the last abort
/// installed, at the size arch/arm64/kvm/mmu.c gmem_abort / user_mem_abort chose (Arm64/Stage2MappingSize.cs).
/// </summary>
public static class GuestMappingInspection
{
    /// <summary>
    /// The leaf mapping <paramref name="gpa"/> (address space 0) of the VM <paramref name="vmFd"/>: 0 with it, ENOENT
    /// when nothing maps it (never faulted, or zapped since: a conversion, punch hole, memslot change), EBADF, or
    /// EINVAL for a fd that is not a VM. A TD's shared bit and an SNP guest's C-bit are not part of the GPA here.
    /// </summary>
    public static long LastFault(EmulatedKernel kernel, KernelFd vmFd, ulong gpa, out GuestFaultMapping mapping)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(vmFd);
        mapping = default;
        lock (kernel.SyncRoot)
        {
            var file = kernel.Fget((uint)vmFd.Number);
            if (file is null) return Err.EBADF;
            if (file is not KvmVmFile vmFile) return Err.EINVAL;
            if (MmuMappings.Lookup(vmFile.Kvm, gpa >> EmulatorConfig.PageShift) is not { } leaf) return Err.ENOENT;
            mapping = new GuestFaultMapping(leaf.Gfn << EmulatorConfig.PageShift, MmuMappingLevel.PageShift(leaf.Level), leaf.Private, leaf.GmemOrder);
            return 0;
        }
    }
}
