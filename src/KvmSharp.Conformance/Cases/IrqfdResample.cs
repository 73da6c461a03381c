// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Abi.KvmConstants;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Resampling irqfds (KVM_IRQFD with KVM_IRQFD_FLAG_RESAMPLE, virt/kvm/eventfd.c): a signal asserts the GSI's line for
/// the resampler's IRQ source and leaves it high; the guest's EOI of a level-triggered IOAPIC vector
/// (lapic.c apic_set_eoi → kvm_ioapic_send_eoi → ioapic.c kvm_ioapic_update_eoi_one → kvm_notify_acked_irq) runs the
/// GSI's resampler (irqfd_resampler_ack): the line goes low and every resamplefd of the GSI is signalled. Run on both
/// kernels (probed on kvm_pvm first). GSI 20 and 21 route to the IOAPIC only (irq.c default_routing), so the
/// uninitialised PIC never raises an ExtINT.
/// </summary>
public static class IrqfdResample
{
    private const string EventfdC = "virt/kvm/eventfd.c";
    private const byte Vector = 0x40;
    private const uint Gsi = 20, OtherGsi = 21;
    private const byte DonePort = 0x10;
    private const ulong Level = 1UL << 15, Masked = 1UL << 16;

    /// <summary>Maps the xAPIC page (GPA 0xFEE00000) with a 2 MiB uncached page: PDPT[3] → a page directory at SpareGpa.</summary>
    private static void MapApicPage(IdtGuest g)
    {
        var mem = g.Guest.Memory;
        mem.Fill(IdtGuest.SpareGpa, Layout.PageSize, 0);
        mem.Write(Layout.Pdpt + 3 * 8, IdtGuest.SpareGpa | 0x3UL);
        mem.Write(IdtGuest.SpareGpa + ((0xFEE00000UL - 0xC0000000UL) >> 21) * 8, 0xFEE00000UL | 0x80 | 0x10 | 0x3);
    }

    /// <summary>Programs IOAPIC pins: vector, fixed, physical destination APIC 0, plus <paramref name="flags"/>.</summary>
    private static void SetPins(Vm vm, ulong flags, params uint[] pins)
    {
        var io = vm.GetIoapicState().State;
        foreach (uint pin in pins) io.redirtbl[(int)pin] = Vector | flags;
        vm.SetIoapicState(new IoapicState(io));
    }

    private static bool LineHigh(Vm vm, uint pin) => (vm.GetIoapicState().Irr & (1u << (int)pin)) != 0;

