// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Conformance;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// Vcpu.DeviceAttributes.cs and Kvm.DeviceAttributes.cs (KVM_HAS/GET/SET_DEVICE_ATTR) on every kernel: what the SDK
/// sends, what it returns, and the typed errors where the kernel has no such attribute. The kernel rules themselves are
/// conformance cases (KvmSharp.Conformance/Cases/DeviceAttributeRules.cs).
/// </summary>
public class DeviceAttributeTests : KernelTest
{
    /// <summary>Keeps the kvm_device_attr of every device-attribute ioctl that passes through, with its request.</summary>
    private sealed class Recorder(IKernel inner) : DelegatingKernel(inner)
    {
        public List<(uint Request, byte[] Attr)> Calls { get; } = [];

        public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
        {
            if (request == KvmIoctls.KVM_HAS_DEVICE_ATTR || request == KvmIoctls.KVM_GET_DEVICE_ATTR || request == KvmIoctls.KVM_SET_DEVICE_ATTR)
                Calls.Add((request, arg.ToArray()));
            return base.Ioctl(fd, request, arg);
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void TscOffset_round_trips_through_the_tsc_control_attribute(string kernel)
    {
        using var inner = Open(kernel);
        var recorder = new Recorder(inner.Kernel);
        using var kvm = Kvm.Open(recorder);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.True(vcpu.SupportsTscOffset);
        ulong created = vcpu.GetTscOffset();
        vcpu.SetTscOffset(created + 0x1234_5678_0000);
        ulong moved = vcpu.GetTscOffset();
        if (HostDeviations.KvmPvmTscOffsetFixed(realKernel: kernel == KernelTarget.Linux.Name)) Assert.Equal((0UL, 0UL), (created, moved));
        else Assert.Equal(created + 0x1234_5678_0000, moved);

        // HAS, GET, SET, GET: each a 24-byte kvm_device_attr of group KVM_VCPU_TSC_CTRL, attr KVM_VCPU_TSC_OFFSET, flags 0,
        // and (GET/SET) a value pointer.
        Assert.Equal([KvmIoctls.KVM_HAS_DEVICE_ATTR, KvmIoctls.KVM_GET_DEVICE_ATTR, KvmIoctls.KVM_SET_DEVICE_ATTR, KvmIoctls.KVM_GET_DEVICE_ATTR],
            recorder.Calls.Select(c => c.Request));
        Assert.All(recorder.Calls, c =>
        {
            Assert.Equal(24, c.Attr.Length);
            Assert.Equal((0u, 0u, 0UL), (BinaryPrimitives.ReadUInt32LittleEndian(c.Attr), BinaryPrimitives.ReadUInt32LittleEndian(c.Attr.AsSpan(4)),
                BinaryPrimitives.ReadUInt64LittleEndian(c.Attr.AsSpan(8))));
            if (c.Request != KvmIoctls.KVM_HAS_DEVICE_ATTR) Assert.NotEqual(0UL, BinaryPrimitives.ReadUInt64LittleEndian(c.Attr.AsSpan(16)));
        });
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Supported_xsave_features_include_x87_sse_and_avx_and_other_attributes_are_absent(string kernel)
    {
        using var kvm = Open(kernel);
        Assert.Equal(0x7UL, kvm.GetSupportedXsaveFeatures() & 0x7);
        Assert.False(kvm.HasDeviceAttribute(KvmConstants.KVM_X86_GRP_SYSTEM, 1));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.False(vcpu.HasDeviceAttribute(KvmConstants.KVM_VCPU_TSC_CTRL, 7));
        Assert.False(vcpu.HasDeviceAttribute(9, KvmConstants.KVM_VCPU_TSC_OFFSET));
    }

    [Fact]
    public void On_arm64_the_x86_attributes_are_a_capability_error_that_names_the_request()
    {
        // arch/arm64/kvm/arm.c kvm_arch_dev_ioctl: -EINVAL, and KVM_CAP_GET_TSC_KHZ is x86's: no TSC offset on arm64.
        // There, vCPU attribute group 0 is KVM_ARM_VCPU_PMU_V3_CTRL and attribute 0 its IRQ (pmu-emul.c): GET without an
        // in-kernel irqchip is EINVAL, SET on a vCPU without the PMU feature ENODEV.
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        var system = Assert.Throws<KvmCapabilityException>(() => kvm.GetSupportedXsaveFeatures());
        Assert.Equal((Errno.EINVAL, "KVM_GET_DEVICE_ATTR"), (system.Errno, system.Operation));
        Assert.Contains("KVM_X86_XCOMP_GUEST_SUPP", system.Message, StringComparison.Ordinal);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        Assert.False(vcpu.SupportsTscOffset);
        var get = Assert.Throws<KvmCapabilityException>(() => vcpu.GetTscOffset());
        Assert.Equal((Errno.EINVAL, nameof(KvmCaps.KVM_CAP_VCPU_ATTRIBUTES)), (get.Errno, get.Capability));
        var set = Assert.Throws<KvmException>(() => vcpu.SetTscOffset(0x1000));
        Assert.Equal(Errno.ENODEV, set.Errno);
        Assert.Contains("KVM_VCPU_TSC_OFFSET=0x1000", set.Message, StringComparison.Ordinal);
    }
}
