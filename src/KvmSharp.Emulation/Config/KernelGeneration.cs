// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation;

/// <summary>
/// Which tree the emulated kernel follows. A generation is the first release of a run of releases that answer the
/// guest_memfd uAPI alike, in the newest stable form of that run (fixes backported to stable are in). Ordered: a
/// later generation has everything an earlier one has, unless <see cref="KernelGenerations"/> says otherwise.
/// </summary>
public enum KernelGeneration
{
    /// <summary>
    /// Linux 6.1–6.7 (e.g. the 6.1 and 6.6 LTS series): before guest_memfd. No KVM_SET_USER_MEMORY_REGION2, no
    /// KVM_CREATE_GUEST_MEMFD, no memory attributes, no VM types (x86 kvm_arch_init_vm: <c>if (type) return -EINVAL</c>).
    /// </summary>
    Linux61,

    /// <summary>
    /// Linux 6.8–6.9: "KVM: guest_memfd() and per-page attributes" (v14, merged for 6.8). KVM_CREATE_GUEST_MEMFD with
    /// no valid flags, bindable only by VMs with private memory (x86 KVM_X86_SW_PROTECTED_VM); KVM_CAP_VM_TYPES,
    /// KVM_SET_USER_MEMORY_REGION2, KVM_SET_MEMORY_ATTRIBUTES, KVM_EXIT_MEMORY_FAULT. guest_memfd cannot be mmapped.
    /// </summary>
    Linux68,

    /// <summary>Linux 6.10: adds the x86 VM types KVM_X86_SEV_VM and KVM_X86_SEV_ES_VM (no private memory).</summary>
    Linux610,

    /// <summary>
    /// Linux 6.11–6.15 (6.12 LTS): adds KVM_X86_SNP_VM, kvm_gmem_populate (KVM_SEV_SNP_LAUNCH_UPDATE), the arch
    /// prepare/invalidate hooks and KVM_PRE_FAULT_MEMORY (KVM_CAP_PRE_FAULT_MEMORY).
    /// </summary>
    Linux611,

    /// <summary>Linux 6.16–6.17: adds KVM_X86_TDX_VM (KVM_TDX_INIT_MEM_REGION populates guest_memfd).</summary>
    Linux616,

    /// <summary>
    /// Linux 6.18: guest_memfd with GUEST_MEMFD_FLAG_MMAP and INIT_SHARED, KVM_CAP_GUEST_MEMFD_FLAGS, guest_memfd slots
    /// for every VM (gmem-only memslots), KVM_CAP_GUEST_MEMFD answering 1 everywhere, guest_memfd on arm64; per-VM
    /// memory attributes only.
    /// </summary>
    Linux618,

    /// <summary>
    /// Linux 6.19 and later: adds NUMA memory policy on guest_memfd ("KVM: guest_memfd: Enforce NUMA mempolicy using
    /// shared policy", Shivank Garg's series, v11+ via kvm-x86): a per-inode shared policy set by mbind(2) on a
    /// mapping (kvm_gmem_set_policy / kvm_gmem_get_policy vm_ops) that folio allocation follows (kvm_gmem_get_folio →
    /// __filemap_get_folio_mpol), by fallocate and by faults alike. Otherwise as 6.18.
    /// </summary>
    Linux619,

    /// <summary>
    /// "guest_memfd: In-place conversion support" [PATCH v8 00/46] (Ackerley Tng, 2026-06-18, unmerged, on top of
    /// 6.18+): per-gmem attributes and KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd fd, gated by
    /// <c>kvm.gmem_in_place_conversion</c>.
    /// </summary>
    InPlaceConversionV8,
}

/// <summary>
/// What each <see cref="KernelGeneration"/> has, in one place, so a rule elsewhere asks for the feature by name and
/// the release it came with is written once, beside its source.
/// </summary>
public static class KernelGenerations
{
    /// <summary>
    /// KVM_SET_USER_MEMORY_REGION2, KVM_CAP_USER_MEMORY2 and KVM_CAP_MEMORY_FAULT_INFO ("KVM: Add
    /// KVM_SET_USER_MEMORY_REGION2", "KVM: Add KVM_EXIT_MEMORY_FAULT exit", both 6.8).
    /// </summary>
    public static bool HasUserMemory2(this KernelGeneration g) => g >= KernelGeneration.Linux68;

    /// <summary>
    /// KVM_CAP_DEVICE_CTRL answered by kvm_vm_ioctl_check_extension_generic on every arch ("KVM: move
    /// KVM_CAP_DEVICE_CTRL to the generic check", Wei Wang, 6.4); before, x86 answered 0 (arm64 1, from arm.c) though
    /// KVM_CREATE_DEVICE of the kvm-vfio device worked.
    /// </summary>
    public static bool HasGenericDeviceCtrl(this KernelGeneration g) => g > KernelGeneration.Linux61;

    /// <summary>
    /// Whether CONFIG_KVM_PRIVATE_MEM (6.8–6.17; CONFIG_KVM_GUEST_MEMFD from 6.18) and
    /// CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES exist at all: KVM_CREATE_GUEST_MEMFD, KVM_SET_MEMORY_ATTRIBUTES (6.8).
    /// </summary>
    public static bool HasGuestMemfd(this KernelGeneration g) => g >= KernelGeneration.Linux68;

