// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// LPIs (INTID ≥ 8192) of the emulated GICv3 (6.18): vgic-its.c vgic_add_lpi / update_lpi_config /
/// its_sync_lpi_pending_table, vgic-v3.c vgic_v3_lpi_sync_pending_status / vgic_v3_save_pending_tables, and
/// vgic-mmio-v3.c's redistributor side (GICR_CTLR.EnableLPIs, GICR_INVLPIR, GICR_INVALLR). The configuration table
/// (GICR_PROPBASER, one byte per LPI: priority [7:2], enable [0]) and the pending tables (GICR_PENDBASER, one bit per
/// INTID) live in guest memory; KVM caches the configuration in the vgic_irq and rereads it on INV / INVALL / MAPTI.
/// Callers hold the <see cref="VgicDist"/> lock.
/// </summary>
internal static class VgicLpi
{
    /// <summary>GIC_LPI_OFFSET / VGIC_MIN_LPI.</summary>
    public const int MinLpi = 8192;

    /// <summary>INTERRUPT_ID_BITS_ITS: 16-bit INTIDs behind an ITS.</summary>
    public const int IdBitsIts = 16;

    /// <summary>GICR_PROPBASER_ADDRESS / GICR_PENDBASER_ADDRESS: bits [51:12] / [51:16].</summary>
    public static ulong PropbaseAddress(ulong reg) => reg & 0x000f_ffff_ffff_f000;

    public static ulong PendbaseAddress(ulong reg) => reg & 0x000f_ffff_ffff_0000;

    /// <summary>max_lpis_propbaser: 1 &lt;&lt; min(IDbits + 1, INTERRUPT_ID_BITS_ITS).</summary>
    public static uint MaxLpis(ulong propbaser) => 1u << Math.Min((int)(propbaser & 0x1f) + 1, IdBitsIts);

    /// <summary>
    /// vgic_add_lpi: the existing LPI gains a reference, else a new one (edge, group 1, target <paramref name="vcpu"/>)
    /// reads its configuration (update_lpi_config) and pending bit (vgic_v3_lpi_sync_pending_status); either read
    /// failing (kvm_read_guest_lock: -EFAULT) drops the new LPI and fails.
    /// </summary>
    public static VgicIrq? Add(Kvm kvm, int intid, KvmVcpu? vcpu, out long error)
    {
        error = 0;
        var dist = Arm64VmState.Of(kvm).Vgic;
        if (dist.Lpis.TryGetValue(intid, out var e))
        {
            dist.Lpis[intid] = (e.Irq, e.Refs + 1);
            return e.Irq;
        }
        var irq = new VgicIrq(intid) { Edge = true, Group = true, TargetVcpu = vcpu };
        if (!UpdateConfig(kvm, irq, null) || !SyncPendingStatus(kvm, irq))
        {
            error = Vfs.Err.EFAULT;
            return null;
        }
        dist.Lpis[intid] = (irq, 1);
        return irq;
    }

