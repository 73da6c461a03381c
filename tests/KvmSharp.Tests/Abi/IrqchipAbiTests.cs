// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Tests.Abi;

/// <summary>
/// The in-kernel irqchip structs and requests against include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h,
/// with the numbers a C probe (gcc, the vendored headers) printed on this host.
/// </summary>
public class IrqchipAbiTests
{
    [Theory]
    [InlineData(typeof(kvm_irqchip), 520)]
    [InlineData(typeof(kvm_pic_state), 16)]
    [InlineData(typeof(kvm_ioapic_state), 216)]
    [InlineData(typeof(kvm_irq_level), 8)]
    [InlineData(typeof(kvm_msi), 32)]
    [InlineData(typeof(kvm_lapic_state), 1024)]
    [InlineData(typeof(kvm_irq_routing), 8)]
    [InlineData(typeof(kvm_irq_routing_entry), 48)]
    [InlineData(typeof(kvm_irq_routing_irqchip), 8)]
    [InlineData(typeof(kvm_irq_routing_msi), 16)]
    public void Struct_has_the_kernel_size(Type type, int size) => Assert.Equal(size, Marshal.SizeOf(type));

    [Theory]
    [InlineData(typeof(kvm_irqchip), nameof(kvm_irqchip.chip_id), 0)]
    [InlineData(typeof(kvm_irqchip), nameof(kvm_irqchip.pad), 4)]
    [InlineData(typeof(kvm_irqchip), nameof(kvm_irqchip.chip), 8)]
    [InlineData(typeof(kvm_pic_state), nameof(kvm_pic_state.imr), 2)]
    [InlineData(typeof(kvm_pic_state), nameof(kvm_pic_state.elcr_mask), 15)]
    [InlineData(typeof(kvm_ioapic_state), nameof(kvm_ioapic_state.ioregsel), 8)]
    [InlineData(typeof(kvm_ioapic_state), nameof(kvm_ioapic_state.irr), 16)]
    [InlineData(typeof(kvm_ioapic_state), nameof(kvm_ioapic_state.redirtbl), 24)]
    [InlineData(typeof(kvm_irq_level), nameof(kvm_irq_level.level), 4)]
    [InlineData(typeof(kvm_msi), nameof(kvm_msi.flags), 12)]
    [InlineData(typeof(kvm_msi), nameof(kvm_msi.devid), 16)]
    [InlineData(typeof(kvm_msi), nameof(kvm_msi.pad), 20)]
    [InlineData(typeof(kvm_irq_routing_entry), nameof(kvm_irq_routing_entry.flags), 8)]
    [InlineData(typeof(kvm_irq_routing_entry), nameof(kvm_irq_routing_entry.u), 16)]
    [InlineData(typeof(kvm_irq_routing_msi), nameof(kvm_irq_routing_msi.devid), 12)]
    public void Field_is_at_the_kernel_offset(Type type, string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf(type, field));

    [Fact]
    public void Requests_are_the_kernels()
    {
        Assert.Equal(0xae60u, KvmIoctls.KVM_CREATE_IRQCHIP);
        Assert.Equal(0x4008ae61u, KvmIoctls.KVM_IRQ_LINE);
        Assert.Equal(0xc008ae67u, KvmIoctls.KVM_IRQ_LINE_STATUS);
        Assert.Equal(0xc208ae62u, KvmIoctls.KVM_GET_IRQCHIP);
        Assert.Equal(0x8208ae63u, KvmIoctls.KVM_SET_IRQCHIP);
        Assert.Equal(0x4008ae6au, KvmIoctls.KVM_SET_GSI_ROUTING);
        Assert.Equal(0x4020aea5u, KvmIoctls.KVM_SIGNAL_MSI);
        Assert.Equal(0x8400ae8eu, KvmIoctls.KVM_GET_LAPIC);
        Assert.Equal(0x4400ae8fu, KvmIoctls.KVM_SET_LAPIC);
    }

    [Fact]
    public void Constants_and_capabilities_are_the_kernels()
    {
        Assert.Equal((0u, 1u, 2u, 3, 24, 0x400), (KvmConstants.KVM_IRQCHIP_PIC_MASTER, KvmConstants.KVM_IRQCHIP_PIC_SLAVE,
            KvmConstants.KVM_IRQCHIP_IOAPIC, KvmConstants.KVM_NR_IRQCHIPS, KvmConstants.KVM_IOAPIC_NUM_PINS, KvmConstants.KVM_APIC_REG_SIZE));
        Assert.Equal((1u, 2u, 3u, 4u, 5u, 1u), (KvmConstants.KVM_IRQ_ROUTING_IRQCHIP, KvmConstants.KVM_IRQ_ROUTING_MSI,
            KvmConstants.KVM_IRQ_ROUTING_S390_ADAPTER, KvmConstants.KVM_IRQ_ROUTING_HV_SINT, KvmConstants.KVM_IRQ_ROUTING_XEN_EVTCHN,
            KvmConstants.KVM_MSI_VALID_DEVID));
        Assert.Equal((0, 25, 26, 77, 121, 131), (KvmCaps.KVM_CAP_IRQCHIP, KvmCaps.KVM_CAP_IRQ_ROUTING, KvmCaps.KVM_CAP_IRQ_INJECT_STATUS,
            KvmCaps.KVM_CAP_SIGNAL_MSI, KvmCaps.KVM_CAP_SPLIT_IRQCHIP, KvmCaps.KVM_CAP_MSI_DEVID));
    }

    [Fact]
    public void Irq_level_status_is_the_signed_view_of_irq() =>
        Assert.Equal(-1, new kvm_irq_level { irq = uint.MaxValue }.status);
}
