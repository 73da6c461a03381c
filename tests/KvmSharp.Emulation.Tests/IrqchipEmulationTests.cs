// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The emulator's irqchip (src/KvmSharp.Emulation/X86/Irqchip) where the conformance cases cannot look: bad user
/// memory is an errno and changes nothing, the irqfd list gives its eventfds back with the VM, the configuration can
/// leave the irqchip out, arm64 has none. The kernel's rules themselves are the conformance cases IrqchipRules and
/// LapicDelivery, run on both kernels.
/// </summary>
public sealed class IrqchipEmulationTests
{
    private static long Ioctl<T>(IKernel k, KernelFd fd, uint request, ref T value) where T : unmanaged =>
        k.Ioctl(fd, request, Raw.Bytes(ref value));

    [Fact]
    public void Short_or_missing_arguments_are_efault_and_change_nothing()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL));
        foreach (uint request in new[] { KvmIoctls.KVM_IRQ_LINE, KvmIoctls.KVM_IRQ_LINE_STATUS, KvmIoctls.KVM_GET_IRQCHIP,
            KvmIoctls.KVM_SET_IRQCHIP, KvmIoctls.KVM_SET_GSI_ROUTING, KvmIoctls.KVM_SIGNAL_MSI })
        {
            Assert.True(Raw.EFAULT == k.Ioctl(vm, request, Span<byte>.Empty), $"{KvmIoctls.NameOf(request)} with NULL");
            Assert.True(Raw.EFAULT == k.Ioctl(vm, request, new byte[3]), $"{KvmIoctls.NameOf(request)} with 3 bytes");
        }
        // KVM_IRQ_LINE_STATUS writes the status back over irq.
        var ev = new kvm_irq_level { irq = 1, level = 1 };
        Assert.Equal(0, Ioctl(k, vm, KvmIoctls.KVM_IRQ_LINE_STATUS, ref ev));
        Assert.Equal(1, ev.status);
        // Routing: the header promises more entries than the buffer holds → EFAULT, the default table stays.
        var head = new kvm_irq_routing { nr = 2 };
        Assert.Equal(Raw.EFAULT, Ioctl(k, vm, KvmIoctls.KVM_SET_GSI_ROUTING, ref head));
        ev = new kvm_irq_level { irq = 17, level = 1 };
        Assert.Equal(0, Ioctl(k, vm, KvmIoctls.KVM_IRQ_LINE_STATUS, ref ev));
        Assert.Equal(-1, ev.status); // IOAPIC pin 17, masked: routed as before
        // A vCPU's APIC: NULL is EFAULT for both directions.
        long rc = k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL);
        Assert.True(rc >= 0);
        using var vcpu = k.Adopt((int)rc);
        Assert.Equal(Raw.EFAULT, k.Ioctl(vcpu, KvmIoctls.KVM_GET_LAPIC, Span<byte>.Empty));
        Assert.Equal(Raw.EFAULT, k.Ioctl(vcpu, KvmIoctls.KVM_SET_LAPIC, new byte[1023]));
        var lapic = new kvm_lapic_state();
        Assert.Equal(0, Ioctl(k, vcpu, KvmIoctls.KVM_GET_LAPIC, ref lapic));
        Assert.Equal(0xffu, BitConverter.ToUInt32(((ReadOnlySpan<byte>)lapic.regs)[0xf0..0xf4]));
        Assert.Empty(EmulatorInvariants.Check(k));
    }

    [Fact]
    public void Irqfds_hold_their_eventfds_until_deassigned_or_the_vm_is_gone()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        var vm = Raw.CreateVm(k, sys);
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL));
        long efd = k.EventFd(0, LinuxConstants.EFD_NONBLOCK, out var e);
        Assert.True(efd >= 0);
        var args = new kvm_irqfd { fd = (uint)e!.Number, gsi = 5 };
        Assert.Equal(0, Ioctl(k, vm, KvmIoctls.KVM_IRQFD, ref args));
        Assert.Empty(EmulatorInvariants.Check(k));
        e.Dispose();
        Assert.Equal(1, k.LiveEventFdContexts); // the irqfd keeps the context after the file closed
        vm.Dispose();
        Assert.Equal(0, k.LiveEventFdContexts);
        Assert.Equal(0, k.LiveVmCount);
    }

    [Fact]
    public void A_configuration_without_the_irqchip_answers_like_a_kernel_without_those_ioctls()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost() with { X86InKernelIrqchip = false });
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)KvmCaps.KVM_CAP_IRQCHIP));
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)KvmCaps.KVM_CAP_SPLIT_IRQCHIP));
        Assert.Equal(Raw.ENOTTY, k.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL));
        var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_SPLIT_IRQCHIP };
        Assert.Equal(Raw.EINVAL, Ioctl(k, vm, KvmIoctls.KVM_ENABLE_CAP, ref cap));
    }

    [Fact]
    public void Arm64_create_irqchip_asks_for_a_gicv2_the_host_cannot_emulate()
    {
        // arm.c KVM_CREATE_IRQCHIP: vgic_present (KVM_CAP_IRQCHIP 1), then kvm_vgic_create(V2) → ENODEV; the GICv3 comes
        // from KVM_CREATE_DEVICE (Arm64VgicRules).
        using var k = new EmulatedKernel(EmulatorConfig.Arm64());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        Assert.Equal(-(long)Errno.ENODEV, k.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL));
        Assert.Equal(1, k.Ioctl(vm, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)KvmCaps.KVM_CAP_IRQCHIP));
    }
}