    /// <summary>KVM_CAP_VM_TYPES and KVM_X86_SW_PROTECTED_VM ("KVM: x86: Add support for "protected VMs"…", 6.8).</summary>
    public static bool HasVmTypes(this KernelGeneration g) => g >= KernelGeneration.Linux68;

    /// <summary>KVM_PRE_FAULT_MEMORY and KVM_CAP_PRE_FAULT_MEMORY ("KVM: Add KVM_PRE_FAULT_MEMORY vcpu ioctl…", 6.11).</summary>
    public static bool HasPreFaultMemory(this KernelGeneration g) => g >= KernelGeneration.Linux611;

    /// <summary>
    /// kvm_gmem_populate and HAVE_KVM_ARCH_GMEM_PREPARE/INVALIDATE/POPULATE (SEV-SNP support, 6.11).
    /// </summary>
    public static bool HasGmemPopulate(this KernelGeneration g) => g >= KernelGeneration.Linux611;

    /// <summary>
    /// The guest_memfd mmap series (6.18): GUEST_MEMFD_FLAG_MMAP/INIT_SHARED, KVM_CAP_GUEST_MEMFD_FLAGS,
    /// KVM_MEM_GUEST_MEMFD valid whenever CONFIG_KVM_GUEST_MEMFD (not only for VMs with private memory),
    /// KVM_CAP_GUEST_MEMFD = 1 on every VM, and guest_memfd on arm64. Before it, check_memory_region_flags and
    /// KVM_CAP_GUEST_MEMFD asked kvm_arch_has_private_mem(kvm), and kvm_gmem_create's valid_flags was 0.
    /// </summary>
    public static bool HasGmemMmap(this KernelGeneration g) => g >= KernelGeneration.Linux618;

    /// <summary>
    /// guest_memfd's NUMA mempolicy (6.19): struct gmem_inode's shared_policy, kvm_gmem_vm_ops .set_policy/.get_policy
    /// and allocation with the policy of the page's index. Before, mbind(2) on a guest_memfd mapping only sets the
    /// VMA's policy (vma->vm_policy), which get_mempolicy(2) reports and guest_memfd's allocation ignores
    /// (filemap_grab_folio with the task's policy).
    /// </summary>
    public static bool HasGmemMempolicy(this KernelGeneration g) => g >= KernelGeneration.Linux619;

    /// <summary>
    /// The highest x86 VM type the generation knows (include/uapi/asm/kvm.h KVM_X86_*_VM): DEFAULT (all), SW_PROTECTED
    /// 6.8, SEV and SEV_ES 6.10, SNP 6.11, TDX 6.16.
    /// </summary>
    public static uint MaxX86VmType(this KernelGeneration g) => g switch
    {
        KernelGeneration.Linux61 => 0,
        KernelGeneration.Linux68 => 1,
        KernelGeneration.Linux610 => 3,
        KernelGeneration.Linux611 => 4,
        _ => 5,
    };

    /// <summary>The first release of the generation ("6.8"), or "v8" for the in-place conversion series.</summary>
    public static string Release(this KernelGeneration g) => g switch
    {
        KernelGeneration.Linux61 => "6.1",
        KernelGeneration.Linux68 => "6.8",
        KernelGeneration.Linux610 => "6.10",
        KernelGeneration.Linux611 => "6.11",
        KernelGeneration.Linux616 => "6.16",
        KernelGeneration.Linux618 => "6.18",
        KernelGeneration.Linux619 => "6.19",
        KernelGeneration.InPlaceConversionV8 => "v8",
        _ => throw new ArgumentOutOfRangeException(nameof(g), g, "unknown kernel generation"),
    };

    /// <summary>
    /// The generation a Linux release ("6.12", "6.12.58", "7.0") belongs to: releases from 6.19 on are
    /// <see cref="KernelGeneration.Linux619"/> (the newest merged tree this emulator follows), releases before 6.1
    /// are refused.
    /// </summary>
    public static bool TryParseRelease(string? release, out KernelGeneration generation)
    {
        generation = default;
        if (string.IsNullOrWhiteSpace(release)) return false;
        string[] parts = release.Trim().Split('.');
        if (parts.Length < 2 || !int.TryParse(parts[0], out int major) || !int.TryParse(parts[1], out int minor)) return false;
        if (parts.Skip(2).Any(p => !int.TryParse(p, out _))) return false;
        if (major < 6 || (major == 6 && minor < 1)) return false;
        generation = major > 6 ? KernelGeneration.Linux619 : minor switch
        {
            < 8 => KernelGeneration.Linux61,
            < 10 => KernelGeneration.Linux68,
            10 => KernelGeneration.Linux610,
            < 16 => KernelGeneration.Linux611,
            < 18 => KernelGeneration.Linux616,
            18 => KernelGeneration.Linux618,
            _ => KernelGeneration.Linux619,
        };
        return true;
    }
}
