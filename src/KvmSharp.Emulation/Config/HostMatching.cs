// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation;

/// <summary>
/// Picks the <see cref="EmulatorConfig.LikeThisHost"/> build that the machine running now is, by asking its
/// /dev/kvm for KVM_CAP_GUEST_MEMFD: the one switch in which this project's machines have been seen to differ.
/// </summary>
public static class HostMatching
{
    private static readonly Lazy<bool?> s_hostHasGuestMemfd = new(Probe);

    /// <summary>
    /// KVM_CAP_GUEST_MEMFD != 0 on this machine's /dev/kvm; null when /dev/kvm cannot be opened (there is no real
    /// kernel to match).
    /// </summary>
    public static bool? HostHasGuestMemfd => s_hostHasGuestMemfd.Value;

    /// <summary>
    /// <see cref="EmulatorConfig.LikeThisHost"/> with CONFIG_KVM_GUEST_MEMFD as this machine's kernel has it (with
    /// it when there is no /dev/kvm to ask).
    /// </summary>
    public static EmulatorConfig LikeThisHostAsItIs() => EmulatorConfig.LikeThisHost(guestMemfd: HostHasGuestMemfd ?? true);

    private static bool? Probe()
    {
        IKernel linux = LinuxKernel.Instance;
        long rc = linux.Open("/dev/kvm", LinuxConstants.O_RDWR, out KernelFd? fd);
        if (rc < 0 || fd is null) return null;
        using (fd)
        {
            return linux.Ioctl(fd, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)KvmCaps.KVM_CAP_GUEST_MEMFD) > 0;
        }
    }
}
