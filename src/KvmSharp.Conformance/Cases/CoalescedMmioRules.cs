// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_REGISTER_COALESCED_MMIO / KVM_UNREGISTER_COALESCED_MMIO (virt/kvm/coalesced_mmio.c) on x86: the zone checks,
/// kvm_io_bus_register_dev's limit and order, and the guest's writes that land in a zone (vcpu_mmio_write /
/// emulator_pio_in_out → kvm_io_bus_write → coalesced_mmio_write) queued in the VM's one ring page, which every vCPU
/// maps at KVM_COALESCED_MMIO_PAGE_OFFSET (2) of its mmap area, instead of exiting.
/// </summary>
public static class CoalescedMmioRules
{
    private const string Coalesced = "virt/kvm/coalesced_mmio.c";

    // include/uapi/linux/kvm.h: KVM_CAP_COALESCED_MMIO, KVM_CAP_COALESCED_PIO.
    private const int CapCoalescedMmio = KvmCaps.KVM_CAP_COALESCED_MMIO, CapCoalescedPio = KvmCaps.KVM_CAP_COALESCED_PIO;

    /// <summary>The real-mode guest's DS for the zone: offset n is GPA 0x20000 + n, outside its memory slot.</summary>
    private const ulong Zone = 0x20000;

    private static long Register(Vm vm, ulong addr, uint size, uint pio = 0)
    {
        var z = new kvm_coalesced_mmio_zone { addr = addr, size = size, pio = pio };
        return vm.Kernel.Ioctl(vm.Handle, KvmCoalescedMmio.KVM_REGISTER_COALESCED_MMIO, Raw(ref z));
    }

    private static long Unregister(Vm vm, ulong addr, uint size, uint pio = 0)
    {
        var z = new kvm_coalesced_mmio_zone { addr = addr, size = size, pio = pio };
        return vm.Kernel.Ioctl(vm.Handle, KvmCoalescedMmio.KVM_UNREGISTER_COALESCED_MMIO, Raw(ref z));
    }

    private static void Ok(long rc, string what) =>
        Assert.True(rc == 0, $"{what}: expected 0, got {(rc < 0 ? ErrnoInfo.NameOf((int)-rc) : rc)}");

    /// <summary>One queued write as the ring holds it (struct kvm_coalesced_mmio), data cut to len.</summary>
    private readonly record struct Entry(ulong PhysAddr, uint Len, uint Pio, ulong Data)
    {
        public override string ToString() => $"{(Pio != 0 ? "pio" : "mmio")} 0x{PhysAddr:X} len {Len} data 0x{Data:X}";
    }

    /// <summary>The ring page as a vCPU's mmap shows it (MAP_SHARED, read/write), mapped alone or from an earlier page on.</summary>
    private sealed class Ring : IDisposable
    {
        private readonly MappedRegion _region;
        private readonly int _at;

        public Ring(Vcpu vcpu, long page = KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_X86, long mapFrom = -1)
        {
            long from = mapFrom < 0 ? page : mapFrom;
            ulong length = (ulong)((page - from + 1) * PageSize);
            long rc = MappedRegion.Map(vcpu.Vm.Kernel, vcpu.Handle, length, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE,
                LinuxConstants.MAP_SHARED, from * PageSize, out MappedRegion? region);
            Ok(rc, $"mmap of vCPU {vcpu.Id} pages {from}..{page}");
            _region = region!;
            _at = (int)((page - from) * PageSize);
        }

        private Span<byte> Bytes(int offset, int length) => _region.GetSpan((ulong)(_at + offset), length);

        public uint First
        {
            get => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(0, 4));
            set => BinaryPrimitives.WriteUInt32LittleEndian(Bytes(0, 4), value);
        }

