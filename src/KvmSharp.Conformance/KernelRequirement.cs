// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Conformance;

/// <summary>
/// What a case needs the kernel under test to be, beyond what the case checks itself: stated on the case
/// (<see cref="ConformanceCaseAttribute.Requires"/>) or its class (<see cref="ConformanceGroupAttribute.Requires"/>)
/// and checked by <see cref="ConformanceRunner"/> before the case runs. On the real kernel an unmet requirement skips
/// the case with its reason; on the emulator it fails the case, because there the profile was chosen for the case and
/// a mismatch is a mistake in the suite.
/// </summary>
public enum KernelRequirement
{
    /// <summary>Any kernel.</summary>
    None,

    /// <summary>
    /// A kernel with guest_memfd (CONFIG_KVM_GUEST_MEMFD: KVM_CAP_GUEST_MEMFD != 0): the case creates guest_memfds or
    /// binds them. Cases whose subject is the CPU or KVM_RUN do not need it; they take the memory the kernel offers.
    /// </summary>
    GuestMemfd,

    /// <summary>
    /// The guest_memfd of the mmap series (6.18+): the file can be mapped (KVM_CAP_GUEST_MEMFD_FLAGS on /dev/kvm has
    /// MMAP) and every VM type may bind it. A 6.8–6.17 kernel has guest_memfd without either (flags must be 0, only
    /// VMs with private memory bind it): the case needs more than <see cref="GuestMemfd"/>.
    /// </summary>
    MappableGuestMemfd,

    /// <summary>
    /// A kernel of 6.8 or later built without CONFIG_KVM_GUEST_MEMFD (KVM_CAP_GUEST_MEMFD = 0,
    /// KVM_CAP_USER_MEMORY2 = 1): the case checks how such a kernel answers the guest_memfd uAPI.
    /// </summary>
    NoGuestMemfd,

    /// <summary>
    /// A kernel with KVM_SET_USER_MEMORY_REGION2 and KVM_EXIT_MEMORY_FAULT (KVM_CAP_USER_MEMORY2, Linux 6.8+): the
    /// case uses the v2 ioctl itself. (Every kernel with guest_memfd has it.)
    /// </summary>
    UserMemory2,

    /// <summary>
    /// guest_memfd with the direct-map-removal proposal ("[PATCH v12 00/16] Direct Map Removal Support for
    /// guest_memfd", unmerged): KVM_CAP_GUEST_MEMFD_FLAGS on /dev/kvm lists GUEST_MEMFD_FLAG_NO_DIRECT_MAP (1 &lt;&lt; 2),
    /// which v12 10/16 reports there whenever the series is applied. The series is based on 6.18+, so this implies
    /// <see cref="MappableGuestMemfd"/>.
    /// </summary>
    NoDirectMapGuestMemfd,

    /// <summary>
    /// guest_memfd with the write proposal ("[PATCH v7 1/2] KVM: guest_memfd: add generic population via write",
    /// unmerged): KVM_CAP_GUEST_MEMFD_FLAGS on /dev/kvm lists GUEST_MEMFD_FLAG_WRITE, which v7 reports there (kvm is NULL,
    /// so INIT_SHARED and WRITE are listed). Bit 1 &lt;&lt; 3 as in Firecracker's tree that carries it with NO_DIRECT_MAP
    /// (v7 alone says 1 &lt;&lt; 2: such a kernel is not recognised). Based on 6.18+, so this implies
    /// <see cref="MappableGuestMemfd"/>.
    /// </summary>
    WriteGuestMemfd,

    /// <summary>
    /// KVM userfault ("[PATCH v3 00/15] KVM: Introduce KVM Userfault", unmerged): KVM_CAP_USERFAULT (the kernel's
    /// <see cref="KvmSharp.Abi.UapiProposals.UserfaultCap"/>, 243 in v3) answers non-zero on /dev/kvm. x86 kernels without
    /// the series answer 0 there (on arm64 6.17+ the number is KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED). v3 uses
    /// KVM_SET_USER_MEMORY_REGION2, so this implies <see cref="UserMemory2"/>.
    /// </summary>
    Userfault,

    /// <summary>
    /// <see cref="Userfault"/> on a kernel whose guest_memfd is of the mmap series (<see cref="MappableGuestMemfd"/>):
    /// the case binds guest_memfd slots with KVM_MEM_USERFAULT.
    /// </summary>
    UserfaultGuestMemfd,

