// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// The ITS register frame (vgic-its.c its_registers, 6.18): GITS_CTLR, GITS_IIDR, GITS_TYPER, GITS_CBASER,
/// GITS_CWRITER, GITS_CREADR, GITS_BASER0..7 and the ID registers, shared by the guest (dispatch_mmio_read/write on
/// the ITS's vgic_io_device) and userspace (KVM_DEV_ARM_VGIC_GRP_ITS_REGS, vgic_its_attr_regs_access). The frame is
/// KVM_VGIC_V3_ITS_SIZE (128 KiB) on KVM_MMIO_BUS, but its_registers has no GITS_TRANSLATER: a guest write there
/// reaches no register and is ignored, like every access with no register or a wrong width (MSIs come from
/// KVM_SIGNAL_MSI and irqfd MSI routes). Callers hold the <see cref="VgicDist"/> lock.
/// </summary>
internal static class VgicItsMmio
{
    // linux/irqchip/arm-gic-v3.h GITS_* offsets.
    public const uint Ctlr = 0x0000, Iidr = 0x0004, Typer = 0x0008, Cbaser = 0x0080, Cwriter = 0x0088, Creadr = 0x0090,
        Baser = 0x0100, IdRegs = 0xffd0, Pidr4 = 0xffd0;

    public const ulong BaserValid = 1UL << 63, BaserIndirect = 1UL << 62;
    public const ulong BaserTypeDevice = 1, BaserTypeCollection = 4;

    /// <summary>GITS_BASER_RO_MASK: Entry_Size [52:48] and Type [58:56].</summary>
    private const ulong BaserRoMask = (0x1fUL << 48) | (0x7UL << 56);

    /// <summary>INITIAL_BASER_VALUE: inner RaWb, outer SameAsInner, InnerShareable, 64 KiB pages.</summary>
    public const ulong InitialBaser = (3UL << 59) | (1UL << 10) | (2UL << 8);

    /// <summary>INITIAL_PROPBASER_VALUE: inner RaWb, outer SameAsInner, InnerShareable.</summary>
    public const ulong InitialPropbaser = (3UL << 7) | (1UL << 10);

    /// <summary>GITS_BASER_NR_PAGES.</summary>
    public static ulong BaserNrPages(ulong baser) => (baser & 0xff) + 1;

    /// <summary>GITS_BASER_ADDR_48_to_52 for 64 KiB pages: [47:16], and [15:12] as PA[51:48].</summary>
    public static ulong BaserAddress(ulong baser) => (baser & 0x0000_ffff_ffff_0000) | (((baser >> 12) & 0xf) << 48);

    private sealed record Region(uint Offset, uint Len, bool Allow64);

    private static readonly Region[] Regions =
    [
        new(Ctlr, 4, false), new(Iidr, 4, false), new(Typer, 8, true), new(Cbaser, 8, true), new(Cwriter, 8, true),
        new(Creadr, 8, true), new(Baser, 0x40, true), new(IdRegs, 0x30, false),
    ];

    /// <summary>vgic_find_mmio_region.</summary>
    private static Region? FindRegion(uint offset) => Regions.FirstOrDefault(r => offset >= r.Offset && offset < r.Offset + r.Len);

    /// <summary>vgic_its_has_attr_regs: 32-bit alignment for CTLR/IIDR and the ID registers, else 64-bit (EINVAL); ENXIO with no register.</summary>
    public static long HasRegister(ulong offset)
    {
        ulong align = offset < Typer || offset >= Pidr4 ? 3UL : 7UL;
        if ((offset & align) != 0) return Vfs.Err.EINVAL;
        return offset <= uint.MaxValue && FindRegion((uint)offset) is not null ? 0 : Vfs.Err.ENXIO;
    }

    /// <summary>The access width userspace uses: "len = region->access_flags &amp; VGIC_ACCESS_64bit ? 8 : 4".</summary>
    public static int UaccessLen(uint offset) => FindRegion(offset)!.Allow64 ? 8 : 4;

    /// <summary>check_region (the access width and alignment) for a guest access; null: no register.</summary>
    private static Region? GuestRegion(uint offset, int len)
    {
        var r = FindRegion(offset);
        if (r is null || offset % (uint)len != 0) return null;
        return len == 4 || (len == 8 && r.Allow64) ? r : null;
    }

