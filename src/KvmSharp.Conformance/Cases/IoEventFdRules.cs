// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Abi.KvmConstants;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_IOEVENTFD and KVM_IRQFD (virt/kvm/eventfd.c) on a VM without an in-kernel irqchip: kvm_assign_ioeventfd's
/// checks in order, ioeventfd_check_collision, kvm_deassign_ioeventfd's matching, and the io bus on the x86 write paths
/// (emulator_pio_in_out / vcpu_mmio_write → kvm_io_bus_write → ioeventfd_in_range): a matching write signals the eventfd
/// and does not exit; reads and non-matching writes exit. Every rule was probed on Linux 6.18 kvm_pvm in C first; none
/// differs from upstream.
/// </summary>
public static class IoEventFdRules
{
    private const string Eventfd = "virt/kvm/eventfd.c";

    private const uint Pio = KVM_IOEVENTFD_FLAG_PIO, Datamatch = KVM_IOEVENTFD_FLAG_DATAMATCH, Deassign = KVM_IOEVENTFD_FLAG_DEASSIGN;

    /// <summary>KVM_IOEVENTFD with these raw values; the kernel's answer.</summary>
    private static long Io(Vm vm, ulong addr, uint len, int fd, uint flags, ulong datamatch = 0)
    {
        var args = new kvm_ioeventfd { addr = addr, len = len, fd = fd, flags = flags, datamatch = datamatch };
        return vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_IOEVENTFD, Raw(ref args));
    }

    private static long IrqFd(Vm vm, int fd, uint gsi, uint flags, int resamplefd = 0)
    {
        var args = new kvm_irqfd { fd = (uint)fd, gsi = gsi, flags = flags, resamplefd = (uint)resamplefd };
        return vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_IRQFD, Raw(ref args));
    }

    private static void Expect(long expected, long rc, string what)
    {
        if (expected < 0) AssertErrno((Errno)(-expected), rc, what);
        else Assert.True(rc == expected, $"{what}: expected {expected}, got {(rc < 0 ? ErrnoInfo.NameOf((int)-rc) : rc)}");
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_vm_ioctl_check_extension + virt/kvm/kvm_main.c kvm_vm_ioctl_check_extension_generic: KVM_CAP_IOEVENTFD, _NO_LENGTH, _ANY_LENGTH and KVM_CAP_IRQFD are 1 on /dev/kvm and the VM")]
    public static void ioeventfd_and_irqfd_capabilities(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        foreach (int cap in new[] { KvmCaps.KVM_CAP_IOEVENTFD, KvmCaps.KVM_CAP_IOEVENTFD_NO_LENGTH, KvmCaps.KVM_CAP_IOEVENTFD_ANY_LENGTH, KvmCaps.KVM_CAP_IRQFD })
        {
            Assert.True(kvm.CheckExtension(cap) == 1, $"{KvmCaps.NameOf(cap)} on /dev/kvm");
            Assert.True(vm.CheckExtension(cap) == 1, $"{KvmCaps.NameOf(cap)} on the VM");
        }
    }

    [ConformanceCase(Eventfd + " kvm_assign_ioeventfd: length 0/1/2/4/8, then addr + len must not wrap, then unknown flags (mask 0x1f), then length 0 with DATAMATCH — all EINVAL before the fd is looked up (EBADF; not an eventfd: EINVAL); PIO with length 0, the meaningless bit 4 and the virtio-ccw bus are accepted")]
    public static void assign_checks_in_kernel_order(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        int fd = e.Handle.Number;
        foreach (var (addr, len, f, flags, expected, what) in new (ulong, uint, int, uint, long, string)[]
        {
            (0x1000, 3, fd, 0, -(long)Errno.EINVAL, "length 3"),
            (0x1000, 16, fd, 0, -(long)Errno.EINVAL, "length 16"),
            (ulong.MaxValue - 1, 4, fd, 0, -(long)Errno.EINVAL, "addr + 4 wraps"),
            (ulong.MaxValue - 3, 4, fd, 0, -(long)Errno.EINVAL, "addr + 4 wraps to exactly 0"),
            (0x2000, 4, fd, 0x20, -(long)Errno.EINVAL, "flag bit 5"),
            (0x4000, 0, fd, Datamatch, -(long)Errno.EINVAL, "length 0 with DATAMATCH"),
            (0x5000, 3, 9999, 0, -(long)Errno.EINVAL, "length 3 and a closed fd: the length first"),
            (0x5000, 4, 9999, 0x20, -(long)Errno.EINVAL, "flag bit 5 and a closed fd: the flags first"),
            (0x5000, 4, 9999, 0, -(long)Errno.EBADF, "a closed fd"),
            (0x5000, 4, -1, 0, -(long)Errno.EBADF, "fd -1"),
            (0x5000, 4, kvm.Handle.Number, 0, -(long)Errno.EINVAL, "/dev/kvm's fd (not an eventfd)"),
            (ulong.MaxValue, 0, fd, 0, 0, "the last address with length 0"),
            (0x2000, 4, fd, 0x10, 0, "bit 4 (kvm_ioeventfd_flag_nr_fast_mmio, no flag of its own)"),
            (0x3000, 4, fd, KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY, 0, "the virtio-ccw notify bus"),
            (0x40, 0, fd, Pio, 0, "PIO with length 0 (KVM_CAP_IOEVENTFD_ANY_LENGTH)"),
            (0x12345, 1, fd, Pio, 0, "PIO beyond port 0xffff"),
        })
        {
            Expect(expected, Io(vm, addr, len, f, flags), what);
        }
    }

    [ConformanceCase(Eventfd + " ioeventfd_check_collision: same bus and address, and length 0 on either side, or the same length with a wildcard on either side or the same datamatch → EEXIST, whatever the eventfd; another length or bus is free")]
    public static void collisions_are_eexist(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var e2 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        int a = e.Handle.Number, b = e2.Handle.Number;
        foreach (var (addr, len, f, flags, dm, expected, what) in new (ulong, uint, int, uint, ulong, long, string)[]
        {
            (0x5000, 4, a, 0, 0, 0, "MMIO 0x5000 len 4"),
            (0x5000, 4, b, 0, 0, -(long)Errno.EEXIST, "the same with another eventfd"),
            (0x5000, 2, b, 0, 0, 0, "the same address with length 2"),
            (0x5000, 0, b, 0, 0, -(long)Errno.EEXIST, "the same address with length 0"),
            (0x5000, 4, b, Pio, 0, 0, "the same number on the PIO bus"),
            (0x6000, 4, a, Datamatch, 1, 0, "datamatch 1"),
            (0x6000, 4, a, Datamatch, 2, 0, "datamatch 2 beside it"),
            (0x6000, 4, b, Datamatch, 1, -(long)Errno.EEXIST, "datamatch 1 again"),
            (0x6000, 4, b, 0, 0, -(long)Errno.EEXIST, "a wildcard over datamatches"),
            (0x6000, 8, a, Datamatch, 0x12_3456_7890, 0, "length 8 with a wide datamatch"),
            (0x7000, 0, a, 0, 0, 0, "length 0"),
            (0x7000, 1, b, Datamatch, 5, -(long)Errno.EEXIST, "any length at a length-0 address"),
        })
        {
            Expect(expected, Io(vm, addr, len, f, flags, dm), what);
        }
    }

    [ConformanceCase(Eventfd + " kvm_deassign_ioeventfd: the fd is looked up first (EBADF / EINVAL), then the first registration with the same bus, eventfd, address, length and wildcard (and datamatch) goes; none → ENOENT; neither the length nor the flags are checked; length 0 on MMIO takes its fast-MMIO twin along")]
    public static void deassign_matches_exactly(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var e2 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        int a = e.Handle.Number, b = e2.Handle.Number;
        Expect(0, Io(vm, 0x5000, 4, a, 0), "assign MMIO 0x5000 len 4");
        Expect(0, Io(vm, 0x6000, 4, a, Datamatch, 7), "assign 0x6000 datamatch 7");
        foreach (var (addr, len, f, flags, dm, expected, what) in new (ulong, uint, int, uint, ulong, long, string)[]
        {
            (0x7000, 4, a, Deassign, 0, -(long)Errno.ENOENT, "nothing there"),
            (0x5000, 4, b, Deassign, 0, -(long)Errno.ENOENT, "another eventfd"),
            (0x5000, 2, a, Deassign, 0, -(long)Errno.ENOENT, "another length"),
            (0x5000, 3, a, Deassign, 0, -(long)Errno.ENOENT, "length 3 (not refused: no check)"),
            (0x5000, 4, a, Deassign | Pio, 0, -(long)Errno.ENOENT, "the PIO bus"),
            (0x5000, 4, a, Deassign | Datamatch, 0, -(long)Errno.ENOENT, "a datamatch for a wildcard"),
            (0x6000, 4, a, Deassign | Datamatch, 8, -(long)Errno.ENOENT, "another datamatch"),
            (0x6000, 4, a, Deassign, 0, -(long)Errno.ENOENT, "a wildcard for a datamatch"),
            (0x5000, 4, 9999, Deassign, 0, -(long)Errno.EBADF, "a closed fd"),
            (0x5000, 4, kvm.Handle.Number, Deassign, 0, -(long)Errno.EINVAL, "/dev/kvm's fd"),
            (0x5000, 4, a, Deassign | 0x20, 0, 0, "with an unknown flag bit: removed"),
            (0x5000, 4, a, Deassign, 0, -(long)Errno.ENOENT, "once more"),
            (0x6000, 4, a, Deassign | Datamatch, 7, 0, "datamatch 7"),
        })
        {
            Expect(expected, Io(vm, addr, len, f, flags, dm), what);
        }
        Expect(0, Io(vm, 0x8000, 0, a, 0), "assign MMIO 0x8000 len 0");
        Expect(0, Io(vm, 0x8000, 0, a, Deassign), "deassign it");
        Expect(0, Io(vm, 0x8000, 0, b, 0), "assign it again, with another eventfd (the fast-MMIO twin went too)");
        Expect(0, Io(vm, 0x5000, 4, b, 0), "0x5000 is free again");
    }

    [ConformanceCase(Eventfd + " a refused KVM_IOEVENTFD changes nothing: after EEXIST the first registration is the one that deassigns, and the refused one does not exist")]
    public static void refused_assign_changes_nothing(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var e2 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        int a = e.Handle.Number, b = e2.Handle.Number;
        Expect(0, Io(vm, 0x9000, 0, a, 0), "assign length 0");
        Expect(-(long)Errno.EEXIST, Io(vm, 0x9000, 4, b, Datamatch, 3), "a datamatch under it");
        Expect(-(long)Errno.ENOENT, Io(vm, 0x9000, 4, b, Deassign | Datamatch, 3), "the refused one");
        Expect(-(long)Errno.EINVAL, Io(vm, 0x9100, 0, b, Datamatch), "length 0 with datamatch");
        Expect(-(long)Errno.ENOENT, Io(vm, 0x9100, 0, b, Deassign | Datamatch), "the refused one");
        Expect(0, Io(vm, 0x9000, 0, a, Deassign), "the first");
    }

    /// <summary>
    /// The guest of <see cref="guest_writes_that_match_signal_the_eventfd_without_an_exit"/>: at 0x20000 (outside the
    /// real-mode guest's slot, DS = 0x2000) and on ports 0x10, 0x11, 0x40.
    /// </summary>
    private static void DoorbellProgram(Iced.Intel.Assembler a)
    {
        a.mov(al, 1);
        a.@out(0x10, al);                 // PIO ioeventfd, length 1: signalled
        a.@out(0x11, al);                 // exit: KVM_EXIT_IO out 0x11
        a.mov(ax, 0x2000);
        a.mov(ds, ax);
        a.mov(eax, 7);
        a.mov(__dword_ptr[0], eax);       // MMIO 0x20000 length 4, any value: signalled
        a.mov(__word_ptr[0], ax);         // exit: a 2-byte write at a 4-byte ioeventfd
        a.mov(__dword_ptr[0x10], eax);    // MMIO 0x20010 datamatch 7: signalled
        a.inc(eax);
        a.mov(__dword_ptr[0x10], eax);    // exit: 8 is not the datamatch
        a.mov(__byte_ptr[0x20], al);      // MMIO 0x20020 length 0: any write at the address is signalled
        a.mov(__dword_ptr[0x20], eax);    // … of any width
        a.mov(__byte_ptr[0x21], al);      // exit: the next address
        a.@in(al, 0x10);                  // exit: reads are never taken
        a.mov(eax, __dword_ptr[0]);       // exit: an MMIO read
        a.mov(eax, 0x0100_0005);
        a.@out(0x40, eax);                // PIO 0x40 length 4 datamatch 0x01000005: signalled
        a.@out(0x40, al);                 // exit: length 1 at a length-4 port
        a.hlt();
    }

    [ConformanceCase("arch/x86/kvm/x86.c emulator_pio_in_out / vcpu_mmio_write → kvm_io_bus_write → " + Eventfd + " ioeventfd_in_range: a write whose address, length and (with DATAMATCH) value match signals the eventfd and the guest goes on; another length, value or address, a read, an IN exit to userspace as before")]
    public static void guest_writes_that_match_signal_the_eventfd_without_an_exit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, DoorbellProgram);
        using var pio = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var mmio = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var dm = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var any = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var pio4 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var r1 = g.Vm.RegisterIoEventFd(pio, IoEventFdSpace.Pio, 0x10, 1);
        using var r2 = g.Vm.RegisterIoEventFd(mmio, IoEventFdSpace.Mmio, 0x20000, 4);
        using var r3 = g.Vm.RegisterIoEventFd(dm, IoEventFdSpace.Mmio, 0x20010, 4, datamatch: 7);
        using var r4 = g.Vm.RegisterIoEventFd(any, IoEventFdSpace.Mmio, 0x20020, 0);
        using var r5 = g.Vm.RegisterIoEventFd(pio4, IoEventFdSpace.Pio, 0x40, 4, datamatch: 0x0100_0005);

        var exits = new List<string>();
        for (int n = 0; n < 16; n++)
        {
            var exit = g.Vcpu.Run();
            string text = exit.Reason switch
            {
                KvmExitReason.KVM_EXIT_IO => $"io {(exit.IoIsOut ? "out" : "in")} 0x{exit.IoPort:X} size {exit.IoSize}",
                KvmExitReason.KVM_EXIT_MMIO => $"mmio {(exit.MmioIsWrite ? "write" : "read")} 0x{exit.MmioAddress:X} len {exit.MmioData.Length}",
                _ => exit.Reason.ToString(),
            };
            exits.Add(text);
            if (exit.Reason != KvmExitReason.KVM_EXIT_IO && exit.Reason != KvmExitReason.KVM_EXIT_MMIO) break;
        }
        Assert.Equal(
        [
            "io out 0x11 size 1", "mmio write 0x20000 len 2", "mmio write 0x20010 len 4", "mmio write 0x20021 len 1",
            "io in 0x10 size 1", "mmio read 0x20000 len 4", "io out 0x40 size 1", "KVM_EXIT_HLT",
        ], exits);
        foreach (var (fd, count, what) in new[] { (pio, 1UL, "PIO 0x10"), (mmio, 1UL, "MMIO 0x20000"), (dm, 1UL, "datamatch 7"), (any, 2UL, "length 0"), (pio4, 1UL, "PIO 0x40 datamatch") })
        {
            Assert.True(fd.TryRead(out ulong v), $"{what}: signalled");
            Assert.True(v == count, $"{what}: counter {v}, expected {count}");
        }
    }

    [ConformanceCase(Eventfd + " kvm_assign_ioeventfd_idx keeps the eventfd_ctx: closing the eventfd leaves the registration working (the guest's OUT still does not exit) and in place (a new eventfd on the same number neither deassigns it nor gets the address)")]
    public static void closing_the_eventfd_keeps_the_registration(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, a =>
        {
            a.@out(0x30, al);
            a.hlt();
        });
        var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        int number = e.Handle.Number;
        Expect(0, Io(g.Vm, 0x30, 1, number, Pio), "assign PIO 0x30");
        e.Dispose();
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"the OUT to 0x30 should not exit, got {exit.ToString()}");
        using var again = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        Assert.Equal(number, again.Handle.Number);
        Expect(-(long)Errno.ENOENT, Io(g.Vm, 0x30, 1, number, Pio | Deassign), "deassign with another eventfd on the same number");
        Expect(-(long)Errno.EEXIST, Io(g.Vm, 0x30, 1, number, Pio), "assign the same port again");
    }

    [ConformanceCase("fs/eventfd.c eventfd_signal_mask: a kernel signal takes the counter from 2^64 - 2 to 2^64 - 1, which a write never reaches; then even a write of 0 is EAGAIN and a read returns 2^64 - 1")]
    public static void an_ioeventfd_signal_can_fill_the_counter(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, a =>
        {
            a.@out(0x10, al);
            a.@out(0x10, al);
            a.hlt();
        });
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        e.Add(ulong.MaxValue - 1);
        using var r = g.Vm.RegisterIoEventFd(e, IoEventFdSpace.Pio, 0x10, 1);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"expected HLT, got {exit.ToString()}");
        Assert.False(e.TryAdd(0), "a write of 0 at 2^64 - 1");
        Assert.Equal(ulong.MaxValue, e.Read());
    }

    [ConformanceCase(Eventfd + " kvm_irqfd without an in-kernel irqchip: unknown flags EINVAL; assign refused by kvm_arch_irqfd_allowed (x86: EINVAL) before the fd is looked up; deassign looks the fd up (EBADF, not an eventfd: EINVAL) and, with nothing to shut down, returns 0")]
    public static void irqfd_without_an_irqchip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var e2 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        int a = e.Handle.Number;
        const uint De = KVM_IRQFD_FLAG_DEASSIGN, Re = KVM_IRQFD_FLAG_RESAMPLE;
        foreach (var (fd, gsi, flags, resample, expected, what) in new (int, uint, uint, int, long, string)[]
        {
            (a, 0, 0, 0, -(long)Errno.EINVAL, "assign"),
            (9999, 0, 0, 0, -(long)Errno.EINVAL, "assign with a closed fd"),
            (a, 0, Re, e2.Handle.Number, -(long)Errno.EINVAL, "assign with RESAMPLE"),
            (a, 0, 4, 0, -(long)Errno.EINVAL, "flag bit 2"),
            (9999, 0, De | 4, 0, -(long)Errno.EINVAL, "deassign with flag bit 2 and a closed fd"),
            (a, 0, De, 0, 0, "deassign what was never assigned"),
            (a, 0, De | Re, 0, 0, "deassign with RESAMPLE"),
            (a, uint.MaxValue, De, 0, 0, "deassign GSI 2^32 - 1"),
            (9999, 0, De, 0, -(long)Errno.EBADF, "deassign a closed fd"),
            (kvm.Handle.Number, 0, De, 0, -(long)Errno.EINVAL, "deassign /dev/kvm's fd"),
        })
        {
            Expect(expected, IrqFd(vm, fd, gsi, flags, resample), what);
        }
    }
}
