// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The x2APIC, TSC-deadline and resampling-irqfd calls of an irqchip session (<see cref="IrqchipOps"/>):
/// KVM_ENABLE_CAP(KVM_CAP_X2APIC_API) with valid and invalid flags, a one-leaf KVM_SET_CPUID2 with or without the x2APIC
/// and TSC-deadline bits, IA32_APIC_BASE through KVM_SET/GET_MSRS or KVM_SET/GET_SREGS, host reads and writes of the
/// x2APIC MSRs (0x800–0x8ff and around) and of IA32_TSC_DEADLINE, KVM_GET/SET_LAPIC round trips with the ID, LDR and an
/// ISR/TMR vector changed, KVM_SIGNAL_MSI with x2APIC destinations (address_hi), and resampling irqfds on the session's
/// eventfds (assign, deassign, signal, non-blocking read) with an IOAPIC pin programmed for them.
/// Nothing drawn depends on time: TMICT is only ever written 0 (so TMCCT in KVM_GET_LAPIC and MSR 0x839 read 0), and a
/// TSC deadline is 0, already passed (1–100) or beyond 10^13 cycles (an hour away, and small enough that
/// start_sw_tscdeadline's "(tscdeadline - guest_tsc) * 1000000" cannot wrap into a near expiry). An expired deadline is
/// only injected by vcpu_run, which no call of the session reaches (KVM_RUN is always immediate_exit), so
/// HostDeviations.KvmPvmExpiredTimerInjectedAtNextRun cannot show. A signalled irqfd whose route is not an MSI is
/// injected by a work item (eventfd.c irqfd_wakeup → schedule_work(&amp;irqfd-&gt;inject)): the session waits
/// <see cref="IrqfdInjectWaitMs"/> ms after the write so the real kernel's work has run before the next call.
/// </summary>
public sealed partial class KernelSession
{
    /// <summary>Eventfds an irqchip session may use as irqfd / resamplefd, made on first use.</summary>
    private const int IrqcEventFds = 3;

    /// <summary>
    /// How long a signal of the session's eventfds waits for eventfd.c irqfd_inject, a work item on Linux (an IOAPIC or
    /// PIC route cannot be injected in atomic context). Generous: a CI machine under load runs the work late, and a
    /// late injection would read as a divergence. The emulator injects before the write returns: no wait there.
    /// </summary>
    private const int IrqfdInjectWaitMs = 40;

    private void WaitForIrqfdInject()
    {
        if (_kernel is not Emulation.EmulatedKernel) Thread.Sleep(IrqfdInjectWaitMs);
    }

    private readonly KernelFd?[] _irqcEventFds = new KernelFd?[IrqcEventFds];

    private void DisposeIrqcEventFds()
    {
        for (int i = 0; i < _irqcEventFds.Length; i++)
        {
            _irqcEventFds[i]?.Dispose();
            _irqcEventFds[i] = null;
        }
    }

    private KernelFd? IrqcEventFd(int slot)
    {
        if (_irqcEventFds[slot] is null && _kernel.EventFd(0, LinuxConstants.EFD_NONBLOCK, out var fd) >= 0) _irqcEventFds[slot] = fd;
        return _irqcEventFds[slot];
    }

