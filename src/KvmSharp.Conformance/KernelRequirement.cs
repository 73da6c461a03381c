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
    /// A kernel built without CONFIG_KVM_GUEST_MEMFD (KVM_CAP_GUEST_MEMFD = 0): the case checks how such a kernel
    /// answers the guest_memfd uAPI.
    /// </summary>
    NoGuestMemfd,
}

/// <summary>Checks a <see cref="KernelRequirement"/> against a kernel by asking its /dev/kvm.</summary>
public static class KernelRequirements
{
    /// <summary>Why <paramref name="kernel"/> does not meet <paramref name="requirement"/>; null when it does.</summary>
    public static string? Unmet(KernelRequirement requirement, IKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (requirement == KernelRequirement.None) return null;
        long gmem = GuestMemfdCapability(kernel);
        return requirement switch
        {
            KernelRequirement.GuestMemfd when gmem <= 0 =>
                gmem < 0
                    ? $"KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) failed with {ErrnoInfo.NameOf((int)-gmem)}"
                    : "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0)",
            KernelRequirement.NoGuestMemfd when gmem != 0 =>
                gmem < 0
                    ? $"KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) failed with {ErrnoInfo.NameOf((int)-gmem)}"
                    : $"this kernel has guest_memfd (KVM_CAP_GUEST_MEMFD = {gmem}); the case is for a kernel built without CONFIG_KVM_GUEST_MEMFD",
            _ => null,
        };
    }

    /// <summary>KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) on /dev/kvm of <paramref name="kernel"/>, or -errno.</summary>
    private static long GuestMemfdCapability(IKernel kernel)
    {
        long rc = kernel.Open(Kvm.DefaultPath, LinuxConstants.O_RDWR, out KernelFd? fd);
        if (rc < 0) return rc;
        using KernelFd system = fd!;
        return kernel.Ioctl(system, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)KvmCaps.KVM_CAP_GUEST_MEMFD);
    }
}
