// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// The x86 in-kernel irqchip (Documentation/virt/kvm/api.rst 4.24 KVM_CREATE_IRQCHIP, 4.25 KVM_IRQ_LINE, 4.26/4.27
/// KVM_GET/SET_IRQCHIP, 4.52 KVM_SET_GSI_ROUTING, 4.70 KVM_SIGNAL_MSI, 7.8 KVM_CAP_SPLIT_IRQCHIP). Create it before
/// the first vCPU; with it, <see cref="AssignIrqFd"/> works and each vCPU has a local APIC (<see cref="Vcpu.GetLapic"/>).
/// </summary>
public sealed partial class Vm
{
    /// <summary>
    /// The irqchip this SDK created on the VM (<see cref="CreateIrqchip"/>, <see cref="EnableSplitIrqchip"/>);
    /// <see cref="IrqchipMode.None"/> otherwise (also when it was created through <see cref="Handle"/> directly).
    /// </summary>
    public IrqchipMode Irqchip { get; private set; }

    /// <summary>
    /// KVM_CREATE_IRQCHIP: an in-kernel PIC pair, IOAPIC and (for each vCPU created afterwards) local APIC, with the
    /// default routing (GSI 0–15 to PIC and IOAPIC pins, 16–23 to the IOAPIC). With it KVM_INTERRUPT is refused (ENXIO)
    /// and HLT no longer exits: the vCPU waits in the kernel for an interrupt.
    /// </summary>
    /// <exception cref="KvmException">EEXIST: the VM already has an irqchip (full or split); EINVAL: a vCPU exists;
    /// ENOTTY: a TDX VM (protected EOIs) or an architecture without it.</exception>
    public void CreateIrqchip()
    {
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL), "KVM_CREATE_IRQCHIP", "");
        Irqchip = IrqchipMode.Full;
    }

    /// <summary>
    /// KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP): local APICs in the kernel, PIC and IOAPIC left to the VMM, which routes
    /// its pins through MSI routes or <see cref="SignalMsi"/>; <paramref name="ioapicPins"/> GSIs are reserved for
    /// the userspace IOAPIC (its EOIs exit with KVM_EXIT_IOAPIC_EOI). A TDX VM needs this before its first vCPU.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="ioapicPins"/> is negative.</exception>
    /// <exception cref="KvmException">EEXIST: an irqchip or a vCPU exists; EINVAL: more than 4096 pins, or no such
    /// capability (<see cref="KvmCapabilityException"/>).</exception>
    public void EnableSplitIrqchip(int ioapicPins)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ioapicPins);
        EnableCapability(KvmCaps.KVM_CAP_SPLIT_IRQCHIP, (ulong)ioapicPins);
        Irqchip = IrqchipMode.Split;
    }

    /// <summary>
    /// KVM_IRQ_LINE_STATUS: sets <paramref name="gsi"/>'s line to <paramref name="level"/> on every route of the GSI and
    /// returns the kernel's status: -1 when no route took it (masked everywhere, or no route), 0 when it was already
    /// pending (coalesced), otherwise how many routes delivered or latched it (a line going low counts too). An edge
    /// interrupt is a raise followed by a lower.
    /// </summary>
    /// <exception cref="KvmException">ENXIO: the VM has no in-kernel irqchip.</exception>
    public int SetIrqLine(uint gsi, bool level)
    {
        var ev = new kvm_irq_level { irq = gsi, level = level ? 1u : 0u };
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_IRQ_LINE_STATUS, KvmCall.Bytes(ref ev)),
            "KVM_IRQ_LINE_STATUS", $"gsi={gsi} level={(level ? 1 : 0)}");
        return ev.status;
    }

    /// <summary>KVM_GET_IRQCHIP for one PIC.</summary>
    /// <exception cref="ArgumentException"><paramref name="chip"/> is the IOAPIC.</exception>
    /// <exception cref="KvmException">ENXIO: no full in-kernel irqchip (none, or split).</exception>
    public PicState GetPicState(IrqchipId chip)
    {
        if (chip == IrqchipId.Ioapic) throw new ArgumentException("the IOAPIC's state is GetIoapicState", nameof(chip));
        var c = GetIrqchipRaw(chip);
        return new PicState(MemoryMarshal.Read<kvm_pic_state>(c.chip));
    }

    /// <summary>KVM_GET_IRQCHIP for the IOAPIC.</summary>
    /// <exception cref="KvmException">ENXIO: no full in-kernel irqchip.</exception>
    public IoapicState GetIoapicState()
    {
        var c = GetIrqchipRaw(IrqchipId.Ioapic);
        return new IoapicState(MemoryMarshal.Read<kvm_ioapic_state>(c.chip));
    }

    /// <summary>KVM_SET_IRQCHIP for one PIC: its registers as given.</summary>
    /// <exception cref="ArgumentException"><paramref name="chip"/> is the IOAPIC.</exception>
    /// <exception cref="KvmException">ENXIO: no full in-kernel irqchip.</exception>
    public void SetPicState(IrqchipId chip, PicState state)
    {
        if (chip == IrqchipId.Ioapic) throw new ArgumentException("the IOAPIC's state is SetIoapicState", nameof(chip));
        var c = new kvm_irqchip { chip_id = (uint)chip };
        var s = state.State;
        MemoryMarshal.Write(c.chip, in s);
        SetIrqchipRaw(c);
    }

    /// <summary>KVM_SET_IRQCHIP for the IOAPIC; pins set in its irr are raised again.</summary>
    /// <exception cref="KvmException">ENXIO: no full in-kernel irqchip.</exception>
    public void SetIoapicState(IoapicState state)
    {
        var c = new kvm_irqchip { chip_id = (uint)IrqchipId.Ioapic };
        var s = state.State;
        MemoryMarshal.Write(c.chip, in s);
        SetIrqchipRaw(c);
    }

    /// <summary>Raw KVM_GET_IRQCHIP: the struct as the kernel returns it.</summary>
    /// <exception cref="KvmException">ENXIO: no full in-kernel irqchip; EINVAL: an unknown chip id.</exception>
    public kvm_irqchip GetIrqchipRaw(IrqchipId chip)
    {
        var c = new kvm_irqchip { chip_id = (uint)chip };
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_IRQCHIP, KvmCall.Bytes(ref c)), "KVM_GET_IRQCHIP", $"chip_id={(uint)chip}");
        return c;
    }

    /// <summary>Raw KVM_SET_IRQCHIP.</summary>
    /// <exception cref="KvmException">ENXIO: no full in-kernel irqchip; EINVAL: an unknown chip id.</exception>
    public void SetIrqchipRaw(kvm_irqchip chip) =>
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_IRQCHIP, KvmCall.Bytes(ref chip)), "KVM_SET_IRQCHIP", $"chip_id={chip.chip_id}");

    /// <summary>
    /// KVM_SET_GSI_ROUTING: replaces the whole routing table with <paramref name="routes"/> (an empty list removes every
    /// route, the default PIC/IOAPIC ones too). A GSI may go to each irqchip once, or to exactly one MSI.
    /// </summary>
    /// <exception cref="KvmException">EINVAL: no in-kernel irqchip, more than 4096 routes, a GSI ≥ 4096, a bad type,
    /// chip, pin or flag, a GSI routed twice to one chip or to an MSI and something else, an irqchip route on a split
    /// irqchip.</exception>
    public void SetGsiRouting(IReadOnlyList<GsiRoute> routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        int header = Marshal.SizeOf<kvm_irq_routing>(), entry = Marshal.SizeOf<kvm_irq_routing_entry>();
        var buffer = new byte[header + routes.Count * entry];
        var head = new kvm_irq_routing { nr = (uint)routes.Count };
        MemoryMarshal.Write(buffer, in head);
        for (int i = 0; i < routes.Count; i++)
        {
            var e = routes[i].Entry;
            MemoryMarshal.Write(buffer.AsSpan(header + i * entry), in e);
        }
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_GSI_ROUTING, buffer), "KVM_SET_GSI_ROUTING", $"nr={routes.Count}");
    }

    /// <summary>
    /// KVM_SIGNAL_MSI: sends one MSI (x86: <paramref name="address"/> 0xFEE00000 | destination APIC ID &lt;&lt; 12,
    /// bit 2 logical; <paramref name="data"/> bits 7:0 the vector, 10:8 the delivery mode, 15 level) and returns what
    /// the kernel returns: the number of local APICs that accepted it (0: e.g. the destination's APIC is
    /// software-disabled), or -1 when no APIC could take it (the ioctl's -1, which C reads as errno EPERM). arm64 (an ITS,
    /// <see cref="Arm64.Arm64Vgic.CreateVgicIts"/>): <paramref name="address"/> is the ITS's GITS_TRANSLATER, <paramref name="data"/>
    /// the event ID and <paramref name="devid"/> required; 1 when the LPI was raised, 0 when the ITS has no mapping for it.
    /// </summary>
    /// <exception cref="KvmException">EINVAL: no in-kernel irqchip, or flags other than the devid one (arm64: no devid,
    /// or an address outside every ITS); ENODEV: arm64 without an ITS; EBUSY: the ITS or the target's LPIs are disabled.</exception>
    public int SignalMsi(ulong address, uint data, uint? devid = null)
    {
        var msi = new kvm_msi { address_lo = (uint)address, address_hi = (uint)(address >> 32), data = data };
        if (devid is uint d)
        {
            msi.flags = KvmConstants.KVM_MSI_VALID_DEVID;
            msi.devid = d;
        }
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_SIGNAL_MSI, KvmCall.Bytes(ref msi));
        // irq.c kvm_set_msi → kvm_irq_delivery_to_apic: -1 means "no destination", not an errno.
        if (rc == -(long)Errno.EPERM) return -1;
        KvmCall.Check(rc, "KVM_SIGNAL_MSI", $"address=0x{address:X} data=0x{data:X}{(devid is uint v ? $" devid={v}" : "")}");
        return (int)rc;
    }
}