    /// <summary>
    /// Half the sessions with an irqchip start in x2APIC mode: on each vCPU a CPUID with x2APIC (TSC-deadline drawn), the
    /// APIC base with EN | EXTD (now and then left in xAPIC mode) and SPIV 0x1ff (software-enabled); KVM_CAP_X2APIC_API
    /// with flags 0–3 now and then; and on a full irqchip, half the time, IOAPIC pin 20 level-triggered to vector 0x40 on
    /// APIC 0 with a resampling irqfd (eventfd 0, resamplefd 1) — so signals, host EOIs (MSR 0x80b) and the resamplefd's
    /// count meet in the calls that follow.
    /// </summary>
    private string X2apicPrologue(Random rng, KernelFd vm, List<(KernelFd Fd, MappedRegion Run, int Id)> vcpus, bool full)
    {
        var text = new System.Text.StringBuilder("x2apic prologue: ");
        foreach (var (vcpu, _, id) in vcpus)
        {
            var entry = new kvm_cpuid_entry2 { function = 1, ecx = (1u << 21) | (rng.Next(2) == 0 ? 1u << 24 : 0) };
            text.Append(CultureInfo.InvariantCulture, $"v{id} cpuid ").Append(Describe(_kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_CPUID2, CpuidBuffer(1, [entry])))).Append(' ');
            if (rng.Next(4) == 0) continue;
            ulong value = 0xFEE0_0C00UL | (id == 0 ? 0x100UL : 0);
            text.Append("base ").Append(HostMsrs(vcpu, [0x1b], [value])).Append(" spiv ").Append(HostMsrs(vcpu, [0x80f], [0x1ff])).Append(' ');
        }
        if (rng.Next(2) == 0)
        {
            var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X2APIC_API };
            cap.args[0] = (ulong)(uint)rng.Next(4);
            text.Append(CultureInfo.InvariantCulture, $"x2apic_api {cap.args[0]} ").Append(Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Bytes(ref cap)))).Append(' ');
        }
        if (full && rng.Next(2) == 0)
        {
            var chip = new kvm_irqchip { chip_id = 2 };
            if (_kernel.Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, Bytes(ref chip)) == 0)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(Bytes(ref chip)[(8 + 24 + 8 * 20)..], 0x40UL | 1UL << 15);
                text.Append("pin 20 ").Append(Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_SET_IRQCHIP, Bytes(ref chip)))).Append(' ');
            }
            if (IrqcEventFd(0) is KernelFd e0 && IrqcEventFd(1) is KernelFd e1)
            {
                using var l0 = e0.Borrow();
                using var l1 = e1.Borrow();
                var irqfd = new kvm_irqfd { fd = (uint)l0.Number, gsi = 20, flags = KvmConstants.KVM_IRQFD_FLAG_RESAMPLE, resamplefd = (uint)l1.Number };
                text.Append("resample irqfd ").Append(Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_IRQFD, Bytes(ref irqfd))));
                // Half the time the whole round at once: a signal, vector 0x40 put in service on APIC 0 (KVM_SET_LAPIC:
                // ISR and TMR), a host EOI, then the resamplefd's count and the IOAPIC. (Without a KVM_RUN the vCPU never
                // ran vcpu_scan_ioapic, so ioapic_handled_vectors is empty and apic_set_eoi tells the IOAPIC nothing.)
                if (rng.Next(2) == 0 && vcpus.Find(v => v.Id == 0) is { Fd: { } v0 })
                {
                    Span<byte> one = stackalloc byte[8];
                    one[0] = 1;
                    text.Append(" signal ").Append(Describe(_kernel.Write(e0, one)));
                    WaitForIrqfdInject();
                    var lapic = new kvm_lapic_state();
                    if (_kernel.Ioctl(v0, KvmIoctls.KVM_GET_LAPIC, Bytes(ref lapic)) == 0)
                    {
                        var regs = Bytes(ref lapic);
                        regs[0x120] |= 1;
                        regs[0x1a0] |= 1;
                        text.Append(" isr ").Append(Describe(_kernel.Ioctl(v0, KvmIoctls.KVM_SET_LAPIC, regs)));
                    }
                    text.Append(" eoi ").Append(HostMsrs(v0, [0x80b], [0])).Append(" e1 ").Append(ReadCount(e1));
                    var back = new kvm_lapic_state();
                    if (_kernel.Ioctl(v0, KvmIoctls.KVM_GET_LAPIC, Bytes(ref back)) == 0) text.Append(" lapic ").Append(Convert.ToHexString(Bytes(ref back)[0x100..0x280]));
                    var after = new kvm_irqchip { chip_id = 2 };
                    if (_kernel.Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, Bytes(ref after)) == 0) text.Append(" ioapic ").Append(Convert.ToHexString(Bytes(ref after)[..(8 + 24 + 8 * 24)]));
                }
            }
        }
        return text.ToString();
    }

    private string X2apicCall(int which, Random rng, KernelFd vm, KernelFd vcpu)
    {
        switch (which)
        {
            case 0:
            {
                // x86.c kvm_vm_ioctl_enable_cap KVM_CAP_X2APIC_API: flags 1, 2, the host's 4 and 8 (4 only on a split
                // irqchip, not both), and now and then a bit beyond or flags on the struct.
                var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X2APIC_API, flags = rng.Next(16) == 0 ? 1u : 0 };
                cap.args[0] = rng.Next(8) == 0 ? 1UL << rng.Next(64) : (ulong)(uint)rng.Next(16);
                return string.Create(CultureInfo.InvariantCulture, $"x2apic_api {cap.args[0]:X} ") + Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Bytes(ref cap)));
            }
            case 1:
            {
                // A one-leaf CPUID: leaf 1 with ECX.x2APIC (bit 21) and ECX.TSC-deadline (bit 24) drawn.
                var entry = new kvm_cpuid_entry2 { function = 1, ecx = (rng.Next(4) != 0 ? 1u << 21 : 0) | (rng.Next(2) == 0 ? 1u << 24 : 0) };
                var table = CpuidBuffer(1, [entry]);
                return string.Create(CultureInfo.InvariantCulture, $"cpuid 0x{entry.ecx:X} ") + Describe(_kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_CPUID2, table));
            }
            case 2:
            {
                // IA32_APIC_BASE: enable (bit 11), EXTD (bit 10), BSP (bit 8), a moved base, reserved low or high bits.
                ulong value = (rng.Next(8) == 0 ? 0xFED0_0000UL : 0xFEE0_0000UL) | (rng.Next(4) != 0 ? 0x800UL : 0) | (rng.Next(2) == 0 ? 0x400UL : 0) | (rng.Next(2) == 0 ? 0x100UL : 0);
                if (rng.Next(10) == 0) value |= 1UL << rng.Next(0, 8);
                if (rng.Next(10) == 0) value |= 1UL << rng.Next(36, 64);
                if (rng.Next(3) == 0)
                {
                    var s = new kvm_sregs();
                    _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
                    s.apic_base = value;
                    long set = _kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_SREGS, Bytes(ref s));
                    var back = new kvm_sregs();
                    long get = _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref back));
                    return string.Create(CultureInfo.InvariantCulture, $"sregs apic_base 0x{value:X} {Describe(set)} read {(get == 0 ? $"0x{back.apic_base:X}" : Describe(get))} ") + HostMsrs(vcpu, [0x1b, 0x802, 0x80d]);
                }
                return string.Create(CultureInfo.InvariantCulture, $"apic_base 0x{value:X} ") + HostMsrs(vcpu, [0x1b], [value]) + " " + HostMsrs(vcpu, [0x1b, 0x802, 0x80d, 0x803]);
            }
            case 3:
            {
                // An x2APIC MSR from the host (kvm_x2apic_msr_write / kvm_x2apic_msr_read, host_initiated).
                uint index = rng.Next(12) switch { 0 => 0x7ff, 1 => 0x900, 2 => 0x800u + (uint)rng.Next(0x100), _ => X2apicRegister(rng) };
                if (rng.Next(3) == 0) return string.Create(CultureInfo.InvariantCulture, $"x2apic read 0x{index:X} ") + HostMsrs(vcpu, [index]);
                ulong value = X2apicValue(rng, index);
                return string.Create(CultureInfo.InvariantCulture, $"x2apic 0x{index:X}=0x{value:X} ") + HostMsrs(vcpu, [index], [value]) + " " + HostMsrs(vcpu, [index, 0x808, 0x80f, 0x832]);
            }
            case 4:
            {
                // IA32_TSC_DEADLINE (kvm_set_lapic_tscdeadline_msr), LVTT put in TSC-deadline mode first now and then.
                string lvtt = "";
                if (rng.Next(2) == 0)
                {
                    ulong mode = rng.Next(4) != 0 ? 0x40000UL : (ulong)(uint)rng.Next(3) << 17;
                    ulong lvt = mode | (rng.Next(2) == 0 ? 0x10000UL : 0) | (ulong)(uint)rng.Next(0x20, 0x100);
                    lvtt = string.Create(CultureInfo.InvariantCulture, $"lvtt 0x{lvt:X} ") + HostMsrs(vcpu, [0x832], [lvt]) + " ";
                }
                ulong deadline = rng.Next(3) switch { 0 => 0, 1 => (ulong)(uint)rng.Next(1, 101), _ => 10_000_000_000_000UL + (ulong)(uint)rng.Next() };
                return lvtt + string.Create(CultureInfo.InvariantCulture, $"deadline 0x{deadline:X} ") + HostMsrs(vcpu, [0x6e0], [deadline]) + " " + HostMsrs(vcpu, [0x6e0, 0x832]);
            }
            case 5:
            {
                // KVM_GET_LAPIC, the ID / LDR / an ISR+TMR vector changed, KVM_SET_LAPIC, KVM_GET_LAPIC (kvm_apic_state_fixup).
                var lapic = new kvm_lapic_state();
                long got = _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_LAPIC, Bytes(ref lapic));
                if (got != 0) return "lapic " + Describe(got);
                var regs = Bytes(ref lapic);
                uint id = (uint)rng.Next(0, 4);
                switch (rng.Next(5))
                {
                    case 0: BinaryPrimitives.WriteUInt32LittleEndian(regs[0x20..], id); break;
                    case 1: BinaryPrimitives.WriteUInt32LittleEndian(regs[0x20..], id << 24); break;
                    case 2: BinaryPrimitives.WriteUInt32LittleEndian(regs[0x20..], (uint)rng.Next()); break;
                }
                if (rng.Next(4) == 0) BinaryPrimitives.WriteUInt32LittleEndian(regs[0xd0..], (uint)rng.Next());
                if (rng.Next(3) == 0)
                {
                    int vector = rng.Next(2) == 0 ? 0x40 : rng.Next(0x40, 0x50);
                    regs[0x100 + (vector / 32) * 0x10 + (vector % 32) / 8] |= (byte)(1 << (vector % 8));
                    if (rng.Next(2) == 0) regs[0x180 + (vector / 32) * 0x10 + (vector % 32) / 8] |= (byte)(1 << (vector % 8));
                }
                long set = _kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_LAPIC, regs);
                var back = new kvm_lapic_state();
                long get = _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_LAPIC, Bytes(ref back));
                return "set lapic " + Describe(set) + " lapic " + (get == 0 ? Convert.ToHexString(Bytes(ref back)) : Describe(get));
            }
            case 6:
            {
                // KVM_SIGNAL_MSI to an x2APIC destination: bits 7:0 in address_lo 19:12, bits 31:8 in address_hi
                // (x86_msi_msg_get_destid with x2apic_format), the low byte of address_hi set now and then (invalid then).
                uint dest = rng.Next(8) switch { 0 => 0xFFFF_FFFFu, 1 => 0xFF, 2 => 0x100u * (uint)rng.Next(1, 4) + (uint)rng.Next(4), 3 => (uint)rng.Next(), _ => (uint)rng.Next(0, 4) };
                uint mode = rng.Next(3) == 0 ? (uint)rng.Next(0, 8) : 0;
                var msi = new kvm_msi
                {
                    address_lo = 0xFEE0_0000u | ((dest & 0xff) << 12) | (rng.Next(4) == 0 ? 4u : 0) | (rng.Next(6) == 0 ? 8u : 0),
                    address_hi = (dest & 0xFFFF_FF00u) | (rng.Next(6) == 0 ? (uint)rng.Next(1, 0x100) : 0),
                    data = (uint)rng.Next(0x20, 0x100) | (mode << 8) | (rng.Next(6) == 0 ? 0xC000u : 0),
                };
                string what = string.Create(CultureInfo.InvariantCulture, $"msi 0x{msi.address_hi:X}:{msi.address_lo:X}/0x{msi.data:X} ");
                long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_SIGNAL_MSI, Bytes(ref msi));
                return what + (rc >= 0 ? $"delivered {rc}" : Describe(rc));
            }
            case 7:
                return ResampleIrqfd(rng, vm);
            default:
            {
                // The resampling irqfds' observable side: the eventfds' counts (non-blocking reads), the IOAPIC pins,
                // after a host EOI now and then (MSR 0x80b in x2APIC mode: apic_set_eoi → kvm_ioapic_send_eoi →
                // kvm_notify_acked_irq → irqfd_resampler_ack).
                string eoi = rng.Next(2) == 0 ? "eoi " + HostMsrs(vcpu, [0x80b], [0]) + " " : "";
                var text = new System.Text.StringBuilder(eoi);
                for (int i = 0; i < IrqcEventFds; i++) text.Append(CultureInfo.InvariantCulture, $"e{i} ").Append(ReadCount(_irqcEventFds[i])).Append(' ');
                var chip = new kvm_irqchip { chip_id = 2 };
                long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, Bytes(ref chip));
                return text.Append("ioapic ").Append(rc == 0 ? Convert.ToHexString(Bytes(ref chip)) : Describe(rc)).ToString();
            }
        }
    }

    /// <summary>KVM_IRQFD with KVM_IRQFD_FLAG_RESAMPLE (or not), a signal of one of the session's eventfds, or an IOAPIC pin programmed.</summary>
    private string ResampleIrqfd(Random rng, KernelFd vm)
    {
        switch (rng.Next(4))
        {
            case 0:
            case 1:
            {
                uint flags = rng.Next(8) switch { 0 => 0, 1 => KvmConstants.KVM_IRQFD_FLAG_DEASSIGN | KvmConstants.KVM_IRQFD_FLAG_RESAMPLE, 2 => KvmConstants.KVM_IRQFD_FLAG_DEASSIGN, 3 => (uint)rng.Next(4, 16), _ => KvmConstants.KVM_IRQFD_FLAG_RESAMPLE };
                uint gsi = rng.Next(8) == 0 ? (uint)rng.Next(24, 4200) : (uint)rng.Next(0, 24);
                int fdSlot = rng.Next(IrqcEventFds + 1), resampleSlot = rng.Next(IrqcEventFds + 2);
                string what = string.Create(CultureInfo.InvariantCulture, $"irqfd e{fdSlot} gsi {gsi} flags {flags} resample e{resampleSlot} ");
                using var fdLease = fdSlot < IrqcEventFds && IrqcEventFd(fdSlot) is KernelFd efd ? efd.Borrow() : vm.Borrow();
                using var rsLease = resampleSlot < IrqcEventFds && IrqcEventFd(resampleSlot) is KernelFd rfd ? rfd.Borrow() : vm.Borrow();
                // Slot IrqcEventFds: the VM's descriptor (not an eventfd); slot IrqcEventFds + 1 of the resamplefd: none.
                var irqfd = new kvm_irqfd { fd = (uint)fdLease.Number, gsi = gsi, flags = flags, resamplefd = resampleSlot == IrqcEventFds + 1 ? NoSuchFd : (uint)rsLease.Number };
                return what + Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_IRQFD, Bytes(ref irqfd)));
            }
            case 2:
            {
                int slot = rng.Next(IrqcEventFds);
                var efd = IrqcEventFd(slot);
                if (efd is null) return "no eventfd";
                Span<byte> one = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(one, 1);
                long rc = _kernel.Write(efd, one);
                WaitForIrqfdInject();
                return string.Create(CultureInfo.InvariantCulture, $"signal e{slot} ") + Describe(rc);
            }
            default:
            {
                // IOAPIC pin 16–23 (or any) level-triggered, unmasked, to APIC 0–1 physical (ioapic.c kvm_ioapic_state).
                var chip = new kvm_irqchip { chip_id = 2 };
                long get = _kernel.Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, Bytes(ref chip));
                if (get != 0) return "pin " + Describe(get);
                int pin = rng.Next(4) == 0 ? rng.Next(0, 24) : rng.Next(16, 24);
                ulong entry = (ulong)(uint)rng.Next(0x40, 0x50) | (rng.Next(4) != 0 ? 1UL << 15 : 0) | (rng.Next(6) == 0 ? 1UL << 16 : 0) | ((ulong)(uint)rng.Next(0, 2) << 56);
                BinaryPrimitives.WriteUInt64LittleEndian(Bytes(ref chip)[(8 + 24 + 8 * pin)..], entry);
                return string.Create(CultureInfo.InvariantCulture, $"pin {pin}=0x{entry:X} ") + Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_SET_IRQCHIP, Bytes(ref chip)));
            }
        }
    }

    /// <summary>A non-blocking eventfd read: "ok N", or the errno (EAGAIN at 0).</summary>
    private string ReadCount(KernelFd? fd)
    {
        if (fd is null) return "none";
        Span<byte> counter = stackalloc byte[8];
        long rc = _kernel.Read(fd, counter);
        return rc == 8 ? "ok " + BinaryPrimitives.ReadUInt64LittleEndian(counter).ToString(CultureInfo.InvariantCulture) : Describe(rc);
    }

    /// <summary>
    /// KVM_GET_MSRS of <paramref name="indices"/>, or KVM_SET_MSRS of them with <paramref name="values"/>: the count
    /// processed and (for a read) the values read.
    /// </summary>
    private string HostMsrs(KernelFd vcpu, uint[] indices, ulong[]? values = null)
    {
        var entries = new kvm_msr_entry[indices.Length];
        for (int i = 0; i < indices.Length; i++) entries[i] = new kvm_msr_entry { index = indices[i], data = values?[i] ?? 0 };
        var buffer = MsrBuffer((uint)indices.Length, entries);
        long rc = _kernel.Ioctl(vcpu, values is null ? KvmIoctls.KVM_GET_MSRS : KvmIoctls.KVM_SET_MSRS, buffer);
        if (values is not null || rc < 0) return (values is null ? "get " : "set ") + Describe(rc);
        var back = MemoryMarshal.Cast<byte, kvm_msr_entry>(buffer.AsSpan(Marshal.SizeOf<kvm_msrs>()));
        var text = "get " + Describe(rc);
        for (int i = 0; i < Math.Min((int)rc, indices.Length); i++) text += string.Create(CultureInfo.InvariantCulture, $" {back[i].index:X}=0x{back[i].data:X}");
        return text;
    }

    /// <summary>An x2APIC register MSR (lapic.c kvm_x2apic_msr_write's x2APIC view: MSR 0x800 + offset / 16).</summary>
    private static uint X2apicRegister(Random rng)
    {
        uint[] regs = [0x802, 0x803, 0x808, 0x80a, 0x80b, 0x80d, 0x80e, 0x80f, 0x810, 0x818, 0x820, 0x828, 0x82f, 0x830, 0x831, 0x832, 0x833, 0x834, 0x835, 0x836, 0x837, 0x838, 0x839, 0x83e, 0x83f];
        return regs[rng.Next(regs.Length)];
    }

    /// <summary>A value for an x2APIC register write; TMICT (0x838) only 0, so no APIC timer is ever armed.</summary>
    private static ulong X2apicValue(Random rng, uint index)
    {
        if (index == 0x838) return 0;
        if (rng.Next(8) == 0) return (ulong)rng.NextInt64() | (rng.Next(2) == 0 ? 1UL << 63 : 0);
        return index switch
        {
            0x808 => (ulong)(uint)rng.Next(0, 0x100),
            0x80b => rng.Next(4) == 0 ? 1UL : 0,
            0x80f => (ulong)(uint)rng.Next(0x20, 0x100) | (rng.Next(4) != 0 ? 0x100UL : 0) | (rng.Next(4) == 0 ? 0x1000UL : 0),
            // ICR: vector, delivery mode, destination mode, level, trigger, shorthand; destination in 63:32.
            0x830 => (ulong)(uint)rng.Next(0x20, 0x100) | ((ulong)(uint)rng.Next(0, 8) << 8) | ((ulong)(uint)rng.Next(0, 2) << 11) | ((ulong)(uint)rng.Next(0, 2) << 14)
                | ((ulong)(uint)rng.Next(0, 2) << 15) | ((ulong)(uint)rng.Next(0, 4) << 18) | ((ulong)(rng.Next(4) == 0 ? 0xFFFF_FFFFu : (uint)rng.Next(0, 4)) << 32),
            0x832 or 0x833 or 0x834 or 0x835 or 0x836 or 0x837 or 0x82f => (rng.Next(2) == 0 ? 0x10000UL : 0) | ((ulong)(uint)rng.Next(0, 8) << 8) | (ulong)(uint)rng.Next(0x20, 0x100) | (index == 0x832 ? (ulong)(uint)rng.Next(0, 4) << 17 : 0),
            0x83e => (ulong)(uint)rng.Next(0, 16),
            0x83f => (ulong)(uint)rng.Next(0, 0x100),
            _ => (ulong)(uint)rng.Next(0, 0x100),
        };
    }
}
