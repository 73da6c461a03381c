// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>virt/kvm/guest_memfd.c kvm_gmem_create and kvm_gmem_get_supported_flags.</summary>
internal static class KvmGmemCreate
{
    /// <summary>
    /// kvm_gmem_get_supported_flags(kvm): MMAP always; INIT_SHARED when kvm is NULL (/dev/kvm) or the arch allows
    /// shared gmem for this VM, and WRITE with it under the write proposal ([PATCH v7 1/2]); NO_DIRECT_MAP with the direct-map-removal proposal ([PATCH v12 10/16]: when kvm is NULL
    /// or kvm_arch_gmem_supports_no_direct_map); plus the configured extra flags. Before 6.18 kvm_gmem_create's
    /// valid_flags was 0. KVM_CAP_GUEST_MEMFD_FLAGS and the proposed FLAGS_HI both read this one set.
    /// </summary>
    public static ulong SupportedFlags(EmulatedKernel kernel, Kvm? kvm)
    {
        if (!kernel.Config.Generation.HasGmemMmap()) return 0;
        ulong flags = KvmConstants.GUEST_MEMFD_FLAG_MMAP;
        if (kvm is null || kernel.Arch.SupportsGmemInitShared(kvm))
        {
            flags |= KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED;
            // [PATCH v7 1/2]: "flags |= GUEST_MEMFD_FLAG_INIT_SHARED | GUEST_MEMFD_FLAG_WRITE;" (bit 3 here, see GmemWrite).
            if (kernel.Config.GuestMemfdWrite) flags |= GmemWrite.Flag;
        }
        if (GmemNoDirectMap.Supported(kernel, kvm)) flags |= GmemNoDirectMap.Flag;
        // guest_memfd HugeTLB proposals (GmemHugetlb.OfferedFlags): HUGETLB, and the RFC v2 size bits 63:58.
        flags |= GmemHugetlb.OfferedFlags(kernel);
        return flags | kernel.Config.ExtraGuestMemfdFlags;
    }

    /// <summary>kvm_vm_ioctl KVM_CREATE_GUEST_MEMFD: copy_from_user, then kvm_gmem_create.</summary>
    public static long Ioctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_create_guest_memfd args)) return Err.EFAULT;
        return Create(kvm, args);
    }

    private static long Create(Kvm kvm, in kvm_create_guest_memfd args)
    {
        // flags & ~kvm_gmem_get_supported_flags(kvm) → EINVAL (checked before the size). NO_DIRECT_MAP where the arch
        // does not support it (TDX/SNP, no can_set_direct_map(), arm64 without FEAT_S2FWB) fails here too: v12 10/16
        // adds no check of its own, and none against MMAP/INIT_SHARED.
        if ((args.flags & ~SupportedFlags(kvm.Kernel, kvm)) != 0) return Err.EINVAL;
        // size is a signed loff_t: <= 0 (0 or >= 2^63) or not page aligned → EINVAL. reserved[] is not checked
        // (except the HugeTLB branch's page_order byte). With a HugeTLB proposal, its rules and the subpool
        // reservation (GmemHugetlb.CheckCreate, which also does the size check in each variant's order).
        long size = (long)args.size;
        long r = GmemHugetlb.CheckCreate(kvm.Kernel, args, out int order, out var pool);
        if (r != 0) return r;
        long fd = kvm.Kernel.CreateGmemFile(kvm, size, args.flags);
        if (pool is null) return fd;
        long hugePages = size >> (order + EmulatorConfig.PageShift);
        // A failed call changes no state: the reservation goes back when the file could not be made.
        if (Err.IsError(fd) || kvm.Kernel.Fget((uint)fd) is not GmemFile file)
        {
            pool.Unreserve(hugePages);
            return fd;
        }
        file.GmemInode.AttachHugetlb(new GmemHugetlbState(order, pool, hugePages, file.GmemInode.Attributes));
        return fd;
    }
}
