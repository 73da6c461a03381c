// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>Which register frame an access addresses: the distributor, or a vCPU's redistributor (RD_base + SGI_base).</summary>
internal enum VgicFrame
{
    Dist,
    Redist,
}

/// <summary>
/// The GICv3 register frames of arch/arm64/kvm/vgic/vgic-mmio-v3.c (vgic_v3_dist_registers, vgic_v3_rd_registers)
/// with the generic accessors of vgic-mmio.c, shared by the guest's MMIO (dispatch_mmio_read/write) and userspace's
/// KVM_DEV_ARM_VGIC_GRP_DIST_REGS / REDIST_REGS (vgic_uaccess). Offsets are relative to the frame (the accessors'
/// VGIC_ADDR_TO_INTID masks the base away in the kernel). The LPI registers (GICR_CTLR.EnableLPIs, INVLPIR, INVALLR)
/// act only with an ITS (VgicLpi); without one they are RAZ/WI.
/// Callers hold the <see cref="VgicDist"/> lock.
/// </summary>
internal static class VgicMmio
{
    [Flags]
    private enum Acc { B8 = 1, B32 = 4, B64 = 8 }

    private enum Reg { Misc, Rao, Raz, Group, SEnable, CEnable, SPend, CPend, SActive, CActive, Priority, Config, Irouter, IdRegs, RCtlr, RIidr, RTyper, PropBase, PendBase, InvLpi, InvAll }

    private sealed record Region(uint Offset, uint Len, int Bpi, Acc Access, Reg Kind);

    /// <summary>REGISTER_DESC_WITH_BITS_PER_IRQ_SHARED: the private interrupts' part of a distributor register is RAZ/WI.</summary>
    private static IEnumerable<Region> Shared(uint off, int bpi, Acc acc, Reg kind) =>
    [
        new(off, (uint)(bpi * 32 / 8), bpi, acc, Reg.Raz),
        new(off + (uint)(bpi * 32 / 8), (uint)(bpi * (1024 - 32) / 8), bpi, acc, kind),
    ];

    // vgic_v3_dist_registers (GICD_* offsets from linux/irqchip/arm-gic-v3.h).
    private static readonly Region[] DistRegions =
    [
        new(0x0000, 16, 0, Acc.B32, Reg.Misc),       // GICD_CTLR, TYPER, IIDR, TYPER2
        new(0x0010, 4, 0, Acc.B32, Reg.Rao),         // GICD_STATUSR: vgic_mmio_read_rao / write_wi
        .. Shared(0x0080, 1, Acc.B32, Reg.Group),    // GICD_IGROUPR
        .. Shared(0x0100, 1, Acc.B32, Reg.SEnable),  // GICD_ISENABLER
        .. Shared(0x0180, 1, Acc.B32, Reg.CEnable),  // GICD_ICENABLER
        .. Shared(0x0200, 1, Acc.B32, Reg.SPend),    // GICD_ISPENDR
        .. Shared(0x0280, 1, Acc.B32, Reg.CPend),    // GICD_ICPENDR
        .. Shared(0x0300, 1, Acc.B32, Reg.SActive),  // GICD_ISACTIVER
        .. Shared(0x0380, 1, Acc.B32, Reg.CActive),  // GICD_ICACTIVER
        .. Shared(0x0400, 8, Acc.B32 | Acc.B8, Reg.Priority), // GICD_IPRIORITYR
        .. Shared(0x0800, 8, Acc.B32 | Acc.B8, Reg.Raz),      // GICD_ITARGETSR (RAZ/WI with ARE)
        .. Shared(0x0C00, 2, Acc.B32, Reg.Config),   // GICD_ICFGR
        .. Shared(0x0D00, 1, Acc.B32, Reg.Raz),      // GICD_IGRPMODR
        .. Shared(0x6000, 64, Acc.B64 | Acc.B32, Reg.Irouter), // GICD_IROUTER
        new(0xFFD0, 48, 0, Acc.B32, Reg.IdRegs),     // GICD_IDREGS
    ];