        public uint Last
        {
            get => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4, 4));
            set => BinaryPrimitives.WriteUInt32LittleEndian(Bytes(4, 4), value);
        }

        public Entry this[int i]
        {
            get
            {
                var e = Bytes(KvmCoalescedMmio.RingHeaderSize + i * KvmCoalescedMmio.EntrySize, KvmCoalescedMmio.EntrySize);
                uint len = BinaryPrimitives.ReadUInt32LittleEndian(e[8..]);
                ulong data = BinaryPrimitives.ReadUInt64LittleEndian(e[16..]);
                if (len < 8) data &= (1UL << (8 * (int)len)) - 1;
                return new Entry(BinaryPrimitives.ReadUInt64LittleEndian(e), len, BinaryPrimitives.ReadUInt32LittleEndian(e[12..]), data);
            }
        }

        /// <summary>The entries from first up to last.</summary>
        public List<string> Pending()
        {
            var list = new List<string>();
            int max = KvmCoalescedMmio.MaxEntries(PageSize);
            for (uint i = First; i != Last && list.Count < max; i = (i + 1) % (uint)max) list.Add(this[(int)i].ToString());
            return list;
        }

        public void Dispose() => _region.Dispose();
    }

    /// <summary>Runs until HLT (at most <paramref name="limit"/> exits); the exits before it as text.</summary>
    private static List<string> RunToHlt(Vcpu vcpu, int limit = 16)
    {
        var exits = new List<string>();
        for (int n = 0; n < limit; n++)
        {
            var exit = vcpu.Run();
            if (exit.Reason == KvmExitReason.KVM_EXIT_HLT) return exits;
            exits.Add(exit.Reason switch
            {
                KvmExitReason.KVM_EXIT_IO => $"io {(exit.IoIsOut ? "out" : "in")} 0x{exit.IoPort:X} size {exit.IoSize}",
                KvmExitReason.KVM_EXIT_MMIO => $"mmio {(exit.MmioIsWrite ? "write" : "read")} 0x{exit.MmioAddress:X} len {exit.MmioData.Length}",
                _ => exit.ToString(),
            });
            if (exit.Reason is not (KvmExitReason.KVM_EXIT_IO or KvmExitReason.KVM_EXIT_MMIO)) return exits;
        }
        exits.Add("no HLT");
        return exits;
    }

    private static void UseZoneSegment(Iced.Intel.Assembler a)
    {
        a.mov(ax, (ushort)(Zone >> 4));
        a.mov(ds, ax);
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl_check_extension_generic: KVM_CAP_COALESCED_MMIO is KVM_COALESCED_MMIO_PAGE_OFFSET (2 on x86) on /dev/kvm and the VM")]
    public static void coalesced_mmio_capability_is_the_page_offset(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_X86, kvm.CheckExtension(CapCoalescedMmio));
        Assert.Equal(KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_X86, vm.CheckExtension(CapCoalescedMmio));
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl_check_extension_generic: \"case KVM_CAP_COALESCED_PIO: return 1\" (cap 162) on /dev/kvm and the VM")]
    public static void coalesced_pio_capability(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(1, kvm.CheckExtension(CapCoalescedPio));
        Assert.Equal(1, vm.CheckExtension(CapCoalescedPio));
    }

    [ConformanceCase(Coalesced + " kvm_vm_ioctl_register/unregister_coalesced_mmio: a pio other than 0 or 1 is EINVAL on both; copy_from_user first (EFAULT); nothing else is checked — overlapping, size-0 and wrapping zones are accepted; unregister answers 0 whether or not a zone went")]
    public static void register_and_unregister_checks(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        foreach (uint pio in new uint[] { 2, 0x8000_0000, uint.MaxValue })
        {
            AssertErrno(Errno.EINVAL, Register(vm, Zone, 0x100, pio), $"register with pio {pio}");
            AssertErrno(Errno.EINVAL, Unregister(vm, Zone, 0x100, pio), $"unregister with pio {pio}");
        }
        AssertErrno(Errno.EFAULT, vm.Kernel.Ioctl(vm.Handle, KvmCoalescedMmio.KVM_REGISTER_COALESCED_MMIO, 0UL), "register from NULL");
        AssertErrno(Errno.EFAULT, vm.Kernel.Ioctl(vm.Handle, KvmCoalescedMmio.KVM_UNREGISTER_COALESCED_MMIO, 0UL), "unregister from NULL");
        Ok(Register(vm, Zone, 0x100), "MMIO zone");
        Ok(Register(vm, Zone, 0x100), "the same zone again");
        Ok(Register(vm, Zone + 0x80, 0x100), "an overlapping zone");
        Ok(Register(vm, Zone, 0), "size 0");
        Ok(Register(vm, ulong.MaxValue - 0xf, 0x100), "a zone that wraps");
        Ok(Register(vm, 0x3f8, 8, pio: 1), "a PIO zone");
        Ok(Register(vm, 0x1_0000_0000, uint.MaxValue, pio: 1), "a PIO zone beyond port 0xffff");
        Ok(Unregister(vm, 0x9000_0000, 4), "unregister where there is none");
        Ok(Unregister(vm, Zone, 0x100), "unregister the zones");
        Ok(Unregister(vm, Zone, 0x100), "and again");
    }

    /// <summary>Byte, word, dword writes into the zone; a write past its end, one across it, a read; OUT; HLT.</summary>
    private static void WritesProgram(Iced.Intel.Assembler a)
    {
        UseZoneSegment(a);
        a.mov(__byte_ptr[0x00], 0x11);
        a.mov(__word_ptr[0x02], 0x2233);
        a.mov(__dword_ptr[0x04], 0x4455_6677);
        a.mov(__dword_ptr[0x100], 0x0102_0304);   // exit: outside the zone
        a.mov(__dword_ptr[0xfe], 0x0506_0708);    // exit: across the zone's end (coalesced_mmio_in_range)
        a.mov(eax, __dword_ptr[0x10]);            // exit: a read (coalesced_mmio_ops has no read)
        a.mov(__byte_ptr[0xff], 0x99);            // the zone's last byte
        a.@out(0x10, al);
        a.hlt();
    }

    [ConformanceCase(Coalesced + " coalesced_mmio_write: guest writes wholly inside an MMIO zone do not exit; the ring (page 2 of the vCPU's mmap) holds them in order with phys_addr, len, data and pio 0, last counting them; a write outside or across the zone's end and a read exit as KVM_EXIT_MMIO")]
    public static void guest_writes_in_a_zone_are_queued_in_order(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, WritesProgram);
        Ok(Register(g.Vm, Zone, 0x100), "zone 0x20000 + 0x100");
        using var ring = new Ring(g.Vcpu);
        Assert.Equal(0u, ring.First);
        Assert.Equal(0u, ring.Last);
        var exits = new List<string>();
        for (int n = 0; n < 8; n++)
        {
            var exit = g.Vcpu.Run();
            if (exit.Reason == KvmExitReason.KVM_EXIT_IO)
            {
                // At the OUT every write before it is in the ring already.
                exits.Add($"io out 0x{exit.IoPort:X}: last {ring.Last}");
                continue;
            }
            if (exit.Reason == KvmExitReason.KVM_EXIT_HLT) break;
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"unexpected exit {exit.ToString()}");
            exits.Add($"mmio {(exit.MmioIsWrite ? "write" : "read")} 0x{exit.MmioAddress:X} len {exit.MmioData.Length}: last {ring.Last}");
        }
        Assert.Equal(
        [
            "mmio write 0x20100 len 4: last 3", "mmio write 0x200FE len 4: last 3", "mmio read 0x20010 len 4: last 3",
            "io out 0x10: last 4",
        ], exits);
        Assert.Equal(
        [
            "mmio 0x20000 len 1 data 0x11", "mmio 0x20002 len 2 data 0x2233", "mmio 0x20004 len 4 data 0x44556677",
            "mmio 0x200FF len 1 data 0x99",
        ], ring.Pending());
        Assert.Equal(0u, ring.First);
    }

    [ConformanceCase(Coalesced + " coalesced_mmio_write: KVM_COALESCED_MMIO_MAX = (PAGE_SIZE - 8) / 24 = 170 slots, one always free: the 170th write finds (last + 1) % MAX == first and exits as KVM_EXIT_MMIO; once userspace moves first, the next write takes slot 169 and last wraps to 0")]
    public static void a_full_ring_makes_the_write_exit(CaseContext ctx)
    {
        int max = KvmCoalescedMmio.MaxEntries(PageSize);
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, a =>
        {
            UseZoneSegment(a);
            var loop = a.CreateLabel();
            a.mov(cx, (ushort)(max + 1));
            a.Label(ref loop);
            a.mov(__word_ptr[0x10], cx);
            a.loop(loop);
            a.hlt();
        });
        Ok(Register(g.Vm, Zone, 0x100), "zone 0x20000 + 0x100");
        using var ring = new Ring(g.Vcpu);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioIsWrite && exit.MmioAddress == Zone + 0x10,
            $"expected the write that finds the ring full to exit, got {exit.ToString()}");
        // Written: cx = max + 1 down to 3 in slots 0 .. max - 2; the exiting write is cx = 2.
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(exit.MmioData));
        Assert.Equal((uint)(max - 1), ring.Last);
        Assert.Equal(0u, ring.First);
        Assert.Equal(new Entry(Zone + 0x10, 2, 0, (ulong)(max + 1)), ring[0]);
        Assert.Equal(new Entry(Zone + 0x10, 2, 0, 3), ring[max - 2]);
        ring.First = (uint)(max - 1); // userspace consumed everything
        exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"expected HLT, got {exit.ToString()}");
        Assert.Equal(0u, ring.Last);
        Assert.Equal(new Entry(Zone + 0x10, 2, 0, 1), ring[max - 1]);
    }

    [ConformanceCase(Coalesced + " kvm_coalesced_mmio_init allocates one ring per VM and kvm_vcpu_fault maps that page at KVM_COALESCED_MMIO_PAGE_OFFSET for every vCPU: a second vCPU's mapping (made before any zone) and a 3-page mapping from offset 0 show the first vCPU's writes, and userspace's first written through one is seen through the other")]
    public static void every_vcpu_maps_the_same_ring(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, a =>
        {
            UseZoneSegment(a);
            a.mov(__dword_ptr[0x20], 0xcafe_f00d);
            a.mov(__byte_ptr[0x24], 0x5a);
            a.hlt();
        });
        using var second = g.Vm.CreateVcpu(1);
        using var early = new Ring(second);
        Assert.Equal(0u, early.Last);
        Ok(Register(g.Vm, Zone, 0x100), "zone 0x20000 + 0x100");
        using var whole = new Ring(second, mapFrom: 0);
        var exits = RunToHlt(g.Vcpu);
        Assert.Empty(exits);
        string[] expected = ["mmio 0x20020 len 4 data 0xCAFEF00D", "mmio 0x20024 len 1 data 0x5A"];
        Assert.Equal(expected, early.Pending());
        Assert.Equal(expected, whole.Pending());
        using var mine = new Ring(g.Vcpu);
        Assert.Equal(expected, mine.Pending());
        early.First = 2;
        Assert.Equal(2u, mine.First);
        Assert.Empty(whole.Pending());
    }

    /// <summary>OUTs into a PIO zone at 0x80 (4 ports), one across its end, an IN, an OUT to an MMIO zone's number.</summary>
    private static void PortsProgram(Iced.Intel.Assembler a)
    {
        a.mov(eax, 0x1122_3344);
        a.@out(0x80, al);
        a.@out(0x82, ax);
        a.@out(0x80, eax);
        a.@out(0x83, ax);     // exit: ports 0x83..0x84 cross the zone's end
        a.@in(al, 0x81);      // exit: IN is never coalesced
        a.@out(0x90, al);     // exit: 0x90 is an MMIO zone, not a port
        a.hlt();
    }

    [ConformanceCase(Coalesced + " a zone with pio = 1 sits on KVM_PIO_BUS: OUTs wholly inside it are queued with phys_addr = the port and pio 1; one across its end, an IN, and an OUT to a port only an MMIO zone covers exit as KVM_EXIT_IO")]
    public static void pio_zones_take_outs(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, PortsProgram);
        Ok(Register(g.Vm, 0x80, 4, pio: 1), "PIO zone 0x80 + 4");
        Ok(Register(g.Vm, 0x90, 1), "MMIO zone 0x90 + 1");
        using var ring = new Ring(g.Vcpu);
        Assert.Equal(["io out 0x83 size 2", "io in 0x81 size 1", "io out 0x90 size 1"], RunToHlt(g.Vcpu));
        Assert.Equal(["pio 0x80 len 1 data 0x44", "pio 0x82 len 2 data 0x3344", "pio 0x80 len 4 data 0x11223344"], ring.Pending());
    }

    [ConformanceCase(Coalesced + " kvm_vm_ioctl_unregister_coalesced_mmio: every zone of the same kind (pio) that contains the given range — coalesced_mmio_in_range(dev, addr, size) — goes; a zone inside a larger range, or of the other kind, stays")]
    public static void unregister_removes_the_zones_that_contain_the_range(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, a =>
        {
            UseZoneSegment(a);
            a.mov(__byte_ptr[0x00], 1);   // zone A [0x20000, +0x100)
            a.mov(__byte_ptr[0x100], 2);  // zone B [0x20100, +0x10)
            a.mov(__byte_ptr[0x200], 3);  // zone C [0x20200, +0x10), also a PIO zone of the same numbers
            a.hlt();
        });
        Ok(Register(g.Vm, Zone, 0x100), "zone A");
        Ok(Register(g.Vm, Zone + 0x100, 0x10), "zone B");
        Ok(Register(g.Vm, Zone + 0x200, 0x10), "zone C");
        Ok(Register(g.Vm, Zone + 0x200, 0x10, pio: 1), "PIO zone C");
        Ok(Unregister(g.Vm, Zone + 0x10, 4), "a range inside A");
        Ok(Unregister(g.Vm, Zone + 0x100, 0x100), "a range B lies inside");
        Ok(Unregister(g.Vm, Zone + 0x200, 0x10, pio: 1), "PIO zone C");
        using var ring = new Ring(g.Vcpu);
        Assert.Equal(["mmio write 0x20000 len 1"], RunToHlt(g.Vcpu));
        Assert.Equal(["mmio 0x20100 len 1 data 0x2", "mmio 0x20200 len 1 data 0x3"], ring.Pending());
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_io_bus_register_dev / kvm_io_bus_get_first_dev: a zone and an ioeventfd share one bus sorted by kvm_io_bus_cmp, the first range containing the access goes first — an ioeventfd at the zone's start comes before the zone (it signals), one further inside comes after it (the ring takes the write, the eventfd stays quiet); a full ring passes the write on to the ioeventfd")]
    public static void zones_and_ioeventfds_in_kernel_order(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, a =>
        {
            UseZoneSegment(a);
            a.mov(__dword_ptr[0x00], 7);   // ioeventfd at the zone's start
            a.mov(__dword_ptr[0x10], 8);   // ioeventfd inside the zone: the zone's
            a.hlt();
        });
        using var atStart = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var inside = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        Ok(Register(g.Vm, Zone, 0x100), "zone 0x20000 + 0x100");
        using var r1 = g.Vm.RegisterIoEventFd(atStart, IoEventFdSpace.Mmio, Zone, 4);
        using var r2 = g.Vm.RegisterIoEventFd(inside, IoEventFdSpace.Mmio, Zone + 0x10, 4);
        using var ring = new Ring(g.Vcpu);
        Assert.Empty(RunToHlt(g.Vcpu));
        Assert.True(atStart.TryRead(out ulong v) && v == 1, "the ioeventfd at the zone's start signalled once");
        Assert.False(inside.TryRead(out _), "the ioeventfd inside the zone is not signalled");
        Assert.Equal(["mmio 0x20010 len 4 data 0x8"], ring.Pending());
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_io_bus_register_dev: \"if (bus->dev_count - bus->ioeventfd_count > NR_IOBUS_DEVS - 1) return -ENOSPC\" — 1000 zones fill a bus (ioeventfds do not count), the 1001st zone and then an ioeventfd on that bus are ENOSPC, the other bus is free; unregistering one makes room")]
    public static void a_bus_holds_1000_zones(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var before = vm.RegisterIoEventFd(e, IoEventFdSpace.Mmio, 0x9000_0000, 4);
        for (uint i = 0; i < 1000; i++) Ok(Register(vm, 0x1000_0000 + 0x10UL * i, 0x10), $"zone {i}");
        AssertErrno(Errno.ENOSPC, Register(vm, 0x2000_0000, 0x10), "zone 1000");
        var ioeventfd = new kvm_ioeventfd { addr = 0x9000_0010, len = 4, fd = e.Handle.Number };
        AssertErrno(Errno.ENOSPC, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_IOEVENTFD, Raw(ref ioeventfd)), "an ioeventfd on the full MMIO bus");
        Ok(Register(vm, 0x2000_0000, 0x10, pio: 1), "a PIO zone");
        Ok(Unregister(vm, 0x1000_0000, 0x10), "unregister zone 0");
        Ok(Register(vm, 0x2000_0000, 0x10), "zone 1000 after one went");
    }

    [ConformanceCase("arch/x86/kvm/x86.c KVM_CREATE_IRQCHIP (kvm_pic_init: three PIO ranges, unregistered again on failure) and " +
                     "i8254.c kvm_create_pit on a PIO bus that 1000 zones fill: ENOSPC from kvm_io_bus_register_dev, and nothing stays " +
                     "registered — with room for the PIC (three ranges) the irqchip is made; the PIT then needs one more, and a kvm_create_pit " +
                     "that fails is NULL, which KVM_CREATE_PIT2 answers with ENOMEM")]
    public static void a_full_bus_refuses_the_in_kernel_devices(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        for (uint i = 0; i < 1000; i++) Ok(Register(vm, 0x1000 + i, 1, pio: 1), $"PIO zone {i}");
        AssertErrno(Errno.ENOSPC, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL), "KVM_CREATE_IRQCHIP on a full PIO bus");
        // Two ranges free: the PIC's third does not fit, and its first two go again.
        for (uint i = 0; i < 2; i++) Ok(Unregister(vm, 0x1000 + i, 1, pio: 1), $"unregister PIO zone {i}");
        AssertErrno(Errno.ENOSPC, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL), "KVM_CREATE_IRQCHIP with room for two ranges");
        Ok(Unregister(vm, 0x1002, 1, pio: 1), "unregister PIO zone 2");
        Ok(vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL), "KVM_CREATE_IRQCHIP with room for three ranges");
        var pit = new kvm_pit_config();
        AssertErrno(Errno.ENOMEM, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_PIT2, Raw(ref pit)), "KVM_CREATE_PIT2 on the full PIO bus");
        Ok(Unregister(vm, 0x1003, 1, pio: 1), "unregister PIO zone 3");
        Ok(vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_PIT2, Raw(ref pit)), "KVM_CREATE_PIT2 with room for its ports");
    }

    [ConformanceCase("arch/arm64/kvm/mmio.c io_mem_abort → kvm_io_bus_write → " + Coalesced + " coalesced_mmio_write: a store inside a zone does not exit and lands in the ring, which is page KVM_COALESCED_MMIO_PAGE_OFFSET = 1 of the vCPU's mmap on arm64 (arch/arm64/include/uapi/asm/kvm.h); a store of the zone's last byte and one past it", Profile = EmulatedProfile.Arm64)]
    public static void arm64_stores_in_a_zone_are_queued(CaseContext ctx)
    {
        if (ctx.Target.IsReal) Skip("arm64 case: this host is x86_64, an arm64 VM cannot be created here");
        const ulong Mmio = 0x0900_0000;
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            a.MovImm(X(0), Mmio);
            a.MovImm(X(1), 0x1122_3344);
            a.Str(W(1), X(0));          // queued
            a.Strb(W(1), X(0), 0xff);   // the zone's last byte: queued
            a.Strb(W(1), X(0), 0x100);  // past the zone: exits
            Arm64Guest.SystemOff(a);
        });
        Ok(Register(guest.Vm, Mmio, 0x100), "zone 0x9000000 + 0x100");
        using var ring = new Ring(guest.Vcpu, page: KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_ARM64);
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioIsWrite && exit.MmioAddress == Mmio + 0x100,
            $"expected the store past the zone to exit, got {exit.ToString()}");
        Assert.Equal(["mmio 0x9000000 len 4 data 0x11223344", "mmio 0x90000FF len 1 data 0x44"], ring.Pending());
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl_check_extension_generic on arm64: KVM_CAP_COALESCED_MMIO is KVM_COALESCED_MMIO_PAGE_OFFSET = 1 (arch/arm64/include/uapi/asm/kvm.h), KVM_CAP_COALESCED_PIO 1", Profile = EmulatedProfile.Arm64)]
    public static void arm64_coalesced_mmio_capabilities(CaseContext ctx)
    {
        if (ctx.Target.IsReal) Skip("arm64 case: this host is x86_64, an arm64 VM cannot be created here");
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_ARM64, vm.CheckExtension(CapCoalescedMmio));
        Assert.Equal(1, vm.CheckExtension(CapCoalescedPio));
    }
}
