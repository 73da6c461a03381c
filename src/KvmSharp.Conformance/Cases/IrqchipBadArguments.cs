// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The in-kernel irqchip's requests with an argument the kernel cannot read or write (virt/kvm/kvm_main.c kvm_vm_ioctl,
/// arch/x86/kvm/x86.c kvm_arch_vm_ioctl and kvm_arch_vcpu_ioctl): EFAULT, and the chip keeps its state. Ported from
/// tests/KvmSharp.Emulation.Tests/IrqchipEmulationTests.cs (Short_or_missing_arguments_are_efault_and_change_nothing),
/// which checked the emulator only; the short-buffer half of that test has no real-kernel counterpart (the kernel reads
/// the struct's full size from the pointer), so an unmapped page stands in for it.
/// </summary>
public static class IrqchipBadArguments
{
    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl + arch/x86/kvm/x86.c kvm_arch_vm_ioctl with KVM_CREATE_IRQCHIP and KVM_CREATE_PIT2: KVM_IRQ_LINE(_STATUS), " +
                     "KVM_GET/SET_IRQCHIP, KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI, KVM_GET/SET_PIT(2) at an unmapped address are EFAULT; KVM_SET_GSI_ROUTING whose " +
                     "entries run into an unmapped page is EFAULT (memdup_array_user) and the default routing stays")]
    public static void vm_irqchip_requests_at_a_bad_address_change_nothing(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        vm.CreatePit();
        foreach (uint request in new[]
                 {
                     KvmIoctls.KVM_IRQ_LINE, KvmIoctls.KVM_IRQ_LINE_STATUS, KvmIoctls.KVM_GET_IRQCHIP, KvmIoctls.KVM_SET_IRQCHIP,
                     KvmIoctls.KVM_SET_GSI_ROUTING, KvmIoctls.KVM_SIGNAL_MSI, KvmIoctls.KVM_GET_PIT, KvmIoctls.KVM_SET_PIT,
                     KvmIoctls.KVM_GET_PIT2, KvmIoctls.KVM_SET_PIT2,
                 })
        {
            CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, request, 8UL), $"{KvmIoctls.NameOf(request)} at address 8");
        }

        // A routing header (nr = 2) in the last 8 bytes of a page whose successor is unmapped: the entries cannot be read.
        ulong ps = (ulong)CaseContext.PageSize;
        long mapped = ctx.Kernel.Mmap(0, 2 * ps, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE,
            LinuxConstants.MAP_PRIVATE | LinuxConstants.MAP_ANONYMOUS, null, 0, out nint area);
        Assert.True(mapped >= 0, $"mmap: {mapped}");
        try
        {
            Assert.Equal(0, ctx.Kernel.Munmap(area + (nint)ps, ps));
            ulong header = (ulong)area + ps - 8;
            // kvm_irq_routing { nr = 2, flags = 0 } as one little-endian quadword.
            System.Runtime.InteropServices.Marshal.WriteInt64((nint)header, 2);
            CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_GSI_ROUTING, header), "entries in an unmapped page");
        }
        finally
        {
            ctx.Kernel.Munmap(area, ps);
        }
        // GSI 1 still reaches the PIC and the IOAPIC through the default routing (an edge raise: PIC 1 + masked IOAPIC pin).
        Assert.Equal((0L, 1), IrqLineStatus(vm, 1, 1));
        Assert.Equal(0L, IrqLineStatus(vm, 1, 0).Rc);
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl with an in-kernel local APIC: KVM_GET_LAPIC (copy_to_user) and KVM_SET_LAPIC (memdup_user) at " +
                     "an unmapped address are EFAULT and the APIC page is unchanged")]
    public static void lapic_requests_at_a_bad_address_change_nothing(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var vcpu = vm.CreateVcpu();
        var before = new kvm_lapic_state();
        Assert.Equal(0, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_LAPIC, CaseContext.Raw(ref before)));
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_LAPIC, 8UL), "KVM_GET_LAPIC at address 8");
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_LAPIC, 8UL), "KVM_SET_LAPIC at address 8");
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_LAPIC, 0UL), "KVM_GET_LAPIC at NULL");
        var after = new kvm_lapic_state();
        Assert.Equal(0, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_LAPIC, CaseContext.Raw(ref after)));
        Assert.True(CaseContext.Raw(ref before).SequenceEqual(CaseContext.Raw(ref after)), "a refused KVM_SET_LAPIC changed the APIC page");
        Assert.Equal(0xffu, BitConverter.ToUInt32(CaseContext.Raw(ref after).Slice(0xf0, 4)));
    }

    private static (long Rc, int Status) IrqLineStatus(Vm vm, uint gsi, uint level)
    {
        var ev = new kvm_irq_level { irq = gsi, level = level };
        long rc = vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_IRQ_LINE_STATUS, CaseContext.Raw(ref ev));
        return (rc, ev.status);
    }
}