    public static ulong Read(VgicIts its, uint offset, int len)
    {
        switch (offset)
        {
            case Ctlr:
                // vgic_mmio_read_its_ctlr: Quiescent when CREADR == CWRITER, Enable.
                return (its.Creadr == its.Cwriter ? 1UL << 31 : 0) | (its.Enabled ? 1UL : 0);
            case Iidr:
                // vgic_mmio_read_its_iidr: (abi_rev << GITS_IIDR_REV_SHIFT) | PRODUCT_ID_KVM << 24 | IMPLEMENTER_ARM.
                return ((ulong)(its.AbiRev & 0xf) << 12) | (0x4bUL << 24) | 0x43b;
            case >= Typer and < Typer + 8:
                // vgic_mmio_read_its_typer: PLPIS, DevBits 16, IDbits 16, ITT_entry_size 8 (GIC_ENCODE_SZ).
                return Extract(1UL | (7UL << 4) | (15UL << 8) | (15UL << 13), offset & 7, len);
            case >= Cbaser and < Cbaser + 8:
                return Extract(its.Cbaser, offset & 7, len);
            case >= Cwriter and < Cwriter + 8:
                return Extract(its.Cwriter, offset & 7, len);
            case >= Creadr and < Creadr + 8:
                return Extract(its.Creadr, offset & 7, len);
            case >= Baser and < Baser + 0x40:
            {
                // vgic_mmio_read_its_baser: BASER0 the device table, BASER1 the collection table, others 0.
                ulong reg = ((offset - Baser) / 8) switch { 0 => its.BaserDevice, 1 => its.BaserColl, _ => 0 };
                return Extract(reg, offset & 7, len);
            }
            default:
                // vgic_mmio_read_its_idregs.
                return (offset & 0xffff) switch
                {
                    0xffe0 => 0x92, 0xffe4 => 0xb4, 0xffe8 => 0x3b, 0xffd0 => 0x40,
                    0xfff0 => 0x0d, 0xfff4 => 0xf0, 0xfff8 => 0x05, 0xfffc => 0xb1, _ => 0,
                };
        }
    }

    /// <summary>The guest's write (its_write); also userspace's for the registers without a uaccess_its_write.</summary>
    public static void Write(VgicIts its, uint offset, int len, ulong val)
    {
        switch (offset)
        {
            case Ctlr:
                WriteCtlr(its, val);
                break;
            case >= Cbaser and < Cbaser + 8:
                // vgic_mmio_write_its_cbaser: "When GITS_CTLR.Enable is 1, this register is RO"; CREADR and CWRITER
                // return to 0.
                if (its.Enabled) break;
                its.Cbaser = SanitiseCbaser(Update64(its.Cbaser, offset & 7, len, val));
                its.Creadr = 0;
                its.Cwriter = its.Creadr;
                break;
            case >= Cwriter and < Cwriter + 8:
            {
                // vgic_mmio_write_its_cwriter: ITS_CMD_OFFSET (bits [19:5]); beyond the buffer → ignored.
                ulong reg = Update64(its.Cwriter, offset & 7, len, val) & 0xfffe0;
                if (reg >= VgicItsCommands.BufferSize(its.Cbaser)) break;
                its.Cwriter = reg;
                VgicItsCommands.Process(its);
                break;
            }
            case >= Baser and < Baser + 0x40:
                WriteBaser(its, offset, len, val);
                break;
            default:
                // GITS_IIDR, TYPER, CREADR, ID registers: its_mmio_write_wi.
                break;
        }
    }

    /// <summary>
    /// vgic_mmio_write_its_ctlr: "It is UNPREDICTABLE to enable the ITS if any of the CBASER or device/collection
    /// BASER are invalid" → ignored; else Enable is taken and queued commands are processed.
    /// </summary>
    private static void WriteCtlr(VgicIts its, ulong val)
    {
        bool enable = (val & 1) != 0;
        if (!its.Enabled && enable &&
            ((its.BaserDevice & BaserValid) == 0 || (its.BaserColl & BaserValid) == 0 || (its.Cbaser & (1UL << 63)) == 0))
            return;
        its.Enabled = enable;
        VgicItsCommands.Process(its);
    }

    /// <summary>
    /// vgic_mmio_write_its_baser: ignored while enabled; only BASER0 (device, Indirect allowed) and BASER1
    /// (collection, Indirect cleared) exist; Entry_Size and Type are forced, the attributes sanitised, the page size
    /// forced to 64 KiB; clearing Valid drops every device (or collection).
    /// </summary>
    private static void WriteBaser(VgicIts its, uint offset, int len, ulong val)
    {
        if (its.Enabled) return;
        uint index = (offset - Baser) / 8;
        if (index > 1) return;
        ulong type = index == 0 ? BaserTypeDevice : BaserTypeCollection;
        ulong clear = index == 0 ? 0 : BaserIndirect;
        ulong reg = Update64(index == 0 ? its.BaserDevice : its.BaserColl, offset & 7, len, val);
        reg &= ~BaserRoMask;
        reg &= ~clear;
        reg |= (8UL - 1) << 48; // abi->dte_esz / cte_esz - 1
        reg |= type << 56;
        reg = SanitiseAttrs(reg, 10, 59, 53);
        reg = (reg & ~(3UL << 8)) | (2UL << 8); // GITS_BASER_PAGE_SIZE_64K
        if (index == 0) its.BaserDevice = reg;
        else its.BaserColl = reg;
        if ((reg & BaserValid) != 0) return;
        if (index == 0)
        {
            foreach (var d in its.Devices.ToList()) its.FreeDevice(d);
        }
        else
        {
            foreach (var c in its.Collections.ToList()) its.FreeCollection(c.Id);
        }
    }