    /// <summary>
    /// A kernel that creates KVM_X86_TDX_VM (KVM_CAP_VM_TYPES has bit 5: an Intel host with TDX enabled, 6.16+): the
    /// case checks what a TD's vCPUs refuse.
    /// </summary>
    TdxVmType,

    /// <summary>
    /// A kernel that creates KVM_X86_SEV_ES_VM (KVM_CAP_VM_TYPES has bit 3: an AMD host with SEV-ES enabled, 6.10+).
    /// </summary>
    SevEsVmType,

    /// <summary>A kernel that creates KVM_X86_SEV_VM (KVM_CAP_VM_TYPES has bit 2: an AMD host with SEV enabled, 6.10+).</summary>
    SevVmType,

    /// <summary>A kernel that creates KVM_X86_SNP_VM (KVM_CAP_VM_TYPES has bit 4: an AMD host with SEV-SNP enabled, 6.11+).</summary>
    SnpVmType,
}

/// <summary>Checks a <see cref="KernelRequirement"/> against a kernel by asking its /dev/kvm.</summary>
public static class KernelRequirements
{
    /// <summary>
    /// Whether every kernel that meets <paramref name="stronger"/> meets <paramref name="weaker"/>: a case may refine its
    /// class's requirement this way (mmap-series guest_memfd is guest_memfd; guest_memfd came with REGION2).
    /// </summary>
    public static bool Implies(KernelRequirement stronger, KernelRequirement weaker) =>
        stronger == weaker || weaker == KernelRequirement.None || (stronger, weaker) switch
        {
            (KernelRequirement.MappableGuestMemfd, KernelRequirement.GuestMemfd) => true,
            (KernelRequirement.NoDirectMapGuestMemfd, KernelRequirement.MappableGuestMemfd or KernelRequirement.GuestMemfd) => true,
            (KernelRequirement.WriteGuestMemfd, KernelRequirement.MappableGuestMemfd or KernelRequirement.GuestMemfd or KernelRequirement.UserMemory2) => true,
            (KernelRequirement.Userfault, KernelRequirement.UserMemory2) => true,
            (KernelRequirement.UserfaultGuestMemfd, KernelRequirement.Userfault or KernelRequirement.MappableGuestMemfd or
                KernelRequirement.GuestMemfd or KernelRequirement.UserMemory2) => true,
            (KernelRequirement.NoDirectMapGuestMemfd or KernelRequirement.MappableGuestMemfd or KernelRequirement.GuestMemfd or KernelRequirement.NoGuestMemfd,
                KernelRequirement.UserMemory2) => true,
            _ => false,
        };

    /// <summary>Why <paramref name="kernel"/> does not meet <paramref name="requirement"/>; null when it does.</summary>
    public static string? Unmet(KernelRequirement requirement, IKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (requirement == KernelRequirement.None) return null;
        long gmem = Capability(kernel, KvmCaps.KVM_CAP_GUEST_MEMFD);
        long flags = Capability(kernel, KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS);
        long userMemory2 = Capability(kernel, KvmCaps.KVM_CAP_USER_MEMORY2);
        if (gmem < 0 || userMemory2 < 0 || flags < 0)
            return $"KVM_CHECK_EXTENSION on /dev/kvm failed with {ErrnoInfo.NameOf((int)-Math.Min(Math.Min(gmem, userMemory2), flags))}";
        return requirement switch
        {
            KernelRequirement.GuestMemfd or KernelRequirement.MappableGuestMemfd or KernelRequirement.NoDirectMapGuestMemfd
                or KernelRequirement.UserfaultGuestMemfd when gmem == 0 =>
                "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0)",
            KernelRequirement.MappableGuestMemfd or KernelRequirement.NoDirectMapGuestMemfd or KernelRequirement.UserfaultGuestMemfd
                when (flags & (long)KvmConstants.GUEST_MEMFD_FLAG_MMAP) == 0 =>
                $"this kernel's guest_memfd predates the mmap series (KVM_CAP_GUEST_MEMFD_FLAGS = 0x{flags:X}: 6.8–6.17 rules, " +
                "no MMAP and only VMs with private memory bind it)",
            KernelRequirement.NoDirectMapGuestMemfd when (flags & (long)NoDirectMapFlag) == 0 =>
                $"this kernel lacks the direct map removal series (KVM_CAP_GUEST_MEMFD_FLAGS = 0x{flags:X} on /dev/kvm has no " +
                "GUEST_MEMFD_FLAG_NO_DIRECT_MAP, 1 << 2: [PATCH v12 00/16] is not merged)",
            KernelRequirement.WriteGuestMemfd when gmem == 0 =>
                "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0)",
            KernelRequirement.WriteGuestMemfd when (flags & (long)WriteFlag) == 0 =>
                $"this kernel lacks the guest_memfd write series (KVM_CAP_GUEST_MEMFD_FLAGS = 0x{flags:X} on /dev/kvm has no " +
                "GUEST_MEMFD_FLAG_WRITE, 1 << 3: [PATCH v7 1/2] is not merged)",
            KernelRequirement.NoGuestMemfd when gmem != 0 =>
                $"this kernel has guest_memfd (KVM_CAP_GUEST_MEMFD = {gmem}); the case is for a kernel built without CONFIG_KVM_GUEST_MEMFD",
            KernelRequirement.NoGuestMemfd or KernelRequirement.UserMemory2 when userMemory2 == 0 =>
                "this kernel predates KVM_SET_USER_MEMORY_REGION2 (KVM_CAP_USER_MEMORY2 = 0: before 6.8)",
            KernelRequirement.TdxVmType or KernelRequirement.SevEsVmType or KernelRequirement.SevVmType or KernelRequirement.SnpVmType =>
                UnmetVmType(requirement, kernel),
            KernelRequirement.Userfault or KernelRequirement.UserfaultGuestMemfd => UnmetUserfault(kernel),
            _ => null,
        };
    }