    // vgic_v3_rd_registers: RD_base, then SGI_base at SZ_64K.
    private static readonly Region[] RedistRegions =
    [
        new(0x0000, 4, 0, Acc.B32, Reg.RCtlr),       // GICR_CTLR
        new(0x0004, 4, 0, Acc.B32, Reg.RIidr),       // GICR_IIDR
        new(0x0008, 8, 0, Acc.B64 | Acc.B32, Reg.RTyper), // GICR_TYPER (uaccess write: WI)
        new(0x0010, 4, 0, Acc.B32, Reg.Raz),         // GICR_STATUSR
        new(0x0014, 4, 0, Acc.B32, Reg.Raz),         // GICR_WAKER: RAZ/WI
        new(0x0070, 8, 0, Acc.B64 | Acc.B32, Reg.PropBase), // GICR_PROPBASER
        new(0x0078, 8, 0, Acc.B64 | Acc.B32, Reg.PendBase), // GICR_PENDBASER
        new(0x00A0, 8, 0, Acc.B64 | Acc.B32, Reg.InvLpi), // GICR_INVLPIR: RAZ, a write needs LPIs enabled (VgicLpi)
        new(0x00B0, 8, 0, Acc.B64 | Acc.B32, Reg.InvAll), // GICR_INVALLR
        new(0x00C0, 4, 0, Acc.B32, Reg.Raz),         // GICR_SYNCR: syncr_busy is never raised without an ITS
        new(0xFFD0, 48, 0, Acc.B32, Reg.IdRegs),     // GICR_IDREGS
        new(0x10080, 4, 0, Acc.B32, Reg.Group),      // GICR_IGROUPR0
        new(0x10100, 4, 0, Acc.B32, Reg.SEnable),    // GICR_ISENABLER0
        new(0x10180, 4, 0, Acc.B32, Reg.CEnable),    // GICR_ICENABLER0
        new(0x10200, 4, 0, Acc.B32, Reg.SPend),      // GICR_ISPENDR0
        new(0x10280, 4, 0, Acc.B32, Reg.CPend),      // GICR_ICPENDR0
        new(0x10300, 4, 0, Acc.B32, Reg.SActive),    // GICR_ISACTIVER0
        new(0x10380, 4, 0, Acc.B32, Reg.CActive),    // GICR_ICACTIVER0
        new(0x10400, 32, 0, Acc.B32 | Acc.B8, Reg.Priority), // GICR_IPRIORITYR0..7
        new(0x10C00, 8, 0, Acc.B32, Reg.Config),     // GICR_ICFGR0/1
        new(0x10D00, 4, 0, Acc.B32, Reg.Raz),        // GICR_IGRPMODR0
        new(0x10E00, 4, 0, Acc.B32, Reg.Raz),        // GICR_NSACR
    ];

    private const uint PidR2 = 0xFFE8;

    /// <summary>vgic_get_mmio_region: the region containing <paramref name="offset"/> and check_region's width,
    /// alignment and "Do we access a non-allocated IRQ?" tests; null when the access has no register.</summary>
    private static Region? Find(Kvm kvm, VgicFrame frame, uint offset, int len)
    {
        var regions = frame == VgicFrame.Dist ? DistRegions : RedistRegions;
        var region = regions.FirstOrDefault(r => offset >= r.Offset && offset < r.Offset + r.Len);
        if (region is null) return null;
        Acc flag = len switch { 1 => Acc.B8, 4 => Acc.B32, 8 => Acc.B64, _ => 0 };
        if ((region.Access & flag) == 0 || offset % (uint)len != 0) return null;
        if (region.Bpi == 0) return region;
        return ToIntid(offset, region.Bpi) < Arm64VmState.Of(kvm).Vgic.NrSpis + 32 ? region : null;
    }

    /// <summary>vgic_v3_has_attr_regs: an aligned 32-bit access with a register behind it.</summary>
    public static bool HasRegister(Kvm kvm, VgicFrame frame, uint offset) =>
        (offset & 3) == 0 && Find(kvm, frame, offset, 4) is not null;

    /// <summary>VGIC_ADDR_TO_INTID(addr, bits): ((addr &amp; (bits * 1024 / 8 - 1)) * 8) &gt;&gt; ilog2(bits).</summary>
    private static int ToIntid(uint offset, int bpi) => (int)((offset & (uint)(bpi * 1024 / 8 - 1)) * 8 / (uint)bpi);

