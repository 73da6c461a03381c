// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Abi.KvmConstants;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The x86 in-kernel irqchip: KVM_CREATE_IRQCHIP and KVM_CAP_SPLIT_IRQCHIP, KVM_IRQ_LINE(_STATUS), KVM_GET/SET_IRQCHIP,
/// KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI, KVM_GET/SET_LAPIC, KVM_INTERRUPT and KVM_IRQFD with an irqchip (arch/x86/kvm/x86.c,
/// irq.c, i8259.c, ioapic.c, lapic.c, virt/kvm/irqchip.c, kvm_main.c, eventfd.c). Every rule was probed in C on Linux
/// 6.18 kvm_pvm first; none differs from upstream.
/// </summary>
public static class IrqchipRules
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const string Irqchip = "virt/kvm/irqchip.c";

    private static long Ioctl<T>(Vm vm, uint request, ref T value) where T : unmanaged => vm.Kernel.Ioctl(vm.Handle, request, Raw(ref value));

    private static long CreateIrqchip(Vm vm) => vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL);

    private static long EnableSplit(Vm vm, ulong pins, uint flags = 0)
    {
        var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_SPLIT_IRQCHIP, flags = flags };
        cap.args[0] = pins;
        return Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, ref cap);
    }

    private static (long Rc, int Status) IrqLineStatus(Vm vm, uint gsi, uint level)
    {
        var ev = new kvm_irq_level { irq = gsi, level = level };
        long rc = Ioctl(vm, KvmIoctls.KVM_IRQ_LINE_STATUS, ref ev);
        return (rc, ev.status);
    }

    private static long SignalMsi(Vm vm, uint addressLo, uint data, uint flags = 0)
    {
        var msi = new kvm_msi { address_lo = addressLo, data = data, flags = flags };
        return Ioctl(vm, KvmIoctls.KVM_SIGNAL_MSI, ref msi);
    }

    private static long SetRouting(Vm vm, uint flags, params kvm_irq_routing_entry[] entries)
    {
        int header = Marshal.SizeOf<kvm_irq_routing>(), size = Marshal.SizeOf<kvm_irq_routing_entry>();
        var buffer = new byte[header + entries.Length * size];
        var head = new kvm_irq_routing { nr = (uint)entries.Length, flags = flags };
        MemoryMarshal.Write(buffer, in head);
        for (int i = 0; i < entries.Length; i++) MemoryMarshal.Write(buffer.AsSpan(header + i * size), in entries[i]);
        return vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_GSI_ROUTING, buffer);
    }

    private static kvm_irq_routing_entry Chip(uint gsi, uint chip, uint pin, uint flags = 0) =>
        GsiRoute.ToIrqchip(gsi, (IrqchipId)chip, pin).Entry with { flags = flags };

    private static kvm_irq_routing_entry Msi(uint gsi, uint flags = 0) => GsiRoute.ToMsi(gsi, 0xfee00000, 0x33).Entry with { flags = flags };

    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    private static void Expect(long expected, long rc, string what)
    {
        if (expected < 0) AssertErrno((Errno)(-expected), rc, what);
        else Assert.True(rc == expected, $"{what}: expected {expected}, got {(rc < 0 ? ErrnoInfo.NameOf((int)-rc) : rc)}");
    }

    [ConformanceCase(X86 + " kvm_vm_ioctl_check_extension + kvm_main.c: KVM_CAP_IRQCHIP, _IRQ_INJECT_STATUS, _SPLIT_IRQCHIP, _SIGNAL_MSI are 1, KVM_CAP_IRQ_ROUTING is KVM_MAX_IRQ_ROUTES (4096), KVM_CAP_MSI_DEVID 0 (arm64's), on /dev/kvm and the VM")]
    public static void irqchip_capabilities(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        foreach (var (cap, value) in new[] { (KvmCaps.KVM_CAP_IRQCHIP, 1L), (KvmCaps.KVM_CAP_IRQ_INJECT_STATUS, 1L), (KvmCaps.KVM_CAP_SPLIT_IRQCHIP, 1L),
            (KvmCaps.KVM_CAP_SIGNAL_MSI, 1L), (KvmCaps.KVM_CAP_IRQ_ROUTING, 4096L), (KvmCaps.KVM_CAP_MSI_DEVID, 0L) })
        {
            Assert.True(kvm.CheckExtension(cap) == value, $"{KvmCaps.NameOf(cap)} on /dev/kvm: {kvm.CheckExtension(cap)}");
            Assert.True(vm.CheckExtension(cap) == value, $"{KvmCaps.NameOf(cap)} on the VM: {vm.CheckExtension(cap)}");
        }
    }

    [ConformanceCase(X86 + " kvm_arch_vm_ioctl KVM_CREATE_IRQCHIP (EEXIST when any irqchip exists, then EINVAL after a vCPU) and kvm_vm_ioctl_enable_cap KVM_CAP_SPLIT_IRQCHIP (flags EINVAL, args[0] > MAX_NR_RESERVED_IOAPIC_PINS = 4096 EINVAL, an irqchip or a vCPU EEXIST); full and split exclude each other")]
    public static void creation_rules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var vm = kvm.CreateVm())
        {
            Expect(0, CreateIrqchip(vm), "KVM_CREATE_IRQCHIP");
            Expect(-(long)Errno.EEXIST, CreateIrqchip(vm), "KVM_CREATE_IRQCHIP again");
            Expect(-(long)Errno.EEXIST, EnableSplit(vm, 24), "split after a full irqchip");
        }
        using (var vm = kvm.CreateVm())
        {
            using var vcpu = vm.CreateVcpu();
            Expect(-(long)Errno.EINVAL, CreateIrqchip(vm), "KVM_CREATE_IRQCHIP after KVM_CREATE_VCPU");
            Expect(-(long)Errno.EEXIST, EnableSplit(vm, 24), "split after KVM_CREATE_VCPU");
            Expect(-(long)Errno.EINVAL, EnableSplit(vm, 4097), "split with 4097 pins after KVM_CREATE_VCPU: the pin count first");
        }
        using (var vm = kvm.CreateVm())
        {
            Expect(-(long)Errno.EINVAL, EnableSplit(vm, 24, flags: 1), "split with flags 1");
            Expect(-(long)Errno.EINVAL, EnableSplit(vm, 4097), "split with 4097 pins");
            Expect(0, EnableSplit(vm, 4096), "split with 4096 pins");
            Expect(-(long)Errno.EEXIST, EnableSplit(vm, 24), "split again");
            Expect(-(long)Errno.EEXIST, CreateIrqchip(vm), "KVM_CREATE_IRQCHIP after split");
        }
        // The SDK's typed calls on the same rules.
        using (var vm = kvm.CreateVm())
        {
            vm.CreateIrqchip();
            Assert.Equal(IrqchipMode.Full, vm.Irqchip);
            AssertErrno(Errno.EEXIST, () => vm.EnableSplitIrqchip(24));
            Assert.Equal(IrqchipMode.Full, vm.Irqchip);
        }
        using (var vm = kvm.CreateVm())
        {
            vm.EnableSplitIrqchip(24);
            Assert.Equal(IrqchipMode.Split, vm.Irqchip);
            AssertErrno(Errno.EEXIST, vm.CreateIrqchip);
        }
    }

    [ConformanceCase(X86 + " without an irqchip: kvm_vm_ioctl_irq_line ENXIO, KVM_GET/SET_IRQCHIP ENXIO (!irqchip_full), " + Irqchip + " kvm_send_userspace_msi EINVAL, KVM_SET_GSI_ROUTING EINVAL (kvm_arch_can_set_irq_routing), KVM_GET/SET_LAPIC EINVAL (!lapic_in_kernel); with a split one KVM_GET/SET_IRQCHIP stay ENXIO and KVM_IRQ_LINE reaches no route (status -1)")]
    public static void irqchip_ioctls_without_an_irqchip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var vm = kvm.CreateVm())
        {
            var ev = new kvm_irq_level { irq = 4, level = 1 };
            Expect(-(long)Errno.ENXIO, Ioctl(vm, KvmIoctls.KVM_IRQ_LINE, ref ev), "KVM_IRQ_LINE");
            Expect(-(long)Errno.ENXIO, IrqLineStatus(vm, 4, 1).Rc, "KVM_IRQ_LINE_STATUS");
            var chip = new kvm_irqchip();
            Expect(-(long)Errno.ENXIO, Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, ref chip), "KVM_GET_IRQCHIP");
            Expect(-(long)Errno.ENXIO, Ioctl(vm, KvmIoctls.KVM_SET_IRQCHIP, ref chip), "KVM_SET_IRQCHIP");
            Expect(-(long)Errno.EINVAL, SignalMsi(vm, 0xfee00000, 0x30), "KVM_SIGNAL_MSI");
            Expect(-(long)Errno.EINVAL, SetRouting(vm, 0), "KVM_SET_GSI_ROUTING with no entries");
            using var vcpu = vm.CreateVcpu();
            var lapic = new kvm_lapic_state();
            Expect(-(long)Errno.EINVAL, vm.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_LAPIC, Raw(ref lapic)), "KVM_GET_LAPIC");
            Expect(-(long)Errno.EINVAL, vm.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_LAPIC, Raw(ref lapic)), "KVM_SET_LAPIC");
            AssertErrno(Errno.ENXIO, () => vm.SetIrqLine(4, true));
            AssertErrno(Errno.EINVAL, () => vcpu.GetLapic());
        }
        using (var vm = kvm.CreateVm())
        {
            vm.EnableSplitIrqchip(24);
            var chip = new kvm_irqchip();
            Expect(-(long)Errno.ENXIO, Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, ref chip), "KVM_GET_IRQCHIP with a split irqchip");
            Expect(-(long)Errno.ENXIO, Ioctl(vm, KvmIoctls.KVM_SET_IRQCHIP, ref chip), "KVM_SET_IRQCHIP with a split irqchip");
            Assert.Equal((0L, -1), IrqLineStatus(vm, 0, 1));
            Assert.Equal(-1, vm.SetIrqLine(4, true));
        }
    }

    [ConformanceCase(X86 + " kvm_vm_ioctl_get_irqchip after KVM_CREATE_IRQCHIP: i8259.c kvm_pic_init leaves the PICs zeroed but elcr_mask (0xf8, 0xde); ioapic.c kvm_ioapic_reset masks every pin at base 0xfec00000; chip_id 3 is EINVAL; the union's bytes past the chip's state come back as the caller sent them")]
    public static void default_pic_and_ioapic_state(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        var pic = new kvm_irqchip { chip_id = KVM_IRQCHIP_PIC_MASTER };
        ((Span<byte>)pic.chip).Fill(0xcc);
        Expect(0, Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, ref pic), "KVM_GET_IRQCHIP master");
        Assert.Equal("000000000000000000000000000000f8" + "cccccccc", Hex(((ReadOnlySpan<byte>)pic.chip)[..20]));
        Assert.Equal(0xde, vm.GetPicState(IrqchipId.PicSlave).State.elcr_mask);
        Assert.Equal(0, vm.GetPicState(IrqchipId.PicSlave).Imr);
        var io = vm.GetIoapicState();
        Assert.Equal(0xfec00000UL, io.BaseAddress);
        Assert.Equal((0u, 0u, 0u), (io.Id, io.Irr, io.State.ioregsel));
        for (int pin = 0; pin < KVM_IOAPIC_NUM_PINS; pin++) Assert.True(io.Redirection(pin).Bits == 0x10000, $"pin {pin}: 0x{io.Redirection(pin).Bits:X}");
        var bad = new kvm_irqchip { chip_id = 3 };
        Expect(-(long)Errno.EINVAL, Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, ref bad), "KVM_GET_IRQCHIP chip 3");
        Expect(-(long)Errno.EINVAL, Ioctl(vm, KvmIoctls.KVM_SET_IRQCHIP, ref bad), "KVM_SET_IRQCHIP chip 3");
        bad.chip_id = uint.MaxValue;
        Expect(-(long)Errno.EINVAL, Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, ref bad), "KVM_GET_IRQCHIP chip 2^32 - 1");
    }

    [ConformanceCase(Irqchip + " kvm_set_irq over the default routing: i8259.c pic_set_irq1 (edge pins: 1 on every raise and lower, irr latched) plus ioapic.c ioapic_set_irq (masked: -1 on a new raise, 0 when coalesced, 1 on a lower) summed; GSI 16–23 reach only the IOAPIC; a GSI without routes answers -1; any non-zero level is high; a pending slave request raises master pin 2 (pic_update_irq)")]
    public static void irq_line_status_over_the_default_routing(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        foreach (uint gsi in new uint[] { 0, 1, 4, 8, 15 })
        {
            Assert.True((0L, 1) == IrqLineStatus(vm, gsi, 1), $"GSI {gsi} raised");
            Assert.True((0L, 1) == IrqLineStatus(vm, gsi, 1), $"GSI {gsi} raised again");
            Assert.True((0L, 2) == IrqLineStatus(vm, gsi, 0), $"GSI {gsi} lowered");
            Assert.True((0L, 2) == IrqLineStatus(vm, gsi, 0), $"GSI {gsi} lowered again");
        }
        foreach (uint gsi in new uint[] { 16, 23 })
        {
            Assert.True((0L, -1) == IrqLineStatus(vm, gsi, 1), $"GSI {gsi} raised");
            Assert.True((0L, 0) == IrqLineStatus(vm, gsi, 1), $"GSI {gsi} raised again");
            Assert.True((0L, 1) == IrqLineStatus(vm, gsi, 0), $"GSI {gsi} lowered");
        }
        foreach (uint gsi in new uint[] { 24, 1000, 4096, uint.MaxValue })
            Assert.True((0L, -1) == IrqLineStatus(vm, gsi, 1), $"GSI {gsi} (no route)");
        // The slave's pin 0 and 7 (GSI 8, 15) are latched: master pin 2 got the cascade edge.
        Assert.Equal((byte)0x13 | 0x04, vm.GetPicState(IrqchipId.PicMaster).Irr);
        Assert.Equal((byte)0x81, vm.GetPicState(IrqchipId.PicSlave).Irr);
        Assert.True((0L, 0) == IrqLineStatus(vm, 2, 5), "GSI 2 raised with level 5 while master pin 2 is latched");
        Assert.Equal(0u, vm.GetIoapicState().Irr & ~(1u << 2));
        var ev = new kvm_irq_level { irq = 3, level = 1 };
        Expect(0, Ioctl(vm, KvmIoctls.KVM_IRQ_LINE, ref ev), "KVM_IRQ_LINE");
        Assert.Equal(3u, ev.irq);
        Assert.Equal(1, vm.SetIrqLine(5, true));
    }

    [ConformanceCase(X86 + " kvm_vm_ioctl_set_irqchip: a PIC's 16 bytes are taken as they are; ioapic.c kvm_set_ioapic takes every field (pad too) and raises the given irr bits again (masked pins keep them)")]
    public static void set_irqchip_round_trips(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        var all = new kvm_pic_state();
        Raw(ref all).Fill(0xff);
        vm.SetPicState(IrqchipId.PicMaster, new PicState(all));
        var master = vm.GetPicState(IrqchipId.PicMaster).State;
        Assert.Equal(new string('f', 32), Hex(Raw(ref master)));
        var io = vm.GetIoapicState().State;
        io.base_address = 0x1000;
        io.ioregsel = 0x1234;
        io.id = 0xff;
        io.irr = 0x5;
        io.pad = 0x77;
        io.redirtbl[3] = 0xa0031;
        vm.SetIoapicState(new IoapicState(io));
        var back = vm.GetIoapicState();
        Assert.Equal((0x1000UL, 0x1234u, 0xffu, 0x5u, 0x77u, 0xa0031UL),
            (back.BaseAddress, back.State.ioregsel, back.Id, back.Irr, back.State.pad, back.Redirection(3).Bits));
    }

    [ConformanceCase(Irqchip + " kvm_set_irq_routing / setup_routing_entry + arch/x86/kvm/irq.c kvm_set_routing_entry: header flags, entry flags (MSI: only KVM_MSI_VALID_DEVID), PIC pins ≥ 8, IOAPIC pins ≥ 24, chip 3, GSI ≥ 4096, a GSI twice on one chip or on an MSI and a chip, types 0 and 3–6 (no Hyper-V or Xen routing here) are EINVAL; nr > 4096 EINVAL before the entries are read; irqchip routes on a split irqchip EINVAL; pad is ignored")]
    public static void gsi_routing_validation(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        const long Ok = 0, Inval = -(long)Errno.EINVAL;
        foreach (var (expected, flags, entries, what) in new (long, uint, kvm_irq_routing_entry[], string)[]
        {
            (Ok, 0, [Chip(0, 2, 0)], "IOAPIC pin 0"),
            (Inval, 1, [Chip(0, 2, 0)], "header flags 1"),
            (Inval, 0, [Chip(0, 2, 0, flags: 1)], "entry flags 1 on an irqchip route"),
            (Inval, 0, [Chip(0, 2, 24)], "IOAPIC pin 24"),
            (Ok, 0, [Chip(0, 0, 7)], "PIC master pin 7"),
            (Inval, 0, [Chip(0, 0, 8)], "PIC master pin 8"),
            (Ok, 0, [Chip(0, 1, 7)], "PIC slave pin 7"),
            (Inval, 0, [Chip(0, 1, 8)], "PIC slave pin 8"),
            (Inval, 0, [Chip(0, 3, 0)], "chip 3"),
            (Ok, 0, [Chip(4095, 2, 0)], "GSI 4095"),
            (Inval, 0, [Chip(4096, 2, 0)], "GSI 4096"),
            (Inval, 0, [Chip(0, 2, 0), Chip(0, 2, 1)], "GSI 0 twice on the IOAPIC"),
            (Ok, 0, [Chip(0, 2, 0), Chip(0, 0, 0)], "GSI 0 on the IOAPIC and the PIC"),
            (Ok, 0, [Chip(0, 2, 0), Chip(1, 2, 0)], "two GSIs on IOAPIC pin 0"),
            (Inval, 0, [Chip(0, 2, 0), Msi(0)], "GSI 0 on the IOAPIC and an MSI"),
            (Inval, 0, [Msi(0), Msi(0)], "GSI 0 on two MSIs"),
            (Ok, 0, [Chip(0, 2, 0), Msi(1)], "an MSI on GSI 1"),
            (Ok, 0, [Msi(1, flags: KVM_MSI_VALID_DEVID)], "an MSI with KVM_MSI_VALID_DEVID"),
            (Inval, 0, [Msi(1, flags: 2)], "an MSI with flag 2"),
            (Inval, 0, [Msi(1) with { type = 0 }], "type 0"),
            (Inval, 0, [Msi(1) with { type = KVM_IRQ_ROUTING_S390_ADAPTER }], "type 3 (s390 adapter)"),
            (Inval, 0, [Msi(1) with { type = KVM_IRQ_ROUTING_HV_SINT }], "type 4 (Hyper-V SINT)"),
            (Inval, 0, [Msi(1) with { type = KVM_IRQ_ROUTING_XEN_EVTCHN }], "type 5 (Xen event channel)"),
            (Inval, 0, [Msi(1) with { type = 6 }], "type 6"),
            (Ok, 0, [Msi(1) with { pad = 5 }], "pad 5"),
            (Ok, 0, [], "no entries"),
        })
        {
            Expect(expected, SetRouting(vm, flags, entries), what);
        }
        // The last table (empty) is in force: no GSI reaches a chip.
        Assert.True((0L, -1) == IrqLineStatus(vm, 4, 1), "GSI 4 with an empty table");
        // nr is checked against KVM_MAX_IRQ_ROUTES before the entries are copied. (nr 4096 with only a header would
        // read past this buffer: whether that faults depends on what the process has mapped there, so it is not asserted.)
        var head = new kvm_irq_routing { nr = 4097 };
        Expect(Inval, Ioctl(vm, KvmIoctls.KVM_SET_GSI_ROUTING, ref head), "nr 4097 and no entries");
        // A failed table leaves the one before.
        vm.SetGsiRouting([GsiRoute.ToIrqchip(4, IrqchipId.PicMaster, 4)]);
        Expect(Inval, SetRouting(vm, 0, Chip(5, 2, 0), Chip(6, 2, 99)), "a table whose second entry is bad");
        Assert.True((0L, 1) == IrqLineStatus(vm, 4, 1), "GSI 4 on PIC pin 4 after the failed table");
        Assert.True((0L, -1) == IrqLineStatus(vm, 5, 1), "GSI 5 (not routed) after the failed table");

        using var split = kvm.CreateVm();
        split.EnableSplitIrqchip(24);
        Expect(Inval, SetRouting(split, 0, Chip(3, 2, 0)), "an IOAPIC route on a split irqchip");
        Expect(Ok, SetRouting(split, 0, Msi(3)), "an MSI route on a split irqchip");
        Assert.True((0L, -1) == IrqLineStatus(split, 3, 1), "the MSI route with no vCPU");
        Assert.True((0L, -1) == IrqLineStatus(split, 3, 0), "the MSI route lowered (kvm_set_msi: !level is -1)");
        using var vcpu = split.CreateVcpu();
        Assert.True((0L, 0) == IrqLineStatus(split, 3, 1), "the MSI route to vCPU 0's software-disabled APIC");
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_interrupt with an in-kernel irqchip: the vector is checked first (EINVAL), then ENXIO with the in-kernel PIC; with a split irqchip the vector becomes the pending ExtINT, and a second one is EEXIST")]
    public static void kvm_interrupt_with_an_irqchip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var vm = kvm.CreateVm())
        {
            vm.CreateIrqchip();
            using var vcpu = vm.CreateVcpu();
            var irq = new kvm_interrupt { irq = 0x30 };
            Expect(-(long)Errno.ENXIO, vm.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_INTERRUPT, Raw(ref irq)), "KVM_INTERRUPT with a full irqchip");
            irq.irq = 256;
            Expect(-(long)Errno.EINVAL, vm.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_INTERRUPT, Raw(ref irq)), "KVM_INTERRUPT 256");
            AssertErrno(Errno.ENXIO, () => vcpu.InjectInterrupt(0x31));
        }
        using (var vm = kvm.CreateVm())
        {
            vm.EnableSplitIrqchip(24);
            using var vcpu = vm.CreateVcpu();
            var irq = new kvm_interrupt { irq = 256 };
            Expect(-(long)Errno.EINVAL, vm.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_INTERRUPT, Raw(ref irq)), "KVM_INTERRUPT 256, split");
            vcpu.InjectInterrupt(0x30);
            AssertErrno(Errno.EEXIST, () => vcpu.InjectInterrupt(0x31));
        }
    }

    [ConformanceCase("arch/x86/kvm/lapic.c kvm_lapic_reset as kvm_arch_vcpu_create runs it: xAPIC ID = vCPU id, version 0x50014, DFR all ones, SVR 0xff (software-disabled), every LVT masked but the BSP's LINT0 (ExtINT, KVM_X86_QUIRK_LINT0_REENABLED); + " + X86 + " kvm_arch_vcpu_create: with an irqchip only the BSP starts RUNNABLE, the others UNINITIALIZED")]
    public static void default_lapic_state(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var bsp = vm.CreateVcpu(0);
        using var ap = vm.CreateVcpu(5);
        foreach (var (vcpu, lint0) in new[] { (bsp, 0x700u), (ap, 0x10000u) })
        {
            var l = vcpu.GetLapic();
            var nonZero = Enumerable.Range(0, 64).Select(i => i * 16).Where(o => l[o] != 0)
                .Select(o => $"{o:x3}={l[o]:x}").ToArray();
            string id = vcpu.Id == 0 ? "" : $"020={vcpu.Id << 24:x} ";
            Assert.Equal($"{id}030=50014 0e0=ffffffff 0f0=ff 320=10000 330=10000 340=10000 350={lint0:x} 360=10000 370=10000",
                string.Join(' ', nonZero));
            Assert.Equal((byte)vcpu.Id, l.Id);
            Assert.False(l.SoftwareEnabled);
        }
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, bsp.GetMpState());
        Assert.Equal(KvmMpState.KVM_MP_STATE_UNINITIALIZED, ap.GetMpState());
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_set_mpstate / get_mpstate: with an in-kernel local APIC (full or split irqchip, BSP or AP) RUNNABLE, UNINITIALIZED, INIT_RECEIVED, HALTED, SIPI_RECEIVED and AP_RESET_HOLD are taken and the rest is EINVAL (without one only RUNNABLE); SIPI_RECEIVED is kept as INIT_RECEIVED with a pending SIPI, which KVM_GET_MP_STATE's kvm_apic_accept_events delivers: RUNNABLE, CS 0 / base 0, RIP 0 (vector 0)")]
    public static void mp_state_with_an_in_kernel_apic(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        uint[] accepted = [0, 1, 2, 3, 4, 9];
        foreach (int mode in new[] { 0, 1, 2 })
        {
            foreach (int id in new[] { 0, 2 })
            {
                for (uint state = 0; state < 12; state++)
                {
                    using var vm = kvm.CreateVm();
                    if (mode == 1) vm.CreateIrqchip();
                    if (mode == 2) vm.EnableSplitIrqchip(24);
                    using var vcpu = vm.CreateVcpu(id);
                    uint before = vcpu.GetMpState();
                    string what = $"irqchip mode {mode}, vCPU {id}, mp_state {state}";
                    bool takes = mode == 0 ? state == 0 : accepted.Contains(state);
                    if (!takes)
                    {
                        AssertErrno(Errno.EINVAL, () => vcpu.SetMpState(state));
                        Assert.True(before == vcpu.GetMpState(), $"{what}: a refused state changed mp_state");
                        continue;
                    }
                    vcpu.SetMpState(state);
                    uint expected = state == KvmMpState.KVM_MP_STATE_SIPI_RECEIVED ? KvmMpState.KVM_MP_STATE_RUNNABLE : state;
                    Assert.True(expected == vcpu.GetMpState(), $"{what}: read back {vcpu.GetMpState()}");
                    var sregs = vcpu.GetSregs();
                    ulong rip = vcpu.GetRegs().rip;
                    var (selector, cbase, ripExpected) = state == KvmMpState.KVM_MP_STATE_SIPI_RECEIVED ? (0, 0UL, 0UL) : (0xf000, 0xffff0000UL, 0xfff0UL);
                    Assert.True(sregs.cs.selector == selector && sregs.cs.@base == cbase && rip == ripExpected,
                        $"{what}: CS {sregs.cs.selector:x}/{sregs.cs.@base:x} RIP {rip:x}");
                }
            }
        }
    }

    [ConformanceCase("arch/x86/kvm/lapic.c kvm_apic_set_state (xAPIC mode): the page is taken as given, then kvm_apic_set_version rewrites the version, apic_update_ppr recomputes PPR from TPR, and TMCCT reads 0; offsets the APIC does not use keep their bytes")]
    public static void set_lapic_round_trip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.EnableSplitIrqchip(24);
        using var vcpu = vm.CreateVcpu();
        var l = vcpu.GetLapic();
        l.SoftwareEnabled = true;
        l.Tpr = 0x20;
        l[LapicState.VersionOffset] = 0x99;
        l[LapicState.PprOffset] = 0x77;
        l[LapicState.TimerCurrentCountOffset] = 0x1234;
        l[0x3f0] = 0x5555;
        vcpu.SetLapic(l);
        var back = vcpu.GetLapic();
        Assert.Equal((0x1ffu, 0x20u, 0x50014u, 0x20u, 0u, 0x5555u),
            (back.Svr, back.Tpr, back.Version, back.Ppr, back.TimerCurrentCount, back[0x3f0]));
        Assert.True(back.SoftwareEnabled);
    }

    [ConformanceCase("arch/x86/kvm/irq.c kvm_set_msi + lapic.c kvm_irq_delivery_to_apic(_fast), __apic_accept_irq: KVM_SIGNAL_MSI returns -1 (EPERM) with no local APIC, 0 for a software-disabled or absent destination, else the number of APICs that took it; fixed and lowest priority set IRR (TMR for level), NMI and remote read count 1, SMI (no SMM here) and ExtINT 0; flags other than KVM_MSI_VALID_DEVID are EINVAL")]
    public static void signal_msi_delivery(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        Expect(-(long)Errno.EPERM, SignalMsi(vm, 0xfee00000, 0x40), "no vCPU");
        Assert.Equal(-1, vm.SignalMsi(0xfee00000, 0x40));
        using var vcpu0 = vm.CreateVcpu(0);
        using var vcpu1 = vm.CreateVcpu(1);
        Expect(0, SignalMsi(vm, 0xfee00000, 0x40), "vCPU 0's APIC is software-disabled");
        var l = vcpu0.GetLapic();
        l.SoftwareEnabled = true;
        vcpu0.SetLapic(l);
        foreach (var (address, data, flags, expected, what) in new (uint, uint, uint, long, string)[]
        {
            (0xfee00000, 0x40, 0, 1, "fixed, vector 0x40, to APIC 0"),
            (0xfee01000, 0x41, 0, 0, "to APIC 1 (software-disabled)"),
            (0xfee07000, 0x41, 0, 0, "to APIC 7 (nobody)"),
            (0xfeeff000, 0x41, 0, 1, "broadcast"),
            (0xfee00000, 0x8042, 0, 1, "level-triggered vector 0x42"),
            (0xfee00000, 0x150, 0, 1, "lowest priority, vector 0x50"),
            (0xfee00004, 0x51, 0, 0, "logical destination 0 (LDR 0)"),
            (0xfee00000, 0x400, 0, 1, "NMI"),
            (0xfee00000, 0x300, 0, 1, "remote read"),
            (0xfee00000, 0x200, 0, 0, "SMI"),
            (0xfee00000, 0x700, 0, 0, "ExtINT"),
            (0xfee00000, 0x43, KVM_MSI_VALID_DEVID, 1, "with KVM_MSI_VALID_DEVID"),
            (0xfee00000, 0x44, 2, -(long)Errno.EINVAL, "flag 2"),
        })
        {
            Expect(expected, SignalMsi(vm, address, data, flags), what);
        }
        var back = vcpu0.GetLapic();
        foreach (byte v in new byte[] { 0x40, 0x41, 0x42, 0x43, 0x50 }) Assert.True(back.IsRequested(v), $"IRR 0x{v:X}");
        Assert.False(back.IsRequested(0x44), "IRR 0x44");
        Assert.True(back.IsLevelTriggered(0x42), "TMR 0x42");
        Assert.False(back.IsLevelTriggered(0x40), "TMR 0x40");
        Assert.False(vcpu1.GetLapic().IsRequested(0x41), "APIC 1 took nothing");
        Assert.Equal(1, vm.SignalMsi(0xfee00000, 0x45, devid: 7));
    }

    [ConformanceCase("virt/kvm/eventfd.c kvm_irqfd_assign with an irqchip: x86 kvm_arch_irqfd_allowed (a resampling irqfd needs the full irqchip: EINVAL on a split one), the fd (EBADF, not an eventfd EINVAL), the resample fd likewise, an eventfd already assigned EBUSY whatever the GSI; a deassigned eventfd can be assigned again")]
    public static void irqfd_with_an_irqchip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var e1 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var e2 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var e3 = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using (var vm = kvm.CreateVm())
        {
            vm.CreateIrqchip();
            const uint De = KVM_IRQFD_FLAG_DEASSIGN, Re = KVM_IRQFD_FLAG_RESAMPLE;
            foreach (var (fd, gsi, flags, resample, expected, what) in new (int, uint, uint, int, long, string)[]
            {
                (e1.Handle.Number, 5, 0, 0, 0, "assign e1 to GSI 5"),
                (e1.Handle.Number, 6, 0, 0, -(long)Errno.EBUSY, "assign e1 to GSI 6"),
                (e1.Handle.Number, 5, De, 0, 0, "deassign e1 from GSI 5"),
                (e1.Handle.Number, 6, 0, 0, 0, "assign e1 to GSI 6 after the deassign"),
                (e2.Handle.Number, 7, Re, e1.Handle.Number, 0, "assign e2 resampling into e1"),
                (e1.Handle.Number, 8, Re, e2.Handle.Number, -(long)Errno.EBUSY, "assign e1 again, resampling"),
                (e3.Handle.Number, 8, Re, kvm.Handle.Number, -(long)Errno.EINVAL, "a resample fd that is not an eventfd"),
                (e3.Handle.Number, 8, Re, 9999, -(long)Errno.EBADF, "a closed resample fd"),
                (kvm.Handle.Number, 8, 0, 0, -(long)Errno.EINVAL, "an fd that is not an eventfd"),
                (9999, 8, 0, 0, -(long)Errno.EBADF, "a closed fd"),
            })
            {
                var args = new kvm_irqfd { fd = (uint)fd, gsi = gsi, flags = flags, resamplefd = (uint)resample };
                Expect(expected, Ioctl(vm, KvmIoctls.KVM_IRQFD, ref args), what);
            }
            using var reg = vm.AssignIrqFd(e3, 9);
        }
        using (var vm = kvm.CreateVm())
        {
            vm.EnableSplitIrqchip(24);
            using var reg = vm.AssignIrqFd(e1, 3);
            Assert.Throws<IrqchipRequiredException>(() => vm.AssignIrqFd(e3, 4, resample: e2));
        }
    }

    [ConformanceCase(X86 + " KVM_CREATE_IRQCHIP: ENOTTY for a VM with protected EOIs (TDX, vmx/tdx.c tdx_vm_init: has_protected_eoi) + vmx/tdx.c tdx_vcpu_create: a TD's vCPU needs a split irqchip (EINVAL otherwise, once KVM_TDX_INIT_VM ran); its local APIC is protected (KVM_GET_LAPIC EINVAL)",
        Profile = EmulatedProfile.X86InPlaceConversion, Requires = KernelRequirement.TdxVmType)]
    public static void tdx_needs_a_split_irqchip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm(VmType.Tdx);
        Expect(-(long)Errno.ENOTTY, CreateIrqchip(vm), "KVM_CREATE_IRQCHIP on a TD");
        // tdx_vcpu_create checks the TD's state (EIO before KVM_TDX_INIT_VM) before the irqchip.
        var tdx = new TdxLaunch(vm);
        tdx.InitVm(tdx.GetCapabilities().CpuidWithGpaw(48));
        AssertErrno(Errno.EINVAL, () => vm.CreateVcpu());
        vm.EnableSplitIrqchip(24);
        using var vcpu = vm.CreateVcpu();
        AssertErrno(Errno.EINVAL, () => vcpu.GetLapic());
    }
}
