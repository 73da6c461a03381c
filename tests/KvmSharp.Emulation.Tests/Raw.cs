// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>Raw syscalls on any kernel, the way the cross-kernel suite drives them: bytes in, -errno out.</summary>
internal static class Raw
{
    public const long EPERM = -1, ENOENT = -2, EBADF = -9, EAGAIN = -11, EFAULT = -14, EEXIST = -17, ENODEV = -19,
        EINVAL = -22, ENOTTY = -25, EFBIG = -27, ESPIPE = -29, EOVERFLOW = -75, EOPNOTSUPP = -95;

    public static int Page => Environment.SystemPageSize;

    public static Span<byte> Bytes<T>(ref T value) where T : unmanaged =>
        MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1));

    public static KernelFd OpenKvm(IKernel k)
    {
        long rc = k.Open("/dev/kvm", LinuxConstants.O_RDWR, out var fd);
        Assert.True(rc >= 0, $"open /dev/kvm: {rc}");
        return fd!;
    }

    public static KernelFd CreateVm(IKernel k, KernelFd sys, ulong type = 0)
    {
        long rc = k.Ioctl(sys, KvmIoctls.KVM_CREATE_VM, type);
        Assert.True(rc >= 0, $"KVM_CREATE_VM {type}: {rc}");
        return k.Adopt((int)rc);
    }

    public static long CreateGmemRc(IKernel k, KernelFd vm, ulong size, ulong flags, ulong reserved0 = 0)
    {
        var a = new kvm_create_guest_memfd { size = size, flags = flags };
        a.reserved[0] = reserved0;
        return k.Ioctl(vm, KvmIoctls.KVM_CREATE_GUEST_MEMFD, Bytes(ref a));
    }

    public static KernelFd CreateGmem(IKernel k, KernelFd vm, ulong size, ulong flags)
    {
        long rc = CreateGmemRc(k, vm, size, flags);
        Assert.True(rc >= 0, $"KVM_CREATE_GUEST_MEMFD size={size} flags={flags}: {rc}");
        return k.Adopt((int)rc);
    }

    public static long Region2(IKernel k, KernelFd vm, uint slot, uint flags, ulong gpa, ulong size, ulong uaddr = 0, ulong offset = 0, int gmemFd = 0)
    {
        var r = new kvm_userspace_memory_region2
        {
            slot = slot, flags = flags, guest_phys_addr = gpa, memory_size = size, userspace_addr = uaddr,
            guest_memfd_offset = offset, guest_memfd = (uint)gmemFd,
        };
        return k.Ioctl(vm, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Bytes(ref r));
    }

    public static long Region1(IKernel k, KernelFd vm, uint slot, uint flags, ulong gpa, ulong size, ulong uaddr)
    {
        var r = new kvm_userspace_memory_region { slot = slot, flags = flags, guest_phys_addr = gpa, memory_size = size, userspace_addr = uaddr };
        return k.Ioctl(vm, KvmIoctls.KVM_SET_USER_MEMORY_REGION, Bytes(ref r));
    }

    public static long Attributes2(IKernel k, KernelFd fd, ref kvm_memory_attributes2 a) =>
        k.Ioctl(fd, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2, Bytes(ref a));

    public static long Convert(IKernel k, KernelFd gmem, ulong offset, ulong size, bool toPrivate)
    {
        var a = new kvm_memory_attributes2 { offset = offset, size = size, attributes = toPrivate ? KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE : 0 };
        return Attributes2(k, gmem, ref a);
    }

    public static long VmAttributes(IKernel k, KernelFd vm, ulong gpa, ulong size, ulong attributes, ulong flags = 0)
    {
        var a = new kvm_memory_attributes { address = gpa, size = size, attributes = attributes, flags = flags };
        return k.Ioctl(vm, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES, Bytes(ref a));
    }

    /// <summary>
    /// KVM_MEMORY_ENCRYPT_OP <paramref name="id"/> with <paramref name="data"/> in pinned memory (read back after the
    /// call) and <paramref name="sevFd"/> as kvm_sev_cmd.sev_fd; the rc.
    /// </summary>
    public static long SevCommand<T>(IKernel k, KernelFd vm, uint id, ref T data, int sevFd = 0) where T : unmanaged
    {
        byte[] buffer = GC.AllocateArray<byte>(System.Runtime.CompilerServices.Unsafe.SizeOf<T>(), pinned: true);
        MemoryMarshal.Write(buffer, in data);
        var cmd = new kvm_sev_cmd { id = id, data = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0), sev_fd = (uint)sevFd };
        long rc = k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Bytes(ref cmd));
        data = MemoryMarshal.Read<T>(buffer);
        return rc;
    }

    /// <summary>KVM_SEV_INIT2 with a zeroed kvm_sev_init: what every SEV, SEV-ES and SNP VM needs before its vCPUs.</summary>
    public static long SevInit2(IKernel k, KernelFd vm)
    {
        var init = new kvm_sev_init();
        return SevCommand(k, vm, KvmMemoryEncrypt.KVM_SEV_INIT2, ref init);
    }

    public static long Cap(IKernel k, KernelFd fd, int cap) => k.Ioctl(fd, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)cap);

    /// <summary>True when this machine has a usable /dev/kvm (the differential tests run against it).</summary>
    public static bool HostHasKvm => KvmHost.IsAvailable;
}