    /// <summary>vgic_get_irq: a private interrupt of <paramref name="vcpu"/>, an allocated SPI, or a mapped LPI; null beyond.</summary>
    public static VgicIrq? GetIrq(Kvm kvm, KvmVcpu? vcpu, int intid)
    {
        if (intid < 32) return vcpu is null ? null : VgicCpu.Of(vcpu).Private[intid];
        if (intid >= VgicLpi.MinLpi) return Arm64VmState.Of(kvm).Vgic.Lpis.TryGetValue(intid, out var lpi) ? lpi.Irq : null;
        var spis = Arm64VmState.Of(kvm).Vgic.Spis;
        return intid - 32 < spis.Length ? spis[intid - 32] : null;
    }

    /// <summary>
    /// dispatch_mmio_read / vgic_uaccess_read: a missing register reads as 0 ("memset(val, 0, len)"; "*val = 0").
    /// <paramref name="vcpu"/> is the redistributor's vCPU (iodev->redist_vcpu) or, for the distributor, the
    /// accessing one (vCPU 0 for userspace).
    /// </summary>
    public static ulong Read(Kvm kvm, KvmVcpu vcpu, VgicFrame frame, uint offset, int len, bool uaccess)
    {
        var region = Find(kvm, frame, offset, len);
        if (region is null) return 0;
        var dist = Arm64VmState.Of(kvm).Vgic;
        int bits = len * 8;
        switch (region.Kind)
        {
            case Reg.Misc:
                return MiscRead(kvm, offset);
            case Reg.Rao:
                return len == 8 ? ulong.MaxValue : (1UL << bits) - 1;
            case Reg.Raz:
                return 0;
            case Reg.Group:
                return Bits(kvm, vcpu, ToIntid(offset, 1), bits, i => i.Group);
            case Reg.SEnable or Reg.CEnable:
                // "Read accesses to both GICD_ICENABLER and GICD_ISENABLER return the value of the enabled bit".
                return Bits(kvm, vcpu, ToIntid(offset, 1), bits, i => i.Enabled);
            case Reg.SPend:
                return Bits(kvm, vcpu, ToIntid(offset, 1), bits, i => i.Pending);
            case Reg.CPend:
                // GICD_ICPENDR's uaccess_read is vgic_mmio_read_raz; the guest reads the pending bits.
                return uaccess ? 0 : Bits(kvm, vcpu, ToIntid(offset, 1), bits, i => i.Pending);
            case Reg.SActive or Reg.CActive:
                return Bits(kvm, vcpu, ToIntid(offset, 1), bits, i => i.Active);
            case Reg.Priority:
            {
                // vgic_mmio_read_priority: one byte per interrupt.
                int intid = ToIntid(offset, 8);
                ulong v = 0;
                for (int i = 0; i < len; i++) v |= (ulong)(GetIrq(kvm, vcpu, intid + i)?.Priority ?? 0) << (i * 8);
                return v;
            }
            case Reg.Config:
            {
                // vgic_mmio_read_config: "if (irq->config == VGIC_CONFIG_EDGE) value |= (2U << (i * 2))".
                int intid = ToIntid(offset, 2);
                ulong v = 0;
                for (int i = 0; i < len * 4; i++)
                    if (GetIrq(kvm, vcpu, intid + i)?.Edge == true) v |= 2UL << (i * 2);
                return v;
            }
            case Reg.Irouter:
            {
                // vgic_mmio_read_irouter: "The upper word is RAZ for us."
                var irq = GetIrq(kvm, vcpu, ToIntid(offset, 64));
                return irq is null || (offset & 4) != 0 ? 0 : Extract(irq.Mpidr, offset & 7, len);
            }
            case Reg.IdRegs:
                // vgic_mmio_read_v3_idregs: "report a GICv3 compliant implementation" in PIDR2.
                return (offset & 0xffff) == PidR2 ? 0x3bUL : 0;
            case Reg.RCtlr:
                // vgic_mmio_read_v3r_ctlr: vgic_cpu->ctlr (EnableLPIs), IR | CES from revision 3.
                return (VgicCpu.Of(vcpu).LpisEnabled ? 1UL : 0) | (dist.ImplementationRev >= 3 ? (1UL << 2) | (1UL << 1) : 0);
            case Reg.RIidr:
                // vgic_mmio_read_v3r_iidr: (PRODUCT_ID_KVM << 24) | (IMPLEMENTER_ARM << 0).
                return (0x4bUL << 24) | 0x43b;
            case Reg.RTyper:
                return Extract(RedistTyper(kvm, vcpu), offset & 7, len);
            case Reg.PropBase:
                return Extract(dist.Propbaser, offset & 7, len);
            case Reg.PendBase:
                // vgic_mmio_read_pendbase: "value &= ~GICR_PENDBASER_PTZ".
                return Extract(VgicCpu.Of(vcpu).Pendbaser & ~(1UL << 62), offset & 7, len);
            default:
                return 0;
        }
    }