    /// <summary>Why <paramref name="kernel"/> cannot create the VM type <paramref name="requirement"/> names; null when it can.</summary>
    private static string? UnmetVmType(KernelRequirement requirement, IKernel kernel)
    {
        var (type, name) = requirement switch
        {
            KernelRequirement.TdxVmType => (KvmConstants.KVM_X86_TDX_VM, nameof(KvmConstants.KVM_X86_TDX_VM)),
            KernelRequirement.SevVmType => (KvmConstants.KVM_X86_SEV_VM, nameof(KvmConstants.KVM_X86_SEV_VM)),
            KernelRequirement.SnpVmType => (KvmConstants.KVM_X86_SNP_VM, nameof(KvmConstants.KVM_X86_SNP_VM)),
            _ => (KvmConstants.KVM_X86_SEV_ES_VM, nameof(KvmConstants.KVM_X86_SEV_ES_VM)),
        };
        long types = Capability(kernel, KvmCaps.KVM_CAP_VM_TYPES);
        return types >= 0 && (types & (1L << (int)type)) != 0 ? null
            : $"this kernel cannot create {name} (KVM_CAP_VM_TYPES = 0x{types:X})";
    }

    /// <summary>Why <paramref name="kernel"/> has no KVM userfault; null when KVM_CAP_USERFAULT answers non-zero.</summary>
    private static string? UnmetUserfault(IKernel kernel)
    {
        int cap = kernel.Proposals?.UserfaultCap ?? KvmCaps.KVM_CAP_USERFAULT;
        long answer = Capability(kernel, cap);
        return answer > 0 ? null
            : $"this kernel has no KVM userfault (KVM_CAP_USERFAULT, {cap}, = {answer}: \"[PATCH v3 00/15] KVM: Introduce KVM Userfault\" is not merged)";
    }

    /// <summary>GUEST_MEMFD_FLAG_NO_DIRECT_MAP of [PATCH v12 10/16] (1ULL &lt;&lt; 2), the SDK's GuestMemfdFlags.NoDirectMap.</summary>
    private const ulong NoDirectMapFlag = (ulong)GuestMemfdFlags.NoDirectMap;

    /// <summary>GUEST_MEMFD_FLAG_WRITE of [PATCH v7 1/2] as numbered with NO_DIRECT_MAP (1ULL &lt;&lt; 3), the SDK's GuestMemfdFlags.Write.</summary>
    private const ulong WriteFlag = (ulong)GuestMemfdFlags.Write;

    /// <summary>KVM_CHECK_EXTENSION(<paramref name="capability"/>) on /dev/kvm of <paramref name="kernel"/>, or -errno.</summary>
    private static long Capability(IKernel kernel, int capability)
    {
        long rc = kernel.Open(Kvm.DefaultPath, LinuxConstants.O_RDWR, out KernelFd? fd);
        if (rc < 0) return rc;
        using KernelFd system = fd!;
        return kernel.Ioctl(system, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)capability);
    }
}
