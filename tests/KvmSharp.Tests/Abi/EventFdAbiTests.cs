// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Tests.Abi;

/// <summary>
/// struct kvm_ioeventfd / kvm_irqfd, their request numbers and flags against include/uapi/linux/kvm.h and the numbers
/// a C probe printed on this host (sizeof 64 and 32; KVM_IOEVENTFD 0x4040ae79, KVM_IRQFD 0x4020ae76).
/// </summary>
public class EventFdAbiTests
{
    [Theory]
    [InlineData(typeof(kvm_ioeventfd), 64)]
    [InlineData(typeof(kvm_irqfd), 32)]
    public void Struct_has_the_kernel_size(Type type, int size) => Assert.Equal(size, Marshal.SizeOf(type));

    [Theory]
    [InlineData(typeof(kvm_ioeventfd), nameof(kvm_ioeventfd.datamatch), 0)]
    [InlineData(typeof(kvm_ioeventfd), nameof(kvm_ioeventfd.addr), 8)]
    [InlineData(typeof(kvm_ioeventfd), nameof(kvm_ioeventfd.len), 16)]
    [InlineData(typeof(kvm_ioeventfd), nameof(kvm_ioeventfd.fd), 20)]
    [InlineData(typeof(kvm_ioeventfd), nameof(kvm_ioeventfd.flags), 24)]
    [InlineData(typeof(kvm_ioeventfd), nameof(kvm_ioeventfd.pad), 28)]
    [InlineData(typeof(kvm_irqfd), nameof(kvm_irqfd.fd), 0)]
    [InlineData(typeof(kvm_irqfd), nameof(kvm_irqfd.gsi), 4)]
    [InlineData(typeof(kvm_irqfd), nameof(kvm_irqfd.flags), 8)]
    [InlineData(typeof(kvm_irqfd), nameof(kvm_irqfd.resamplefd), 12)]
    [InlineData(typeof(kvm_irqfd), nameof(kvm_irqfd.pad), 16)]
    public void Field_is_at_the_kernel_offset(Type type, string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf(type, field));

    [Fact]
    public void Requests_are_the_kernels()
    {
        Assert.Equal(0x4040ae79u, KvmIoctls.KVM_IOEVENTFD);
        Assert.Equal(0x4020ae76u, KvmIoctls.KVM_IRQFD);
    }

    [Fact]
    public void Flags_and_capabilities_are_the_kernels()
    {
        Assert.Equal((1u, 2u, 4u, 8u, 0x1fu), (KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH, KvmConstants.KVM_IOEVENTFD_FLAG_PIO,
            KvmConstants.KVM_IOEVENTFD_FLAG_DEASSIGN, KvmConstants.KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY, KvmConstants.KVM_IOEVENTFD_VALID_FLAG_MASK));
        Assert.Equal((1u, 2u), (KvmConstants.KVM_IRQFD_FLAG_DEASSIGN, KvmConstants.KVM_IRQFD_FLAG_RESAMPLE));
        Assert.Equal((32, 36, 82, 100, 122), (KvmCaps.KVM_CAP_IRQFD, KvmCaps.KVM_CAP_IOEVENTFD, KvmCaps.KVM_CAP_IRQFD_RESAMPLE,
            KvmCaps.KVM_CAP_IOEVENTFD_NO_LENGTH, KvmCaps.KVM_CAP_IOEVENTFD_ANY_LENGTH));
        Assert.Equal((1, 0x800, 0x80000), (LinuxConstants.EFD_SEMAPHORE, LinuxConstants.EFD_NONBLOCK, LinuxConstants.EFD_CLOEXEC));
    }
}
