// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// KVM_DEV_ARM_ITS_SAVE_TABLES / RESTORE_TABLES with table ABI v0 (vgic-its.c vgic_its_save_tables_v0 /
/// vgic_its_restore_tables_v0, 6.18; Documentation/virt/kvm/devices/arm-vgic-its.rst): 8-byte entries —
/// DTE: Valid[63] Next[62:49] ITT_addr[48:5] (bits 51:8 of the address) Size[4:0]; ITE: Next[63:48] pINTID[47:16]
/// ICID[15:0]; CTE: Valid[63] RDBase[47:16] ICID[15:0]. "Next" is the ID distance to the next valid entry (0: last).
/// Guest memory failures answer EFAULT; inconsistent entries EINVAL (a collection restored twice EEXIST).
/// </summary>
internal static class VgicItsTables
{
    private const int Esz = 8;

    /// <summary>vgic_its_save_tables_v0: the device tables (each ITT, then its DTE), then the collection table.</summary>
    public static long Save(VgicIts its)
    {
        long r = SaveDeviceTables(its);
        return r != 0 ? r : SaveCollectionTable(its);
    }

    /// <summary>vgic_its_restore_tables_v0: the collection table first, then the device tables.</summary>
    public static long Restore(VgicIts its)
    {
        long r = RestoreCollectionTable(its);
        return r != 0 ? r : RestoreDeviceTables(its);
    }

    /// <summary>vgic_its_save_device_tables: nothing without a valid BASER0; devices by ID ("list_sort").</summary>
    private static long SaveDeviceTables(VgicIts its)
    {
        if ((its.BaserDevice & VgicItsMmio.BaserValid) == 0) return 0;
        its.Devices.Sort((a, b) => a.Id.CompareTo(b.Id));
        for (int i = 0; i < its.Devices.Count; i++)
        {
            var dev = its.Devices[i];
            if (!VgicItsCommands.CheckId(its, its.BaserDevice, dev.Id, out ulong eaddr)) return Vfs.Err.EINVAL;
            // vgic_its_save_itt: the ITEs by event ID, each at itt_addr + event_id * ite_esz.
            dev.Ites.Sort((a, b) => a.EventId.CompareTo(b.EventId));
            for (int j = 0; j < dev.Ites.Count; j++)
            {
                var ite = dev.Ites[j];
                ulong next = j + 1 < dev.Ites.Count ? Math.Min(dev.Ites[j + 1].EventId - ite.EventId, (1u << 16) - 1) : 0;
                ulong val = (next << 48) | ((ulong)(uint)ite.Irq!.Intid << 16) | (ite.Collection?.Id ?? 0);
                if (!VgicLpi.WriteGuest64(its.Kvm, dev.IttAddr + ite.EventId * (ulong)Esz, val)) return Vfs.Err.EFAULT;
            }
            // vgic_its_save_dte: compute_next_devid_offset (capped at VITS_DTE_MAX_DEVID_OFFSET).
            ulong nextDev = i + 1 < its.Devices.Count ? Math.Min(its.Devices[i + 1].Id - dev.Id, (1u << 14) - 1) : 0;
            ulong dte = (1UL << 63) | (nextDev << 49) | ((dev.IttAddr >> 8) << 5) | (uint)(dev.NumEventIdBits - 1);
            if (!VgicLpi.WriteGuest64(its.Kvm, eaddr, dte)) return Vfs.Err.EFAULT;
        }
        return 0;
    }

    /// <summary>
    /// vgic_its_save_collection_table: the collections in list order from the table's start, then "a last dummy element
    /// with valid bit unset" unless the table is full.
    /// </summary>
    private static long SaveCollectionTable(VgicIts its)
    {
        ulong baser = its.BaserColl;
        if ((baser & VgicItsMmio.BaserValid) == 0) return 0;
        ulong gpa = VgicItsMmio.BaserAddress(baser), maxSize = VgicItsMmio.BaserNrPages(baser) * 0x10000, filled = 0;
        foreach (var c in its.Collections)
        {
            ulong val = (1UL << 63) | ((ulong)c.TargetAddr << 16) | c.Id;
            if (!VgicLpi.WriteGuest64(its.Kvm, gpa, val)) return Vfs.Err.EFAULT;
            gpa += Esz;
            filled += Esz;
        }
        if (filled == maxSize) return 0;
        return VgicLpi.WriteGuest64(its.Kvm, gpa, 0) ? 0 : Vfs.Err.EFAULT;
    }