    /// <summary>
    /// dispatch_mmio_write / vgic_uaccess_write: a missing register ignores the write; the uaccess_write variants
    /// apply to userspace. Returns 0 or the uaccess errno (GICD_IIDR / GICD_TYPER2 mismatches: EINVAL).
    /// </summary>
    public static long Write(Kvm kvm, KvmVcpu vcpu, VgicFrame frame, uint offset, int len, ulong val, bool uaccess)
    {
        var region = Find(kvm, frame, offset, len);
        if (region is null) return 0;
        var dist = Arm64VmState.Of(kvm).Vgic;
        int bits = len * 8;
        switch (region.Kind)
        {
            case Reg.Misc:
                return MiscWrite(kvm, offset, (uint)val, uaccess);
            case Reg.Group:
                // vgic_mmio_write_group: every bit, set or clear.
                ForBits(kvm, vcpu, ToIntid(offset, 1), bits, val, all: true, (irq, on) => irq.Group = on);
                break;
            case Reg.SEnable:
                ForBits(kvm, vcpu, ToIntid(offset, 1), bits, val, all: false, (irq, _) => irq.Enabled = true);
                break;
            case Reg.CEnable:
                ForBits(kvm, vcpu, ToIntid(offset, 1), bits, val, all: false, (irq, _) => irq.Enabled = false);
                break;
            case Reg.SPend:
                // vgic_v3_uaccess_write_pending: "pending_latch is set irrespective of irq type" and a clear bit
                // clears it; the guest's vgic_mmio_write_spending only sets.
                ForBits(kvm, vcpu, ToIntid(offset, 1), bits, val, all: uaccess, (irq, on) => irq.PendingLatch = on);
                break;
            case Reg.CPend:
                // GICD_ICPENDR's uaccess_write is vgic_mmio_uaccess_write_wi.
                if (!uaccess) ForBits(kvm, vcpu, ToIntid(offset, 1), bits, val, all: false, (irq, _) => irq.PendingLatch = false);
                break;
            case Reg.SActive:
                ForBits(kvm, vcpu, ToIntid(offset, 1), bits, val, all: false, (irq, _) => irq.Active = true);
                break;
            case Reg.CActive:
                ForBits(kvm, vcpu, ToIntid(offset, 1), bits, val, all: false, (irq, _) => irq.Active = false);
                break;
            case Reg.Priority:
            {
                // vgic_mmio_write_priority: "Narrow the priority range to what we actually support"
                // (GENMASK(7, 8 - VGIC_PRI_BITS), VGIC_PRI_BITS = 5).
                int intid = ToIntid(offset, 8);
                for (int i = 0; i < len; i++)
                    if (GetIrq(kvm, vcpu, intid + i) is { } irq) irq.Priority = (byte)((val >> (i * 8)) & 0xf8);
                break;
            }
            case Reg.Config:
            {
                // vgic_mmio_write_config: SGI and PPI configuration is read-only ("The arch timer code relies on
                // PPIs being level triggered").
                int intid = ToIntid(offset, 2);
                for (int i = 0; i < len * 4; i++)
                {
                    if (intid + i < 32) continue;
                    if (GetIrq(kvm, vcpu, intid + i) is { } irq) irq.Edge = ((val >> (i * 2 + 1)) & 1) != 0;
                }
                break;
            }
            case Reg.Irouter:
            {
                // vgic_mmio_write_irouter: "The upper word is WI for us since we don't implement Aff3"; "We only care
                // about and preserve Aff0, Aff1 and Aff2".
                if ((offset & 4) != 0) break;
                if (GetIrq(kvm, vcpu, ToIntid(offset, 64)) is { } irq) irq.Mpidr = val & 0xffffff;
                break;
            }
            case Reg.PropBase:
                // vgic_mmio_write_propbase: "Storing a value with LPIs already enabled is undefined" → ignored.
                if (VgicCpu.Of(vcpu).LpisEnabled) break;
                dist.Propbaser = SanitiseBaser(Update64(dist.Propbaser, offset, len, val), PropbaserRes0);
                break;
            case Reg.PendBase:
            {
                // vgic_mmio_write_pendbase: likewise ignored with LPIs enabled.
                var cpu = VgicCpu.Of(vcpu);
                if (cpu.LpisEnabled) break;
                cpu.Pendbaser = SanitiseBaser(Update64(cpu.Pendbaser, offset, len, val), PendbaserRes0);
                break;
            }
            case Reg.RCtlr:
                // vgic_mmio_write_v3r_ctlr (VgicLpi: ignored without an ITS).
                VgicLpi.WriteRedistCtlr(kvm, vcpu, val);
                break;
            case Reg.InvLpi or Reg.InvAll:
                // vgic_mmio_write_invlpi / vgic_mmio_write_invallr.
                VgicLpi.WriteInv(kvm, vcpu, offset, val, all: region.Kind == Reg.InvAll);
                break;
            default:
                // Rao/Raz/IdRegs/RIidr/RTyper (WI, and vgic_mmio_uaccess_write_wi for GICR_TYPER).
                break;
        }
        return 0;
    }

