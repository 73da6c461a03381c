// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;
using static KvmSharp.Abi.KvmDeviceConstants;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The device-control API (KVM_CAP_DEVICE_CTRL): virt/kvm/kvm_main.c kvm_ioctl_create_device, kvm_device_fops and
/// kvm_device_ioctl_attr, with the one device type an x86 kernel registers, the kvm-vfio bridge (virt/kvm/vfio.c).
/// Probed on Linux 6.18 kvm_pvm in C first (no VFIO module is loaded there, so no descriptor is a VFIO file); none
/// of it differs from upstream.
/// </summary>
public static class DeviceControlRules
{
    private const string KvmMain = "virt/kvm/kvm_main.c";

    private static long Create(Vm vm, uint type, uint flags, out kvm_create_device cd)
    {
        cd = new kvm_create_device { type = type, flags = flags, fd = 0xdead };
        return vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_DEVICE, Raw(ref cd));
    }

    [ConformanceCase(KvmMain + " kvm_vm_ioctl_check_extension_generic: KVM_CAP_DEVICE_CTRL is 1 on /dev/kvm and the VM (since 6.4, \"KVM: move KVM_CAP_DEVICE_CTRL to the generic check\"; x86 answered 0 before)", Requires = KernelRequirement.UserMemory2)]
    public static void device_ctrl_capability(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_DEVICE_CTRL));
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_DEVICE_CTRL));
    }

    [ConformanceCase(KvmMain + " kvm_ioctl_create_device: a type ≥ KVM_DEV_TYPE_MAX or without ops is ENODEV, KVM_CREATE_DEVICE_TEST answers 0 for a registered type and leaves fd alone; on x86 only KVM_DEV_TYPE_VFIO is registered")]
    public static void create_device_test_lists_the_types(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        foreach (uint type in new uint[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x10000, uint.MaxValue })
        {
            long rc = Create(vm, type, KVM_CREATE_DEVICE_TEST, out var cd);
            if (type == KVM_DEV_TYPE_VFIO) Assert.True(rc == 0, $"TEST of type {type}: {rc}");
            else AssertErrno(Errno.ENODEV, rc, $"TEST of type {type}");
            Assert.Equal(0xdeadu, cd.fd);
        }
        Assert.True(vm.SupportsDevice(KvmDeviceType.Vfio));
        Assert.False(vm.SupportsDevice(KvmDeviceType.ArmVgicV3));
        var ex = Assert.Throws<KvmCapabilityException>(() => vm.CreateDevice(KvmDeviceType.ArmVgicV3));
        Assert.Equal(Errno.ENODEV, ex.Errno);
    }

    [ConformanceCase(KvmMain + " kvm_vm_ioctl KVM_CREATE_DEVICE: copy_from_user (EFAULT) before anything; kvm_dev_ioctl does not know the request (EINVAL); flags other than TEST are not checked; vfio.c kvm_vfio_create: one kvm-vfio device per VM (EBUSY), freed for another by closing it (kvm_vfio_release)")]
    public static void one_vfio_device_per_vm_until_closed(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var k = ctx.Kernel;
        AssertErrno(Errno.EFAULT, k.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_DEVICE, 0UL), "KVM_CREATE_DEVICE with a NULL argument");
        var cd = new kvm_create_device { type = KVM_DEV_TYPE_VFIO };
        AssertErrno(Errno.EINVAL, k.Ioctl(kvm.Handle, KvmIoctls.KVM_CREATE_DEVICE, Raw(ref cd)), "KVM_CREATE_DEVICE on /dev/kvm");
        using (var first = vm.CreateDevice(KvmDeviceType.Vfio))
        {
            Assert.Equal(KvmDeviceType.Vfio, first.Type);
            AssertErrno(Errno.EBUSY, Create(vm, KVM_DEV_TYPE_VFIO, 0, out _), "a second kvm-vfio device");
            AssertErrno(Errno.EBUSY, Create(vm, KVM_DEV_TYPE_VFIO, 0xfffffffe, out _), "a second one with unknown flags");
            Assert.True(Create(vm, KVM_DEV_TYPE_VFIO, KVM_CREATE_DEVICE_TEST, out _) == 0, "TEST while one exists");
            using var otherVm = kvm.CreateVm();
            using var other = otherVm.CreateDevice(KvmDeviceType.Vfio);
        }
        using var again = vm.CreateDevice(KvmDeviceType.Vfio);
        Assert.True(again.HasAttribute(KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD));
    }

    [ConformanceCase("virt/kvm/vfio.c kvm_vfio_has_attr / kvm_vfio_set_file and " + KvmMain + " kvm_device_ioctl_attr: HAS FILE ADD/DEL → 0, anything else ENXIO; GET has no accessor → EPERM before the argument is read; ADD/DEL read an int32 (EFAULT), fget (EBADF), ADD of a non-VFIO file EINVAL, DEL of a file never added ENOENT; SET_SPAPR_TCE (powerpc only) and unknown attributes ENXIO")]
    public static void vfio_device_attributes(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var dev = vm.CreateDevice(KvmDeviceType.Vfio);
        var k = ctx.Kernel;
        Assert.True(dev.HasAttribute(KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD));
        Assert.True(dev.HasAttribute(KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_DEL));
        Assert.False(dev.HasAttribute(KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE));
        Assert.False(dev.HasAttribute(KVM_DEV_VFIO_FILE, 0));
        Assert.False(dev.HasAttribute(0, KVM_DEV_VFIO_FILE_ADD));
        Assert.False(dev.HasAttribute(2, KVM_DEV_VFIO_FILE_ADD));

        AssertErrno(Errno.EPERM, k.Ioctl(dev.Handle, KvmIoctls.KVM_GET_DEVICE_ATTR, 0UL), "GET with a NULL argument");
        AssertErrno(Errno.EPERM, () => dev.GetAttribute32(KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD));
        AssertErrno(Errno.EFAULT, k.Ioctl(dev.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, 0UL), "SET with a NULL argument");
        AssertErrno(Errno.EFAULT, k.Ioctl(dev.Handle, KvmIoctls.KVM_HAS_DEVICE_ATTR, 0UL), "HAS with a NULL argument");
        var attr = new kvm_device_attr { group = KVM_DEV_VFIO_FILE, attr = KVM_DEV_VFIO_FILE_ADD, addr = 0 };
        AssertErrno(Errno.EFAULT, k.Ioctl(dev.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "ADD with addr 0");
        attr.attr = KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE;
        AssertErrno(Errno.ENXIO, k.Ioctl(dev.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "SET_SPAPR_TCE with addr 0");
        attr.attr = 9;
        AssertErrno(Errno.ENXIO, k.Ioctl(dev.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "attribute 9 with addr 0");
        attr.group = 5;
        AssertErrno(Errno.ENXIO, k.Ioctl(dev.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, Raw(ref attr)), "group 5");

        AssertErrno(Errno.EINVAL, () => dev.AddVfioFile(kvm.Handle));
        AssertErrno(Errno.ENOENT, () => dev.RemoveVfioFile(kvm.Handle));
        foreach (int fd in new[] { 9999, -1 })
        {
            AssertErrno(Errno.EBADF, () => dev.SetAttribute32(KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD, (uint)fd));
            AssertErrno(Errno.EBADF, () => dev.SetAttribute32(KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_DEL, (uint)fd));
        }
    }

    [ConformanceCase(KvmMain + " kvm_device_fops (unlocked_ioctl, release, mmap = kvm_device_mmap) on an anon inode: read/write EINVAL, lseek/pread ESPIPE, mmap ENODEV (no ops->mmap), ftruncate EINVAL, other ioctls ENOTTY; fstat shows the shared anon inode, size 0; the device holds its VM (kvm_get_kvm) past the VM fd's close")]
    public static void device_fd_file_operations(CaseContext ctx)
    {
        var k = ctx.Kernel;
        using var kvm = ctx.OpenKvm();
        var vm = kvm.CreateVm();
        using var dev = vm.CreateDevice(KvmDeviceType.Vfio);
        var buf = new byte[8];
        AssertErrno(Errno.EINVAL, k.Read(dev.Handle, buf), "read");
        AssertErrno(Errno.EINVAL, k.Write(dev.Handle, buf), "write");
        AssertErrno(Errno.ESPIPE, k.Lseek(dev.Handle, 0, SEEK_SET), "lseek");
        AssertErrno(Errno.ESPIPE, k.Pread(dev.Handle, buf, 0), "pread");
        AssertErrno(Errno.EINVAL, k.Ftruncate(dev.Handle, 0), "ftruncate");
        AssertErrno(Errno.ENOTTY, k.Ioctl(dev.Handle, KvmIoctls.KVM_RUN, 0UL), "KVM_RUN on a device");
        AssertErrno(Errno.ENOTTY, k.Ioctl(dev.Handle, KvmIoctls.KVM_CHECK_EXTENSION, 0UL), "KVM_CHECK_EXTENSION on a device");
        long rc = MappedRegion.Map(k, dev.Handle, (ulong)PageSize, PROT_READ, MAP_SHARED, 0, out var region);
        region?.Dispose();
        AssertErrno(Errno.ENODEV, rc, "mmap");
        Assert.Equal(0, k.Fstat(dev.Handle, out var st));
        Assert.Equal(0, k.Fstat(vm.Handle, out var vmSt));
        Assert.Equal((vmSt.Device, vmSt.Inode, vmSt.Mode), (st.Device, st.Inode, st.Mode));
        Assert.Equal(0, st.Size);
        vm.Dispose();
        Assert.True(dev.HasAttribute(KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_DEL), "the device after its VM fd was closed");
    }
}