    /// <summary>
    /// vgic_its_restore_collection_table / vgic_its_restore_cte: entries up to the first invalid one; a target beyond
    /// the online vCPUs (other than COLLECTION_NOT_MAPPED) → EINVAL, an ID already present → EEXIST.
    /// </summary>
    private static long RestoreCollectionTable(VgicIts its)
    {
        ulong baser = its.BaserColl;
        if ((baser & VgicItsMmio.BaserValid) == 0) return 0;
        ulong gpa = VgicItsMmio.BaserAddress(baser), maxSize = VgicItsMmio.BaserNrPages(baser) * 0x10000;
        for (ulong read = 0; read < maxSize; read += Esz, gpa += Esz)
        {
            if (!VgicLpi.ReadGuest64(its.Kvm, gpa, out ulong val)) return Vfs.Err.EFAULT;
            if ((val & (1UL << 63)) == 0) return 0;
            uint target = (uint)(val >> 16);
            uint collId = (uint)(val & 0xffff);
            if (target != VgicIts.CollectionNotMapped && target >= (uint)its.Kvm.Vcpus.Count) return Vfs.Err.EINVAL;
            if (its.FindCollection(collId) is not null) return Vfs.Err.EEXIST;
            if (!VgicItsCommands.CheckId(its, its.BaserColl, collId, out _)) return Vfs.Err.EINVAL;
            its.Collections.Add(new ItsCollection(collId) { TargetAddr = target });
        }
        return 0;
    }

    /// <summary>vgic_its_restore_device_tables: a flat table, or a two-level one through its valid level-1 entries.</summary>
    private static long RestoreDeviceTables(VgicIts its)
    {
        ulong baser = its.BaserDevice;
        if ((baser & VgicItsMmio.BaserValid) == 0) return 0;
        ulong l1 = VgicItsMmio.BaserAddress(baser), l1Size = VgicItsMmio.BaserNrPages(baser) * 0x10000;
        long r;
        if ((baser & VgicItsMmio.BaserIndirect) == 0) r = Scan(its, l1, l1Size, 0, (id, e) => RestoreDte(its, id, e));
        else
        {
            // handle_l1_dte: an invalid level-1 entry is skipped; a valid one's level-2 page is scanned from
            // id * (SZ_64K / dte_esz).
            r = Scan(its, l1, l1Size, 0, (id, e) =>
                (e & (1UL << 63)) == 0 ? 1 : Scan(its, e & 0x000f_ffff_ffff_0000, 0x10000, id * (0x10000 / Esz), (id2, e2) => RestoreDte(its, id2, e2)));
        }
        return r > 0 ? 0 : r;
    }

    /// <summary>
    /// vgic_its_restore_dte: an invalid entry → 1 (scan on); a valid one makes the device and restores its ITT (a
    /// failure frees the device again) and answers its Next field.
    /// </summary>
    private static long RestoreDte(VgicIts its, uint id, ulong entry)
    {
        if ((entry >> 63) == 0) return 1;
        int bits = (int)(entry & 0x1f) + 1;
        ulong itt = ((entry & 0x0001_ffff_ffff_ffe0) >> 5) << 8;
        long offset = (long)((entry >> 49) & 0x3fff);
        if (!VgicItsCommands.CheckId(its, its.BaserDevice, id, out _)) return Vfs.Err.EINVAL;
        var dev = new ItsDevice(id, itt, bits);
        its.Devices.Add(dev);
        long r = Scan(its, itt, (1UL << bits) * Esz, 0, (eid, e) => RestoreIte(its, dev, eid, e));
        if (r > 0) r = 0;
        if (r != 0)
        {
            its.FreeDevice(dev);
            return r;
        }
        return offset;
    }

    /// <summary>
    /// vgic_its_restore_ite: pINTID 0 → invalid, scan on; below 8192 → EINVAL; a Next beyond the device's events →
    /// EINVAL; an unknown collection → EINVAL; then the ITE and its LPI (vgic_add_lpi).
    /// </summary>
    private static long RestoreIte(VgicIts its, ItsDevice dev, uint eventId, ulong val)
    {
        uint collId = (uint)(val & 0xffff);
        uint lpi = (uint)((val >> 16) & 0xffff_ffff);
        if (lpi == 0) return 1;
        if (lpi < VgicLpi.MinLpi) return Vfs.Err.EINVAL;
        ulong offset = val >> 48;
        if (eventId + offset >= 1UL << dev.NumEventIdBits) return Vfs.Err.EINVAL;
        var c = its.FindCollection(collId);
        if (c is null) return Vfs.Err.EINVAL;
        var ite = new ItsIte(eventId, c);
        dev.Ites.Add(ite);
        var vcpu = VgicIts.IsMapped(c) ? its.Vcpu(c.TargetAddr) : null;
        var irq = VgicLpi.Add(its.Kvm, (int)lpi, vcpu, out long error);
        if (irq is null)
        {
            its.FreeIte(dev, ite);
            return error;
        }
        ite.Irq = irq;
        return (long)offset;
    }

    /// <summary>
    /// scan_its_table: reads esz-byte entries from <paramref name="gpa"/>, each handed to <paramref name="fn"/> with
    /// its ID; a result ≤ 0 ends the scan with it, else it is the ID step; past the table's end → 1.
    /// </summary>
    private static long Scan(VgicIts its, ulong gpa, ulong size, uint startId, Func<uint, ulong, long> fn)
    {
        ulong len = size;
        uint id = startId;
        while (true)
        {
            if (!VgicLpi.ReadGuest64(its.Kvm, gpa, out ulong entry)) return Vfs.Err.EFAULT;
            long next = fn(id, entry);
            if (next <= 0) return next;
            ulong byteOffset = (ulong)next * Esz;
            if (byteOffset >= len) return 1;
            id += (uint)next;
            gpa += byteOffset;
            len -= byteOffset;
        }
    }
}