    /// <summary>irqfd_inject runs from a work item on Linux: waits (up to 5 s) until <paramref name="done"/> holds.</summary>
    private static void WaitFor(Func<bool> done, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!done())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(5)) throw new Xunit.Sdk.XunitException($"timed out waiting until {what}");
            Thread.Sleep(1);
        }
    }

    private static long Irqfd(Vm vm, int fd, uint gsi, uint flags, int resamplefd)
    {
        var args = new kvm_irqfd { fd = (uint)fd, gsi = gsi, flags = flags, resamplefd = (uint)resamplefd };
        return vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_IRQFD, Raw(ref args));
    }

    private static void Expect(long expected, long rc, string what)
    {
        if (expected < 0) AssertErrno((Errno)(int)-expected, rc, what);
        else Assert.True(rc == expected, $"{what}: expected {expected}, got {rc}");
    }

    private static ulong ReadOr0(EventFd e) => e.TryRead(out ulong n) ? n : 0;

    /// <summary>The guest: report at the done port, write the xAPIC EOI register, loop. Its handler IRETQs.</summary>
    private static IdtGuest Guest(Kvm kvm) => IdtGuest.Create(kvm, a =>
    {
        var loop = a.CreateLabel();
        a.Label(ref loop);
        a.mov(al, 0x77);
        a.@out(DonePort, al);
        a.mov(rax, 0xFEE000B0UL);
        a.mov(__dword_ptr[rax], 0);
        a.jmp(loop);
    }, [new IdtVector(Vector, ResumeSkip: 0)], idtLimit: 256 * 16 - 1, prepareVm: vm => vm.CreateIrqchip());

    private static void RunToDone(IdtGuest g)
    {
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == DonePort, $"expected OUT to 0x{DonePort:X}, got {exit.ToString()}");
    }

    [ConformanceCase(EventfdC + " irqfd_inject (a resampler asserts KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID's level and leaves it), irqfd_resampler_ack + " +
                     "arch/x86/kvm/lapic.c apic_set_eoi → ioapic.c kvm_ioapic_update_eoi_one (kvm_notify_acked_irq, remote IRR cleared): a resampling irqfd " +
                     "raises a level-triggered IOAPIC pin and the guest takes its vector; KVM_IRQ_LINE 0 (another source) leaves the line high; the guest's EOI " +
                     "de-asserts the line and signals every resamplefd of the GSI once; no second interrupt until an irqfd is signalled again; a deassigned " +
                     "irqfd's resamplefd is no longer signalled (kvm_pvm: the IOAPIC sees the EOI when the vector is delivered, HostDeviations.KvmPvmLevelEoiAtDelivery)")]
    public static void resampling_irqfd_is_deasserted_and_resampled_on_eoi(CaseContext ctx)
    {
        bool pvm = HostDeviations.KvmPvmLevelEoiAtDelivery(ctx.Target.IsReal);
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm);
        var vm = g.Guest.Vm;
        MapApicPage(g);
        var l = g.Vcpu.GetLapic();
        l.SoftwareEnabled = true;
        g.Vcpu.SetLapic(l);
        var regs = g.Vcpu.GetRegs();
        regs.rflags |= 0x200;
        g.Vcpu.SetRegs(regs);
        SetPins(vm, Level, Gsi);

        using var e1 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var r1 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var e2 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var r2 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        var reg1 = vm.AssignIrqFd(e1, Gsi, resample: r1);
        using var reg2 = vm.AssignIrqFd(e2, Gsi, resample: r2);
        Assert.False(LineHigh(vm, Gsi), "the line is low before any signal");

        e1.Signal();
        WaitFor(() => g.Vcpu.GetLapic().IsRequested(Vector), $"vector 0x{Vector:X2} is in IRR after the irqfd was signalled");
        Assert.False(e1.TryRead(out ulong left), $"the irqfd left {left} in its eventfd");
        var pin = vm.GetIoapicState().Redirection((int)Gsi);
        Assert.True(LineHigh(vm, Gsi) && pin.RemoteIrr, $"line high with remote IRR after the signal: irr {vm.GetIoapicState().Irr:X}, entry {pin.Bits:X}");
        Assert.True(g.Vcpu.GetLapic().IsLevelTriggered(Vector), "TMR holds the level-triggered vector");
        // __kvm_irq_line_state: the userspace source's 0 leaves the resampler source's 1.
        vm.SetIrqLine(Gsi, false);
        Assert.True(LineHigh(vm, Gsi), "KVM_IRQ_LINE 0 from userspace lowered the resampler's line");

        RunToDone(g); // the delivery; the guest OUTs before its EOI
        Assert.Equal([(ulong)Vector], g.Deliveries.Select(d => d.Vector));
        ulong atDelivery = pvm ? 1UL : 0UL;
        Assert.Equal((atDelivery, atDelivery), (ReadOr0(r1), ReadOr0(r2)));
        pin = vm.GetIoapicState().Redirection((int)Gsi);
        Assert.True(LineHigh(vm, Gsi) != pvm && pin.RemoteIrr != pvm, $"before the guest's EOI: irr {vm.GetIoapicState().Irr:X}, entry {pin.Bits:X}");

        RunToDone(g); // the EOI
        ulong atEoi = pvm ? 0UL : 1UL;
        Assert.Equal((atEoi, atEoi), (ReadOr0(r1), ReadOr0(r2)));
        pin = vm.GetIoapicState().Redirection((int)Gsi);
        Assert.False(LineHigh(vm, Gsi) || pin.RemoteIrr, $"the EOI left the line high or remote IRR: irr {vm.GetIoapicState().Irr:X}, entry {pin.Bits:X}");
        Assert.Single(g.Deliveries);

        RunToDone(g); // another EOI, nothing in service
        Assert.Single(g.Deliveries);
        Assert.Equal((0UL, 0UL), (ReadOr0(r1), ReadOr0(r2)));

        e2.Signal();
        WaitFor(() => g.Vcpu.GetLapic().IsRequested(Vector), "the second irqfd's signal reached IRR");
        RunToDone(g);
        Assert.Equal(2, g.Deliveries.Count);
        Assert.Equal((1UL, 1UL), (ReadOr0(r1), ReadOr0(r2)));

        reg1.Dispose();
        e2.Signal();
        WaitFor(() => g.Vcpu.GetLapic().IsRequested(Vector), "a signal after the other irqfd's deassignment reached IRR");
        RunToDone(g);
        Assert.Equal(3, g.Deliveries.Count);
        Assert.Equal((0UL, 1UL), (ReadOr0(r1), ReadOr0(r2)));

        // KVM_IRQ_LINE holds the line high too: the ack lowers only the resampler's source, so kvm_ioapic_update_eoi_one
        // delivers the vector again (upstream at once after the guest's EOI, in the same run; kvm_pvm at its next run).
        vm.SetIrqLine(Gsi, true);
        RunToDone(g);
        Assert.Equal(pvm ? 4 : 5, g.Deliveries.Count);
        Assert.Equal(1UL, ReadOr0(r2));
        Assert.True(LineHigh(vm, Gsi) && vm.GetIoapicState().Redirection((int)Gsi).RemoteIrr, "the re-delivered line awaits its EOI");
        vm.SetIrqLine(Gsi, false);
        RunToDone(g);
        Assert.Equal(5, g.Deliveries.Count);
        Assert.Equal(1UL, ReadOr0(r2));
        Assert.False(LineHigh(vm, Gsi) || vm.GetIoapicState().Redirection((int)Gsi).RemoteIrr, "the last EOI left the line high or remote IRR");
    }

    [ConformanceCase(EventfdC + " kvm_irqfd (flags), kvm_irqfd_assign (x86 kvm_arch_irqfd_allowed: RESAMPLE needs irqchip_full; the fd before the " +
                     "resamplefd: EBADF, not an eventfd EINVAL), kvm_irqfd_deassign (the resamplefd is not looked at) and irqfd_resampler_shutdown (the " +
                     "GSI's line goes low when its last resampling irqfd goes, not before); a count present at assignment asserts the line; " +
                     "KVM_CAP_IRQFD_RESAMPLE is 1")]
    public static void resampling_irqfd_arguments_and_shutdown(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_IRQFD_RESAMPLE));
        using var e1 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var e2 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var r = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        int kvmFd = kvm.Handle.Number;
        const uint De = KVM_IRQFD_FLAG_DEASSIGN, Re = KVM_IRQFD_FLAG_RESAMPLE;
        using (var none = kvm.CreateVm())
        {
            Assert.Equal(1, none.CheckExtension(KvmCaps.KVM_CAP_IRQFD_RESAMPLE));
            Expect(-(long)Errno.EINVAL, Irqfd(none, e1.Handle.Number, Gsi, Re, r.Handle.Number), "RESAMPLE without an irqchip");
            Expect(-(long)Errno.EINVAL, Irqfd(none, 9999, Gsi, Re, 9999), "RESAMPLE without an irqchip, closed fds");
            Expect(-(long)Errno.EINVAL, Irqfd(none, e1.Handle.Number, Gsi, Re | 4, r.Handle.Number), "an unknown flag");
            Expect(0, Irqfd(none, e1.Handle.Number, Gsi, De | Re, 9999), "DEASSIGN | RESAMPLE without an irqchip (nothing to remove)");
        }

        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var vcpu = vm.CreateVcpu(0);
        foreach (var (fd, resample, expected, what) in new (int, int, long, string)[]
        {
            (9999, r.Handle.Number, -(long)Errno.EBADF, "a closed fd"),
            (9999, kvmFd, -(long)Errno.EBADF, "a closed fd with a resamplefd that is not an eventfd"),
            (kvmFd, 9999, -(long)Errno.EINVAL, "an fd that is not an eventfd with a closed resamplefd"),
            (e1.Handle.Number, 9999, -(long)Errno.EBADF, "a closed resamplefd"),
            (e1.Handle.Number, kvmFd, -(long)Errno.EINVAL, "a resamplefd that is not an eventfd"),
        })
        {
            Expect(expected, Irqfd(vm, fd, Gsi, Re, resample), what);
        }

        // Masked level-triggered pins: the lines' levels show in the IOAPIC's irr, nothing is delivered.
        SetPins(vm, Level | Masked, Gsi, OtherGsi);
        Expect(0, Irqfd(vm, e1.Handle.Number, Gsi, Re, r.Handle.Number), "assign e1 resampling on GSI 20");
        Expect(0, Irqfd(vm, e2.Handle.Number, Gsi, Re, r.Handle.Number), "assign e2 resampling on GSI 20, the same resamplefd");
        Expect(-(long)Errno.EBUSY, Irqfd(vm, e1.Handle.Number, OtherGsi, Re, r.Handle.Number), "e1 again on GSI 21");
        Assert.False(LineHigh(vm, Gsi), "nothing asserted yet (the EBUSY assignment's resampler shutdown included)");
        e1.Signal();
        WaitFor(() => LineHigh(vm, Gsi), "GSI 20's line is high after e1's signal");
        // irqfd_resampler_shutdown lowers the line only when the GSI's last resampling irqfd goes.
        Expect(0, Irqfd(vm, e1.Handle.Number, Gsi, De | Re, 9999), "deassign e1 (DEASSIGN | RESAMPLE, the resamplefd ignored)");
        Assert.True(LineHigh(vm, Gsi), "the line went low while e2 still resamples GSI 20");
        e1.Signal();
        Assert.True(e1.TryRead(out ulong kept) && kept == 1, "the deassigned e1 keeps its count");
        Expect(0, Irqfd(vm, e2.Handle.Number, OtherGsi, De, 0), "deassign e2 from GSI 21 (no such irqfd)");
        Assert.True(LineHigh(vm, Gsi), "a deassign that matched nothing lowered the line");
        Expect(0, Irqfd(vm, e2.Handle.Number, Gsi, De, 0), "deassign e2 without the RESAMPLE flag");
        Assert.False(LineHigh(vm, Gsi), "GSI 20's line stays high after its last resampling irqfd went");
        Assert.Equal(0UL, ReadOr0(r));

        // A count already in the eventfd at assignment is injected (and left there): the line goes high.
        e2.Add(2);
        Expect(0, Irqfd(vm, e2.Handle.Number, OtherGsi, Re, r.Handle.Number), "assign e2 with a count, resampling on GSI 21");
        WaitFor(() => LineHigh(vm, OtherGsi), "GSI 21's line is high after an assignment with a count");
        Assert.True(e2.TryRead(out ulong two) && two == 2, "the count present at assignment stays");
        Expect(0, Irqfd(vm, e2.Handle.Number, OtherGsi, De, 0), "deassign e2 from GSI 21");
        Assert.False(LineHigh(vm, OtherGsi), "GSI 21's line stays high after its resampling irqfd went");

        // Every resampler asserts for the one KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID and the IOAPIC keeps one level per source
        // and pin: with GSIs 30 and 31 both on pin 20, GSI 31's resampler going lowers what GSI 30's irqfd raised.
        vm.SetGsiRouting([GsiRoute.ToIrqchip(30, IrqchipId.Ioapic, Gsi), GsiRoute.ToIrqchip(31, IrqchipId.Ioapic, Gsi)]);
        Expect(0, Irqfd(vm, e1.Handle.Number, 30, Re, r.Handle.Number), "assign e1 resampling on GSI 30");
        Expect(0, Irqfd(vm, e2.Handle.Number, 31, Re, r.Handle.Number), "assign e2 resampling on GSI 31");
        e1.Signal();
        WaitFor(() => LineHigh(vm, Gsi), "pin 20 is high after GSI 30's signal");
        Expect(0, Irqfd(vm, e2.Handle.Number, 31, De, 0), "deassign e2 from GSI 31");
        Assert.False(LineHigh(vm, Gsi), "GSI 31's resampler shutdown left GSI 30's assertion on the shared pin");
        Expect(0, Irqfd(vm, e1.Handle.Number, 30, De, 0), "deassign e1 from GSI 30");
    }
}
