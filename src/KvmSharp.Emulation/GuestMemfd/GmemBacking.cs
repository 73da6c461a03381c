// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>
/// Which host shmem file backs a guest_memfd's page cache. The fast one is the private huge-page tmpfs
/// (<see cref="HostMemory.CreateBackingFile"/>: one host fault per 2 MiB on first touch). Its residency is coarser
/// than the real guest_memfd's order-0 folios, which only matters where host faults (unseen by the emulator) decide
/// a page state some uAPI reports: the "prepared" (up to date) flag that kvm_gmem_populate reads. Those VMs get a
/// plain memfd instead, 4 KiB shmem pages (exact as long as the host's shmem_enabled leaves memfds at order 0, the
/// kernel default and this host's setting).
/// </summary>
internal static class GmemBacking
{
    private const string Name = "[kvm-gmem]";

    /// <summary>
    /// The VM types whose uAPI can observe preparation: the only kvm_gmem_populate callers, KVM_TDX_INIT_MEM_REGION
    /// (arch/x86/kvm/vmx/tdx.c tdx_vcpu_init_mem_region) and KVM_SEV_SNP_LAUNCH_UPDATE (arch/x86/kvm/svm/sev.c
    /// snp_launch_update); and every VM of a kernel with more than one NUMA node.
    /// </summary>
    public static bool NeedsExactResidency(Kvm kvm) =>
        kvm.Type is KvmConstants.KVM_X86_TDX_VM or KvmConstants.KVM_X86_SNP_VM
        // move_pages(2) reports, per 4 KiB page, whether a mapping has it present (mm/migrate.c do_pages_stat_array):
        // on the huge backing one host fault maps 2 MiB. Only multi-node kernels ask which node a page is on.
        || kvm.Kernel.Config.NumaNodes > 1;

    /// <summary>
    /// <see cref="NeedsExactResidency(Kvm)"/>, or a file whose write(2) answer depends on which pages are up to date:
    /// NO_DIRECT_MAP and WRITE together, where a write to a page a host fault sealed is EEXIST (<see cref="GmemWrite"/>).
    /// </summary>
    public static bool NeedsExactResidency(Kvm kvm, ulong flags) =>
        NeedsExactResidency(kvm) ||
        (kvm.Kernel.Config.GuestMemfdWrite && kvm.Kernel.Config.GuestMemfdNoDirectMap &&
         (flags & GmemWrite.Flag) != 0 && (flags & GmemNoDirectMap.Flag) != 0);

    /// <summary>A new sparse backing file: its host descriptor, or -errno.</summary>
    public static long Create(bool exactResidency) =>
        exactResidency ? HostMemory.MemfdCreate(Name, HostMemory.MFD_CLOEXEC) : HostMemory.CreateBackingFile(Name);
}
