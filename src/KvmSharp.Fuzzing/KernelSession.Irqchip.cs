// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.Irqchip"/>: one irqchip session (<see cref="IrqchipOps"/>) on a VM of its own, closed at the end.
/// Descriptor numbers never appear in a result.
/// </summary>
public sealed partial class KernelSession
{
    private string Irqchip(FuzzOp op)
    {
        if (op.E == IrqchipOps.GuestProgrammed) return TinyGuestRun.RunIrqchipGuest(_kernel, Fd(op.Target), op.A);
        var rng = new Random(unchecked((int)op.A ^ (int)(op.A >> 32)));
        long vmRc = _kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Describe(vmRc);
        using var vm = _kernel.Adopt((int)vmRc);
        var text = new StringBuilder();
        var vcpus = new List<(KernelFd Fd, MappedRegion Run, int Id)>();
        try
        {
            // vCPUs before the irqchip (then KVM_CREATE_IRQCHIP is EINVAL and they have no APIC) or after it.
            bool vcpusFirst = rng.Next(5) == 0;
            if (vcpusFirst) AddVcpu(vm, vcpus, 0, text);
            int mode = rng.Next(3);
            if (mode == 1) text.Append("create ").Append(Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL))).Append(", ");
            if (mode == 2)
            {
                var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_SPLIT_IRQCHIP };
                cap.args[0] = rng.Next(6) switch { 0 => 0, 1 => 4096, 2 => 4097, _ => 24 };
                text.Append(CultureInfo.InvariantCulture, $"split {cap.args[0]} ").Append(Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Bytes(ref cap)))).Append(", ");
            }
            if (!vcpusFirst) AddVcpu(vm, vcpus, 0, text);
            if (rng.Next(2) == 0) AddVcpu(vm, vcpus, rng.Next(1, 4), text);
            if (vcpus.Count == 0) return text.ToString();
            if (mode != 0 && rng.Next(2) == 0) text.Append(X2apicPrologue(rng, vm, vcpus, full: mode == 1)).Append(", ");
            // The PIT calls (KernelSession.Pit.cs) come from a stream of their own: the other calls are the seed's as before.
            var pit = PitPrologue(op.A, vm, fullIrqchip: mode == 1, text);
            for (int i = 0; i < IrqchipOps.Calls; i++)
            {
                PitBetweenCalls(pit, vm, text);
                var (vcpu, run, id) = vcpus[rng.Next(vcpus.Count)];
                text.Append(IrqchipCall(rng, vm, vcpu, run, id)).Append(", ");
            }
            return text.ToString();
        }
        finally
        {
            DisposeIrqcEventFds();
            foreach (var (fd, run, _) in vcpus)
            {
                run.Dispose();
                fd.Dispose();
            }
        }
    }

    /// <summary>KVM_CREATE_VCPU, and its kvm_run page mapped once (a mapping may be shorter than KVM_GET_VCPU_MMAP_SIZE).</summary>
    private void AddVcpu(KernelFd vm, List<(KernelFd Fd, MappedRegion Run, int Id)> vcpus, int id, StringBuilder text)
    {
        long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, (ulong)id);
        text.Append(CultureInfo.InvariantCulture, $"vcpu {id} ").Append(rc < 0 ? Describe(rc) : "ok").Append(", ");
        if (rc < 0) return;
        var fd = _kernel.Adopt((int)rc);
        long mapped = MappedRegion.Map(_kernel, fd, (ulong)Environment.SystemPageSize, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED, 0, out var run);
        if (mapped < 0)
        {
            fd.Dispose();
            text.Append("mmap ").Append(Describe(mapped)).Append(", ");
            return;
        }
        vcpus.Add((fd, run!, id));
    }

    private string IrqchipCall(Random rng, KernelFd vm, KernelFd vcpu, MappedRegion run, int vcpuId)
    {
        int pick = rng.Next(18);
        if (pick >= 10) return string.Create(CultureInfo.InvariantCulture, $"[v{vcpuId}] ") + X2apicCall(pick - 10, rng, vm, vcpu);
        switch (pick)
        {
            case 0:
            {
                var line = new kvm_irq_level { irq = (uint)(rng.Next(8) == 0 ? rng.Next(24, 5000) : rng.Next(0, 24)), level = (uint)rng.Next(rng.Next(8) == 0 ? 4 : 2) };
                string what = string.Create(CultureInfo.InvariantCulture, $"line {line.irq}={line.level} ");
                long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_IRQ_LINE_STATUS, Bytes(ref line));
                // On success the kernel writes the status over irq.
                return what + (rc == 0 ? $"status {(int)line.irq}" : Describe(rc));
            }
            case 1:
            {
                var chip = new kvm_irqchip { chip_id = (uint)rng.Next(0, 4) };
                string what = string.Create(CultureInfo.InvariantCulture, $"get chip {chip.chip_id} ");
                long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_GET_IRQCHIP, Bytes(ref chip));
                return what + (rc == 0 ? Convert.ToHexString(Bytes(ref chip)) : Describe(rc));
            }
            case 2:
                return "routing " + Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_SET_GSI_ROUTING, RoutingTable(rng)));
            case 3:
            {
                // Every delivery mode, both trigger and level bits, physical / logical destinations 0–3 and broadcast,
                // the redirect hint, and now and then an address outside the 0xFEExxxxx window or random low bits
                // (the session-11 divergences — the APIC map, the redirect hint — are modelled since).
                uint dest = rng.Next(6) == 0 ? 0xffu : (uint)rng.Next(0, rng.Next(4) == 0 ? 16 : 4);
                uint address = (rng.Next(8) == 0 ? (uint)rng.Next() & 0xFFF0_0FF0u : 0xFEE0_0000u) | (dest << 12)
                    | (rng.Next(4) == 0 ? 4u : 0) | (rng.Next(6) == 0 ? 8u : 0);
                uint mode = rng.Next(3) == 0 ? (uint)rng.Next(0, 8) : (uint)rng.Next(0, 2);
                var msi = new kvm_msi
                {
                    address_lo = address,
                    data = (uint)rng.Next(0x10, 0x100) | (mode << 8) | (rng.Next(6) == 0 ? 0x8000u : 0) | (rng.Next(6) == 0 ? 0x4000u : 0),
                    flags = rng.Next(10) == 0 ? (uint)rng.Next(1, 4) : 0,
                };
                string what = string.Create(CultureInfo.InvariantCulture, $"msi 0x{msi.address_lo:X}/0x{msi.data:X} ");
                long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_SIGNAL_MSI, Bytes(ref msi));
                return what + (rc >= 0 ? $"delivered {rc}" : Describe(rc));
            }
            case 4:
            {
                var lapic = new kvm_lapic_state();
                long rc = _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_LAPIC, Bytes(ref lapic));
                return "lapic " + (rc == 0 ? Convert.ToHexString(Bytes(ref lapic)) : Describe(rc));
            }
            case 5:
            {
                // CR8 through the special registers: with an in-kernel APIC it is the TPR (kvm_set_cr8 / kvm_get_cr8).
                var s = new kvm_sregs();
                _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
                s.cr8 = (ulong)rng.Next(0, rng.Next(8) == 0 ? 64 : 16);
                long set = _kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_SREGS, Bytes(ref s));
                var back = new kvm_sregs();
                long get = _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref back));
                return string.Create(CultureInfo.InvariantCulture, $"cr8 {s.cr8} {Describe(set)} read {(get == 0 ? back.cr8.ToString(CultureInfo.InvariantCulture) : Describe(get))}");
            }
            case 6:
                return "run " + RunOnce(vcpu, run);
            case 7:
            {
                // The latched INIT (smi.latched_init with KVM_VCPUEVENT_VALID_SMM) and the SIPI vector, then the events back.
                var ev = new kvm_vcpu_events
                {
                    flags = rng.Next(3) switch { 0 => KvmVcpuEvents.KVM_VCPUEVENT_VALID_SMM, 1 => KvmVcpuEvents.KVM_VCPUEVENT_VALID_SIPI_VECTOR, _ => 0 },
                    smi_latched_init = (byte)rng.Next(0, 3),
                    sipi_vector = (uint)rng.Next(0, 0x100),
                };
                long set = _kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_VCPU_EVENTS, Bytes(ref ev));
                return string.Create(CultureInfo.InvariantCulture, $"events flags={ev.flags} latched={ev.smi_latched_init} {Describe(set)} ") + GetEvents(vcpu);
            }
            case 8:
                return "events " + GetEvents(vcpu);
            default:
            {
                // KVM_GET_MP_STATE runs kvm_apic_accept_events: a pending INIT resets the vCPU, a SIPI starts an
                // INIT_RECEIVED one; the registers show it. Now and then a state is set first.
                string what = "";
                if (rng.Next(3) == 0)
                {
                    var set = new kvm_mp_state { mp_state = (uint)rng.Next(0, 10) };
                    what = string.Create(CultureInfo.InvariantCulture, $"set mp {set.mp_state} {Describe(_kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_MP_STATE, Bytes(ref set)))} ");
                }
                var mp = new kvm_mp_state();
                long rc = _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_MP_STATE, Bytes(ref mp));
                var regs = new kvm_regs();
                var sregs = new kvm_sregs();
                _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_REGS, Bytes(ref regs));
                _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref sregs));
                return what + (rc == 0
                    ? string.Create(CultureInfo.InvariantCulture, $"mp {mp.mp_state} rip={regs.rip:X} rax={regs.rax:X} rdx={regs.rdx:X} rflags={regs.rflags:X} cs={sregs.cs.selector:X}/{sregs.cs.@base:X} cr0={sregs.cr0:X} efer={sregs.efer:X}")
                    : "mp " + Describe(rc));
            }
        }
    }

    /// <summary>KVM_GET_VCPU_EVENTS as bytes.</summary>
    private string GetEvents(KernelFd vcpu)
    {
        var ev = new kvm_vcpu_events();
        long rc = _kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_VCPU_EVENTS, Bytes(ref ev));
        return rc == 0 ? Convert.ToHexString(Bytes(ref ev)) : Describe(rc);
    }

    /// <summary>KVM_RUN with immediate_exit set: EINTR, and the run page's ready / if / cr8 as post_kvm_run_save left them.</summary>
    private string RunOnce(KernelFd vcpu, MappedRegion run)
    {
        run.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = 1;
        long r = _kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
        var page = run.GetSpan(0, KvmRunLayout.cr8 + 8);
        return string.Create(CultureInfo.InvariantCulture,
            $"{Describe(r)} ready={page[KvmRunLayout.ready_for_interrupt_injection]} if={page[KvmRunLayout.if_flag]} cr8={BitConverter.ToUInt64(page[KvmRunLayout.cr8..])}");
    }

    /// <summary>struct kvm_irq_routing with 0–3 entries: PIC / IOAPIC pins or MSIs, some invalid.</summary>
    private static byte[] RoutingTable(Random rng)
    {
        int n = rng.Next(0, 4);
        int header = Unsafe.SizeOf<kvm_irq_routing>();
        int entrySize = Unsafe.SizeOf<kvm_irq_routing_entry>();
        byte[] table = new byte[header + n * entrySize];
        var head = new kvm_irq_routing { nr = (uint)n, flags = rng.Next(10) == 0 ? 1u : 0 };
        Bytes(ref head).CopyTo(table);
        for (int i = 0; i < n; i++)
        {
            var entry = new kvm_irq_routing_entry { gsi = (uint)rng.Next(0, 32), flags = rng.Next(12) == 0 ? 1u : 0 };
            if (rng.Next(3) == 0)
            {
                entry.type = KvmConstants.KVM_IRQ_ROUTING_MSI;
                entry.u[0] = 0xFEE0_0000u | ((uint)rng.Next(0, 4) << 12);
                entry.u[2] = (uint)rng.Next(0x10, 0x100);
                // address_hi: x2APIC destination bits 31:8, its low byte now and then (kvm_msi_route_invalid with x2apic_format).
                if (rng.Next(3) == 0) entry.u[1] = ((uint)rng.Next(0, 4) << 8) | (rng.Next(4) == 0 ? (uint)rng.Next(1, 0x100) : 0);
            }
            else
            {
                entry.type = rng.Next(16) == 0 ? (uint)rng.Next(3, 9) : KvmConstants.KVM_IRQ_ROUTING_IRQCHIP;
                entry.u[0] = (uint)rng.Next(0, rng.Next(8) == 0 ? 4 : 3);
                entry.u[1] = (uint)rng.Next(0, rng.Next(8) == 0 ? 40 : 24);
            }
            Bytes(ref entry).CopyTo(table.AsSpan(header + i * entrySize));
        }
        return table;
    }
}