    /// <summary>vgic_mmio_read_v3_misc.</summary>
    private static ulong MiscRead(Kvm kvm, uint offset)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        switch (offset & 0x0c)
        {
            case 0x0:
                // GICD_CTLR: EnableGrp1NS if enabled; "value |= GICD_CTLR_ARE_NS | GICD_CTLR_DS" (no nASSGIreq).
                return (dist.Enabled ? 1UL << 1 : 0) | (1UL << 4) | (1UL << 6);
            case 0x4:
                // GICD_TYPER: ITLinesNumber = (nr_irqs >> 5) - 1; IDbits = INTERRUPT_ID_BITS_ITS - 1 and LPIS (bit 17)
                // with an ITS, else INTERRUPT_ID_BITS_SPIS - 1.
                return (ulong)((((dist.NrSpis + 32) >> 5) - 1) |
                               (dist.Its.Count != 0 ? ((VgicLpi.IdBitsIts - 1) << 19) | (1 << 17) : (10 - 1) << 19));
            case 0x8:
                return Iidr(dist.ImplementationRev);
            default:
                // GICD_TYPER2: nASSGIcap only with GICv4.1.
                return 0;
        }
    }

    /// <summary>GICD_IIDR: (PRODUCT_ID_KVM &lt;&lt; 24) | (implementation_rev &lt;&lt; 12) | IMPLEMENTER_ARM.</summary>
    private static ulong Iidr(uint rev) => (0x4bUL << 24) | ((ulong)rev << 12) | 0x43b;

    /// <summary>vgic_mmio_write_v3_misc and vgic_mmio_uaccess_write_v3_misc.</summary>
    private static long MiscWrite(Kvm kvm, uint offset, uint val, bool uaccess)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        switch (offset & 0x0c)
        {
            case 0x0:
                // "dist->enabled = val & GICD_CTLR_ENABLE_SS_G1" (nASSGIreq: not a GICv4.1).
                dist.Enabled = (val & (1u << 1)) != 0;
                return 0;
            case 0x8 when uaccess:
            {
                // GICD_IIDR: only the revision may differ; "reg = FIELD_GET(GICD_IIDR_REVISION_MASK, reg)" takes
                // the revision of the current value, which must be KVM_VGIC_IMP_REV_2 or _3.
                ulong reg = Iidr(dist.ImplementationRev);
                if (((reg ^ val) & ~(0xfUL << 12)) != 0) return Err.EINVAL;
                uint rev = (uint)((reg >> 12) & 0xf);
                if (rev is not (2 or 3)) return Err.EINVAL;
                dist.ImplementationRev = rev;
                return 0;
            }
            case 0xc when uaccess:
                // GICD_TYPER2: "if (val != vgic_mmio_read_v3_misc(…)) return -EINVAL".
                return val != 0 ? Err.EINVAL : 0;
            default:
                // GICD_TYPER, TYPER2, IIDR from the guest: "This is at best for documentation purposes...".
                return 0;
        }
    }

    /// <summary>
    /// vgic_mmio_read_v3r_typer: Affinity (MPIDR Aff2.Aff1.Aff0) in [55:32], Processor_Number = vcpu_id in [23:8],
    /// Last (bit 4) for the last redistributor of its region (vgic_mmio_vcpu_rdist_is_last); PLPIS (bit 0) with an ITS.
    /// </summary>
    private static ulong RedistTyper(Kvm kvm, KvmVcpu vcpu)
    {
        ulong value = (Arm64SysRegs.Mpidr(vcpu.Id) & 0xffffff) << 32;
        if (Arm64VmState.Of(kvm).Vgic.Its.Count != 0) value |= 1;
        value |= (ulong)(vcpu.Id & 0xffff) << 8;
        if (VgicInit.RdistIsLast(kvm, vcpu)) value |= 1UL << 4;
        return value;
    }

    // PROPBASER_RES0_MASK / PENDBASER_RES0_MASK.
    private const ulong PropbaserRes0 = (0x1fUL << 59) | (0xfUL << 52) | (0x3UL << 5);
    private const ulong PendbaserRes0 = (1UL << 63) | (0x7UL << 59) | (0xfUL << 52) | (0xfUL << 12) | 0x7f;

    /// <summary>
    /// vgic_sanitise_propbaser / _pendbaser: OuterShareable becomes InnerShareable (Shareability [11:10]), an inner
    /// non-cacheable mapping RaWb (GIC_BASER_CACHE_RaWb = 3, [9:7]), an outer one other than SameAsInner or nC
    /// SameAsInner ([58:56]); RES0 cleared.
    /// </summary>
    private static ulong SanitiseBaser(ulong reg, ulong res0) => VgicItsMmio.SanitiseAttrs(reg, 10, 7, 56) & ~res0;

    /// <summary>update_64bit_reg: "allows updates of any half of a 64-bit register (or the whole thing)".</summary>
    internal static ulong Update64(ulong reg, uint offset, int len, ulong val)
    {
        int lower = (int)(offset & 4) * 8;
        ulong mask = len == 8 ? ulong.MaxValue : (1UL << (len * 8)) - 1;
        return (reg & ~(mask << lower)) | ((val & mask) << lower);
    }

    /// <summary>extract_bytes: num bytes at a byte offset of a 64-bit value.</summary>
    internal static ulong Extract(ulong data, uint offset, int num) =>
        (data >> (int)(offset * 8)) & (num == 8 ? ulong.MaxValue : (1UL << (num * 8)) - 1);

    private static ulong Bits(Kvm kvm, KvmVcpu vcpu, int intid, int count, Func<VgicIrq, bool> get)
    {
        ulong v = 0;
        for (int i = 0; i < count; i++)
            if (GetIrq(kvm, vcpu, intid + i) is { } irq && get(irq)) v |= 1UL << i;
        return v;
    }

    /// <summary>for_each_set_bit (or, with <paramref name="all"/>, every bit with its value).</summary>
    private static void ForBits(Kvm kvm, KvmVcpu vcpu, int intid, int count, ulong val, bool all, Action<VgicIrq, bool> set)
    {
        for (int i = 0; i < count; i++)
        {
            bool on = ((val >> i) & 1) != 0;
            if ((on || all) && GetIrq(kvm, vcpu, intid + i) is { } irq) set(irq, on);
        }
    }
}
