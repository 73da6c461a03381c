// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.MemoryAttributes;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>A VM fd ("kvm-vm" anon inode, kvm_vm_fops: unlocked_ioctl = kvm_vm_ioctl, llseek = noop_llseek).</summary>
internal sealed class KvmVmFile : KernelFile
{
    /// <summary>st_dev of anon_inodefs and the single shared anon inode, as observed on this host.</summary>
    internal const ulong AnonInodeFsDevice = 16;
    internal const ulong AnonInodeIno = 1038;

    public KvmVmFile(Kvm kvm) => Kvm = kvm;

    public Kvm Kvm { get; }

    // The anon inode has mode 0600 and no file type bits.
    public override uint Mode => 0x180;

    public override ulong Device => AnonInodeFsDevice;

    public override ulong Inode => AnonInodeIno;

    public override bool HasNoopLlseek => true;

    /// <summary>kvm_main.c kvm_vm_ioctl.</summary>
    public override long Ioctl(uint request, IoctlArg arg)
    {
        var config = Kvm.Kernel.Config;
        // "if (kvm->mm != current->mm || kvm->vm_dead) return -EIO;"
        if (Kvm.VmDead) return Err.EIO;
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION)
            return SetMemoryRegion.Ioctl(Kvm, arg, v2: false);
        // Requests a generation does not know fall through to kvm_arch_vm_ioctl, as in that kernel.
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2 && config.Generation.HasUserMemory2())
            return SetMemoryRegion.Ioctl(Kvm, arg, v2: true);
        if (request == KvmIoctls.KVM_CHECK_EXTENSION)
            return CheckExtension.Check(Kvm.Kernel, Kvm, arg.Value);
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES && config.Kconfig.KVM_GENERIC_MEMORY_ATTRIBUTES)
            return VmMemoryAttributes.Ioctl(Kvm, arg, v2: false);
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2 && config.VmMemoryAttributes2 && config.Kconfig.KVM_GENERIC_MEMORY_ATTRIBUTES)
            return VmMemoryAttributes.Ioctl(Kvm, arg, v2: true);
        if (request == KvmIoctls.KVM_CREATE_GUEST_MEMFD && config.Kconfig.KVM_GUEST_MEMFD)
            return KvmGmemCreate.Ioctl(Kvm, arg);
        if (request == KvmIoctls.KVM_CREATE_VCPU)
            return CreateVcpu.Ioctl(Kvm, arg.Value);
        if (request == KvmIoctls.KVM_ENABLE_CAP)
            return EnableCap.Ioctl(Kvm, arg);
        if (request == KvmIoctls.KVM_GET_DIRTY_LOG)
            return DirtyLog.GetIoctl(Kvm, arg);
        if (request == KvmIoctls.KVM_CLEAR_DIRTY_LOG)
            return DirtyLog.ClearIoctl(Kvm, arg);
        if (request == KvmIoctls.KVM_IOEVENTFD)
            return Eventfd.IoEventFdIoctl(Kvm, arg);
        if (request == KvmIoctls.KVM_IRQFD)
            return Eventfd.IrqFdIoctl(Kvm, arg);
        // kvm_vm_ioctl under CONFIG_KVM_MMIO (x86 and arm64): virt/kvm/coalesced_mmio.c (KvmMain/CoalescedMmio.cs).
        if (request == KvmCoalescedMmio.KVM_REGISTER_COALESCED_MMIO)
            return Kvm.CoalescedMmio.Register(arg);
        if (request == KvmCoalescedMmio.KVM_UNREGISTER_COALESCED_MMIO)
            return Kvm.CoalescedMmio.Unregister(arg);
        if (request == KvmIoctls.KVM_RESET_DIRTY_RINGS)
            return DirtyRing.ResetIoctl(Kvm);
        if (request == KvmIoctls.KVM_GET_STATS_FD)
            return BinaryStats.GetStatsFd.VmIoctl(Kvm);
        if (request == KvmIoctls.KVM_CREATE_DEVICE)
            return Devices.CreateDevice.Ioctl(Kvm, arg);
        return Kvm.Arch.VmIoctl(Kvm, request, arg);
    }

    /// <summary>kvm_vm_release: kvm_put_kvm.</summary>
    protected override void OnRelease() => Kvm.Put();
}
