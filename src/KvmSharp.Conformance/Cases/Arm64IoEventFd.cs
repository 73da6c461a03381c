// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_IOEVENTFD and KVM_IRQFD on arm64 (emulator only: this host is x86_64). arch/arm64/kvm/mmio.c io_mem_abort hands
/// a guest store to kvm_io_bus_write(KVM_MMIO_BUS) before it exits, so an ioeventfd takes it; a vGIC is never
/// initialized here, so kvm_irqfd_assign stops at kvm_arch_intc_initialized with EAGAIN.
/// </summary>
public static class Arm64IoEventFd
{
    private static void RequireArm64(CaseContext ctx)
    {
        if (ctx.Target.IsReal) Skip("arm64 case: this host is x86_64, an arm64 VM cannot be created here");
    }

    [ConformanceCase("arch/arm64/kvm/mmio.c io_mem_abort → kvm_io_bus_write: a store an ioeventfd matches signals it and the guest goes on; a store of another width exits", Profile = EmulatedProfile.Arm64)]
    public static void arm64_store_to_an_ioeventfd_does_not_exit(CaseContext ctx)
    {
        RequireArm64(ctx);
        const ulong Mmio = 0x0900_0000;
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            a.MovImm(X(0), Mmio);
            a.MovImm(X(1), 0x55);
            a.Str(W(1), X(0));          // 4-byte store: the ioeventfd's
            a.Strh(W(1), X(0));         // 2-byte store: exits
            Arm64Guest.SystemOff(a);
        });
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var registration = guest.Vm.RegisterIoEventFd(e, IoEventFdSpace.Mmio, Mmio, 4, datamatch: 0x55);
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioIsWrite && exit.MmioData.Length == 2,
            $"expected the 2-byte store's KVM_EXIT_MMIO, got {exit.ToString()}");
        Assert.Equal(1UL, e.Read());
        exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"expected KVM_EXIT_SYSTEM_EVENT, got {exit.ToString()}");
        Assert.Equal(KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN, Arm64RunPage.SystemEvent(guest.Vcpu).Type);
    }

    [ConformanceCase("virt/kvm/eventfd.c kvm_irqfd_assign: kvm_arch_intc_initialized (arm64: vgic_initialized) is false without a vGIC → EAGAIN; arch/arm64/kvm/arm.c lists KVM_CAP_IOEVENTFD but not KVM_CAP_IOEVENTFD_NO_LENGTH (x86 only)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_irqfd_waits_for_a_vgic(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        var ex = Assert.Throws<IrqchipRequiredException>(() => vm.AssignIrqFd(e, 1));
        Assert.Equal(Errno.EAGAIN, ex.Errno);
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_IOEVENTFD));
        Assert.Equal(0, vm.CheckExtension(KvmCaps.KVM_CAP_IOEVENTFD_NO_LENGTH));
    }
}