    /// <summary>
    /// vgic_put_irq: the last reference of an LPI removes it from lpi_xa; its pending state goes with it (an LPI
    /// already queued to a vCPU's ap_list would still be presented there — not modelled).
    /// </summary>
    public static void Put(Kvm kvm, VgicIrq irq)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        if (!dist.Lpis.TryGetValue(irq.Intid, out var e) || !ReferenceEquals(e.Irq, irq)) return;
        if (e.Refs <= 1)
        {
            dist.Lpis.Remove(irq.Intid);
            irq.PendingLatch = false;
            // An acknowledged LPI stays on its CPU interface's active list until the guest EOIs it (the LR keeps it).
            irq.TargetVcpu = null;
        }
        else dist.Lpis[irq.Intid] = (irq, e.Refs - 1);
    }

    /// <summary>
    /// update_lpi_config: the byte at PROPBASER + intid - 8192 (kvm_read_guest_lock; false on failure) gives
    /// "irq->priority = LPI_PROP_PRIORITY(prop)" (prop &amp; 0xfc) and "irq->enabled = LPI_PROP_ENABLE_BIT(prop)",
    /// applied only to an LPI targeting <paramref name="filter"/> when one is given.
    /// </summary>
    public static bool UpdateConfig(Kvm kvm, VgicIrq irq, KvmVcpu? filter)
    {
        ulong propbase = PropbaseAddress(Arm64VmState.Of(kvm).Vgic.Propbaser);
        Span<byte> prop = stackalloc byte[1];
        if (!ReadGuest(kvm, propbase + (ulong)(irq.Intid - MinLpi), prop)) return false;
        if (filter is null || ReferenceEquals(filter, irq.TargetVcpu))
        {
            irq.Priority = (byte)(prop[0] & 0xfc);
            irq.Enabled = (prop[0] & 1) != 0;
        }
        return true;
    }

    /// <summary>
    /// vgic_v3_lpi_sync_pending_status: with a target vCPU, the LPI's bit in that vCPU's pending table becomes its
    /// pending_latch, and a set bit is cleared in guest memory ("clear consumed data").
    /// </summary>
    private static bool SyncPendingStatus(Kvm kvm, VgicIrq irq)
    {
        if (irq.TargetVcpu is not { } vcpu) return true;
        ulong ptr = PendbaseAddress(VgicCpu.Of(vcpu).Pendbaser) + (ulong)(irq.Intid / 8);
        Span<byte> val = stackalloc byte[1];
        if (!ReadGuest(kvm, ptr, val)) return false;
        bool status = (val[0] & (1 << (irq.Intid % 8))) != 0;
        irq.PendingLatch = status;
        if (!status) return true;
        val[0] &= (byte)~(1 << (irq.Intid % 8));
        return WriteGuest(kvm, ptr, val);
    }

    /// <summary>The LPIs targeting <paramref name="vcpu"/> (vgic_copy_lpi_list; all of them for null), by INTID.</summary>
    public static List<VgicIrq> Targeting(Kvm kvm, KvmVcpu? vcpu) =>
        [.. Arm64VmState.Of(kvm).Vgic.Lpis.Values.Select(e => e.Irq)
            .Where(i => vcpu is null || ReferenceEquals(i.TargetVcpu, vcpu)).OrderBy(i => i.Intid)];

    /// <summary>
    /// vgic_mmio_write_v3r_ctlr (with an ITS; without one the write is ignored): clearing EnableLPIs disables them
    /// (vgic_flush_pending_lpis drops the vCPU's queued LPIs — here a disabled redistributor is not offered its LPIs,
    /// <see cref="VgicDelivery"/>); setting it from 0 enables them and, unless GICR_PENDBASER.PTZ, reads the pending
    /// table (vgic_enable_lpis → its_sync_lpi_pending_table).
    /// </summary>
    public static void WriteRedistCtlr(Kvm kvm, KvmVcpu vcpu, ulong val)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        if (dist.Its.Count == 0) return;
        var cpu = VgicCpu.Of(vcpu);
        bool enable = (val & 1) != 0;
        if (enable == cpu.LpisEnabled) return;
        cpu.LpisEnabled = enable;
        if (!enable || (cpu.Pendbaser & (1UL << 62)) != 0) return;
        // its_sync_lpi_pending_table: "irq->pending_latch = pendmask & (1U << bit_nr)"; a failed read stops it.
        ulong pendbase = PendbaseAddress(cpu.Pendbaser);
        Span<byte> b = stackalloc byte[1];
        foreach (var irq in Targeting(kvm, vcpu))
        {
            if (!ReadGuest(kvm, pendbase + (ulong)(irq.Intid / 8), b)) return;
            irq.PendingLatch = (b[0] & (1 << (irq.Intid % 8))) != 0;
        }
    }

    /// <summary>
    /// vgic_mmio_write_invlpi / vgic_mmio_write_invallr: a write to the upper half, or with LPIs disabled, is dropped;
    /// GICR_INVLPIR rereads the named LPI's configuration (vgic_its_inv_lpi), GICR_INVALLR every LPI targeting the vCPU
    /// (vgic_its_invall).
    /// </summary>
    public static void WriteInv(Kvm kvm, KvmVcpu vcpu, uint offset, ulong val, bool all)
    {
        if ((offset & 4) != 0 || !VgicCpu.Of(vcpu).LpisEnabled) return;
        if (all)
        {
            foreach (var irq in Targeting(kvm, vcpu)) _ = UpdateConfig(kvm, irq, vcpu);
            return;
        }
        if (Arm64VmState.Of(kvm).Vgic.Lpis.TryGetValue((int)(uint)val, out var e)) _ = UpdateConfig(kvm, e.Irq, null);
    }

    /// <summary>
    /// vgic_v3_save_pending_tables' LPI part: each LPI with a target vCPU has its pending_latch stored as its bit in
    /// that vCPU's pending table (written only when it differs); a failed guest access ends it with that error.
    /// </summary>
    public static long SavePendingTables(Kvm kvm)
    {
        Span<byte> val = stackalloc byte[1];
        foreach (var irq in Targeting(kvm, null))
        {
            if (irq.TargetVcpu is not { } vcpu) continue;
            ulong ptr = PendbaseAddress(VgicCpu.Of(vcpu).Pendbaser) + (ulong)(irq.Intid / 8);
            if (!ReadGuest(kvm, ptr, val)) return Vfs.Err.EFAULT;
            byte bit = (byte)(1 << (irq.Intid % 8));
            if (((val[0] & bit) != 0) == irq.PendingLatch) continue;
            val[0] = irq.PendingLatch ? (byte)(val[0] | bit) : (byte)(val[0] & ~bit);
            if (!WriteGuest(kvm, ptr, val)) return Vfs.Err.EFAULT;
        }
        return 0;
    }

    /// <summary>kvm_is_visible_gfn: a memslot of address space 0 covers the page.</summary>
    public static bool IsVisible(Kvm kvm, ulong gpa) => GuestMemoryPath.GfnToMemslot(kvm, 0, gpa >> EmulatorConfig.PageShift) is not null;

    /// <summary>kvm_read_guest_lock: false (-EFAULT) when any page has no memslot.</summary>
    public static bool ReadGuest(Kvm kvm, ulong gpa, Span<byte> data) => AccessGuest(kvm, gpa, data, write: false);

    /// <summary>kvm_write_guest_lock (vgic_write_guest_lock).</summary>
    public static bool WriteGuest(Kvm kvm, ulong gpa, Span<byte> data) => AccessGuest(kvm, gpa, data, write: true);

    public static bool ReadGuest64(Kvm kvm, ulong gpa, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        bool ok = ReadGuest(kvm, gpa, b);
        value = BinaryPrimitives.ReadUInt64LittleEndian(b);
        return ok;
    }

    public static bool WriteGuest64(Kvm kvm, ulong gpa, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        return WriteGuest(kvm, gpa, b);
    }

    private static bool AccessGuest(Kvm kvm, ulong gpa, Span<byte> data, bool write)
    {
        var access = new Stage2Access(kvm);
        int done = 0;
        while (done < data.Length)
        {
            ulong a = gpa + (ulong)done;
            int chunk = (int)Math.Min((ulong)(data.Length - done), (ulong)EmulatorConfig.PageSize - (a & ((ulong)EmulatorConfig.PageSize - 1)));
            if (!IsVisible(kvm, a)) return false;
            if (access.Access(a, data.Slice(done, chunk), write, fetch: false).Status != Stage2Status.Done) return false;
            done += chunk;
        }
        return true;
    }
}
