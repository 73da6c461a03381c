// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Fs;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The emulator's eventfd and io bus beyond what the conformance cases show on both kernels: a vCPU signalling from its
/// own thread wakes a blocked reader, bad argument buffers are errnos, and the invariant check sees a collision.
/// </summary>
public class IoEventFdTests
{
    /// <summary>A real-mode VM at GPA 0 running <paramref name="emit"/> from 0; the caller disposes the tuple's items.</summary>
    private static (Vm Vm, AnonymousMemory Memory, MemorySlot Slot, KvmSharp.Vcpu Vcpu) Guest(Kvm kvm, Action<Assembler> emit)
    {
        var asm = new Assembler(16);
        emit(asm);
        var code = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(code), 0);
        var vm = kvm.CreateVm();
        var memory = vm.AllocateMemory(0x1000);
        memory.Write(0, code.ToArray());
        var slot = vm.AddMemorySlot(0, 0, memory);
        var vcpu = vm.CreateVcpu();
        var sregs = vcpu.GetSregs();
        sregs.cs.@base = 0;
        sregs.cs.selector = 0;
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
        return (vm, memory, slot, vcpu);
    }

    [Fact]
    public void A_guest_doorbell_wakes_a_reader_blocked_on_another_thread()
    {
        using var kernel = new EmulatedKernel();
        using var kvm = Kvm.Open(kernel);
        var (vm, memory, slot, vcpu) = Guest(kvm, a =>
        {
            a.@out(0x10, AssemblerRegisters.al);
            a.hlt();
        });
        using (vm)
        using (memory)
        using (slot)
        using (vcpu)
        using (var e = kvm.CreateEventFd())
        using (vm.RegisterIoEventFd(e, IoEventFdSpace.Pio, 0x10, 1))
        {
            ulong got = 0;
            var reader = new Thread(() => got = e.Read()) { IsBackground = true };
            reader.Start();
            Assert.False(reader.Join(50), "the blocking read returned before the guest wrote");
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.RunBounded().Reason);
            Assert.True(reader.Join(5000), "the guest's doorbell did not wake the reader");
            Assert.Equal(1UL, got);
        }
        Assert.Equal(1, kernel.OpenFdCount); // /dev/kvm only
        Assert.Equal(0, kernel.LiveEventFdContexts);
    }

    [Fact]
    public void Short_or_missing_argument_buffers_are_efault_and_change_nothing()
    {
        using var kernel = new EmulatedKernel();
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        foreach (uint request in new[] { KvmIoctls.KVM_IOEVENTFD, KvmIoctls.KVM_IRQFD })
        {
            Assert.Equal(-(long)Errno.EFAULT, kernel.Ioctl(vm.Handle, request, new byte[request == KvmIoctls.KVM_IOEVENTFD ? 63 : 31]));
            Assert.Equal(-(long)Errno.EFAULT, kernel.Ioctl(vm.Handle, request, 0x1000UL));
            Assert.Equal(-(long)Errno.EFAULT, kernel.Ioctl(vm.Handle, request, Span<byte>.Empty));
        }
        Assert.Empty(kernel.InvariantView.Vms.Single().IoBus.IoEventFds);
        Assert.Equal(1, kernel.LiveEventFdContexts);
        Assert.Empty(EmulatorInvariants.Check(kernel));
    }

    [Fact]
    public void The_invariant_check_reports_colliding_registrations_and_freed_contexts()
    {
        using var kernel = new EmulatedKernel();
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        var bus = kernel.InvariantView.Vms.Single().IoBus;
        var ctx = new EventFdCtx(kernel, 0, 0);
        var a = new IoEventFd(KvmBus.Mmio, 0x1000, 4, ctx, 0, Wildcard: true);
        var b = new IoEventFd(KvmBus.Mmio, 0x1000, 0, ctx, 0, Wildcard: true);
        bus.Add(a);
        bus.Add(b);
        var errors = EmulatorInvariants.Check(kernel);
        Assert.Contains(errors, e => e.Contains("collides", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("no length-0 MMIO twin", StringComparison.Ordinal) || e.Contains("collides", StringComparison.Ordinal));
        bus.Remove(b);
        Assert.Empty(EmulatorInvariants.Check(kernel));
        ctx.Put();
        Assert.Contains(EmulatorInvariants.Check(kernel), e => e.Contains("freed eventfd context", StringComparison.Ordinal));
        bus.Remove(a);
        Assert.Empty(EmulatorInvariants.Check(kernel));
    }

    [Fact]
    public void Registrations_of_a_vm_go_when_the_vm_is_destroyed_not_when_its_fd_closes_while_a_guest_memfd_holds_it()
    {
        using var kernel = new EmulatedKernel();
        using var kvm = Kvm.Open(kernel);
        var vm = kvm.CreateVm();
        var gmem = vm.CreateGuestMemfd(0x1000, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        _ = vm.RegisterIoEventFd(e, IoEventFdSpace.Pio, 0x10, 1);
        e.Dispose();
        vm.Dispose();
        // The guest_memfd pins the VM (kvm_get_kvm): its buses, and so the eventfd context, live on.
        Assert.Equal(1, kernel.LiveEventFdContexts);
        gmem.Dispose();
        Assert.Equal(0, kernel.LiveEventFdContexts);
        Assert.Equal(0, kernel.LiveVmCount);
    }
}
