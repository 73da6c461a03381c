// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain.BinaryStats;

/// <summary>
/// virt/kvm/kvm_main.c kvm_vm_ioctl_get_stats_fd and kvm_vcpu_ioctl_get_stats_fd (KVM_GET_STATS_FD, the argument
/// ignored): get_unused_fd_flags(O_CLOEXEC) (EMFILE), anon_inode_getfile_fmode(name, fops, O_RDONLY, FMODE_PREAD),
/// kvm_get_kvm, fd_install. /dev/kvm does not know the request (kvm_dev_ioctl: EINVAL).
/// </summary>
internal static class GetStatsFd
{
    public static long VmIoctl(Kvm kvm) => Install(kvm, kvm.Stats, "kvm-vm-stats");

    /// <summary>The name is "kvm-vcpu-stats:%d" of vcpu_id.</summary>
    public static long VcpuIoctl(KvmVcpu vcpu) => Install(vcpu.Kvm, vcpu.Stats, $"kvm-vcpu-stats:{vcpu.Id}");

    private static long Install(Kvm kvm, KvmStats stats, string name)
    {
        var kernel = kvm.Kernel;
        // The vCPU ioctl runs under vcpu->mutex, not the kernel lock: the fd table is the kernel's.
        lock (kernel.SyncRoot)
        {
            if (!kernel.HasFdRoom) return Err.EMFILE;
            kvm.Get();
            return kernel.InstallFile(new KvmStatsFile(kvm, stats, name));
        }
    }
}