    /// <summary>vgic_sanitise_its_cbaser: the attributes, and "Sanitise the physical address to be 64k aligned".</summary>
    private static ulong SanitiseCbaser(ulong reg) => SanitiseAttrs(reg, 10, 59, 53) & ~(0xfUL << 12);

    /// <summary>
    /// vgic_sanitise_shareability (OuterShareable → InnerShareable), vgic_sanitise_inner_cacheability (nCnB / nC →
    /// RaWb) and vgic_sanitise_outer_cacheability (anything but SameAsInner / nC → SameAsInner).
    /// </summary>
    public static ulong SanitiseAttrs(ulong reg, int shareShift, int innerShift, int outerShift)
    {
        ulong share = (reg >> shareShift) & 3;
        if (share == 2) share = 1;
        ulong inner = (reg >> innerShift) & 7;
        if (inner is 0 or 1) inner = 3;
        ulong outer = (reg >> outerShift) & 7;
        if (outer is not (0 or 1)) outer = 0;
        reg &= ~(3UL << shareShift) & ~(7UL << innerShift) & ~(7UL << outerShift);
        return reg | (share << shareShift) | (inner << innerShift) | (outer << outerShift);
    }

    /// <summary>
    /// Userspace's write (KVM_DEV_ARM_VGIC_GRP_ITS_REGS): GITS_IIDR (vgic_mmio_uaccess_write_its_iidr: a revision
    /// ≥ NR_ITS_ABIS → EINVAL, else vgic_its_set_abi) and GITS_CREADR (vgic_mmio_uaccess_write_its_creadr: EBUSY while
    /// enabled, EINVAL beyond the buffer) have their own; the others are the guest's.
    /// </summary>
    public static long UaccessWrite(VgicIts its, uint offset, int len, ulong val)
    {
        if (offset == Iidr)
        {
            uint rev = (uint)((val >> 12) & 0xf);
            if (rev >= 1) return Vfs.Err.EINVAL;
            its.AbiRev = rev;
            CommitAbi(its);
            return 0;
        }
        if (offset == Creadr)
        {
            if (its.Enabled) return Vfs.Err.EBUSY;
            ulong cmdOffset = val & 0xfffe0;
            if (cmdOffset >= VgicItsCommands.BufferSize(its.Cbaser)) return Vfs.Err.EINVAL;
            its.Creadr = cmdOffset;
            return 0;
        }
        Write(its, offset, len, val);
        return 0;
    }

    /// <summary>vgic_its_commit_v0: the BASERs' Entry_Size field from the ABI (8-byte entries).</summary>
    public static void CommitAbi(VgicIts its)
    {
        its.BaserColl = (its.BaserColl & ~(0x1fUL << 48)) | (7UL << 48);
        its.BaserDevice = (its.BaserDevice & ~(0x1fUL << 48)) | (7UL << 48);
    }

    /// <summary>A guest access at <paramref name="offset"/> in the frame: dispatch_mmio_read (0 with no register).</summary>
    public static ulong GuestRead(VgicIts its, uint offset, int len) => GuestRegion(offset, len) is null ? 0 : Read(its, offset, len);

    /// <summary>dispatch_mmio_write: ignored with no register.</summary>
    public static void GuestWrite(VgicIts its, uint offset, int len, ulong val)
    {
        if (GuestRegion(offset, len) is not null) Write(its, offset, len, val);
    }

    private static ulong Update64(ulong reg, uint offset, int len, ulong val) => VgicMmio.Update64(reg, offset, len, val);

    private static ulong Extract(ulong data, uint offset, int num) => VgicMmio.Extract(data, offset, num);
}

/// <summary>The ITS frame on KVM_MMIO_BUS (vgic_register_its_iodev: IODEV_ITS, KVM_VGIC_V3_ITS_SIZE at the base).</summary>
internal sealed class VgicItsIoDevice(VgicIts its) : IKvmIoDevice
{
    public bool Read(KvmVcpu vcpu, ulong addr, Span<byte> data)
    {
        ulong v;
        lock (Arm64VmState.Of(its.Kvm).Vgic) v = VgicItsMmio.GuestRead(its, (uint)(addr - its.Base), data.Length);
        VgicIoDevice.ToBus(v, data);
        return true;
    }

    public bool Write(KvmVcpu vcpu, ulong addr, ReadOnlySpan<byte> data)
    {
        ulong v = VgicIoDevice.FromBus(data);
        lock (Arm64VmState.Of(its.Kvm).Vgic) VgicItsMmio.GuestWrite(its, (uint)(addr - its.Base), data.Length, v);
        return true;
    }
}
