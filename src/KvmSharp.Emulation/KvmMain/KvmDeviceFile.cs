// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>/dev/kvm (kvm_chardev_ops: unlocked_ioctl = kvm_dev_ioctl, llseek = noop_llseek).</summary>
internal sealed class KvmDeviceFile : KernelFile
{
    // st_dev / st_ino of /dev/kvm as observed on this host (devtmpfs).
    private const ulong DevTmpfsDevice = 6;
    private const ulong DevKvmInode = 82;

    private readonly EmulatedKernel _kernel;

    public KvmDeviceFile(EmulatedKernel kernel) => _kernel = kernel;

    // crw------- (misc device 10:232).
    public override uint Mode => LinuxConstants.S_IFCHR | 0x180;

    public override ulong Device => DevTmpfsDevice;

    public override ulong Inode => DevKvmInode;

    // kvm_main.c kvm_dev: misc device KVM_MINOR (232, include/linux/miscdevice.h) on MISC_MAJOR (10); stat on this
    // host: st_rdev 10:232.
    public override ulong RDevice => KernelStat.EncodeDevice(10, 232);

    // A real open (do_dentry_open) gets FMODE_PREAD/PWRITE; with no read op pread then fails EINVAL, not ESPIPE.
    public override bool CanPositionalIo => true;

    public override bool HasNoopLlseek => true;

    /// <summary>kvm_main.c kvm_dev_ioctl.</summary>
    public override long Ioctl(uint request, IoctlArg arg)
    {
        if (request == KvmIoctls.KVM_GET_API_VERSION)
            return arg.Value != 0 ? Err.EINVAL : KvmConstants.KVM_API_VERSION;
        if (request == KvmIoctls.KVM_CREATE_VM)
            return _kernel.CreateVm(arg.Value);
        if (request == KvmIoctls.KVM_CHECK_EXTENSION)
            return CheckExtension.Check(_kernel, null, arg.Value);
        if (request == KvmIoctls.KVM_GET_VCPU_MMAP_SIZE)
            return arg.Value != 0 ? Err.EINVAL : _kernel.Arch.VcpuMmapSize;
        return _kernel.Arch.DevIoctl(request, arg);
    }
}
