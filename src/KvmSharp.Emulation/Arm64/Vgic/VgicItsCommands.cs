// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// The ITS command queue (vgic-its.c vgic_its_process_commands, vgic_its_handle_command and the
/// vgic_its_cmd_handle_* functions, 6.18). Commands are 32 bytes in the guest's queue at GITS_CBASER; each handler
/// answers 0, an E_ITS_* code (positive) or -errno, and the queue ignores the answer: CREADR always moves on (a
/// command that cannot be read from guest memory is skipped, "According to section 6.3.2 in the GICv3 spec we can
/// just ignore that command then"). Unknown commands (the GICv4 ones included) do nothing.
/// </summary>
internal static class VgicItsCommands
{
    // include/linux/irqchip/arm-gic-v3.h GITS_CMD_*.
    private const byte CmdMapd = 0x08, CmdMapc = 0x09, CmdMapti = 0x0a, CmdMapi = 0x0b, CmdMovi = 0x01,
        CmdDiscard = 0x0f, CmdInv = 0x0c, CmdMovall = 0x0e, CmdInvall = 0x0d, CmdInt = 0x03, CmdClear = 0x04, CmdSync = 0x05;

    // arch/arm64/kvm/vgic/vgic.h E_ITS_* (the ITS command error encodings).
    public const long E_ITS_MOVI_UNMAPPED_INTERRUPT = 0x010107, E_ITS_MOVI_UNMAPPED_COLLECTION = 0x010109,
        E_ITS_INT_UNMAPPED_INTERRUPT = 0x010307, E_ITS_CLEAR_UNMAPPED_INTERRUPT = 0x010507,
        E_ITS_MAPD_DEVICE_OOR = 0x010801, E_ITS_MAPD_ITTSIZE_OOR = 0x010802, E_ITS_MAPC_PROCNUM_OOR = 0x010902,
        E_ITS_MAPC_COLLECTION_OOR = 0x010903, E_ITS_MAPTI_UNMAPPED_DEVICE = 0x010a04, E_ITS_MAPTI_ID_OOR = 0x010a05,
        E_ITS_MAPTI_PHYSICALID_OOR = 0x010a06, E_ITS_INV_UNMAPPED_INTERRUPT = 0x010c07,
        E_ITS_INVALL_UNMAPPED_COLLECTION = 0x010d09, E_ITS_MOVALL_PROCNUM_OOR = 0x010e01,
        E_ITS_DISCARD_UNMAPPED_INTERRUPT = 0x010f07;

    /// <summary>VITS_TYPER_IDBITS / VITS_TYPER_DEVBITS.</summary>
    public const int TyperIdBits = 16, TyperDevBits = 16;

    /// <summary>ITS_CMD_BUFFER_SIZE(baser): (Size + 1) 4 KiB pages.</summary>
    public static ulong BufferSize(ulong cbaser) => ((cbaser & 0xff) + 1) << 12;

    /// <summary>
    /// vgic_its_process_commands: only while the ITS is enabled, every command from CREADR up to CWRITER, wrapping
    /// at the end of the buffer.
    /// </summary>
    public static void Process(VgicIts its)
    {
        if (!its.Enabled) return;
        ulong cbase = its.Cbaser & 0x000f_ffff_ffff_f000; // GITS_CBASER_ADDRESS: [51:12]
        Span<byte> buf = stackalloc byte[32];
        Span<ulong> cmd = stackalloc ulong[4];
        while (its.Cwriter != its.Creadr)
        {
            if (VgicLpi.ReadGuest(its.Kvm, cbase + its.Creadr, buf))
            {
                for (int i = 0; i < 4; i++) cmd[i] = BinaryPrimitives.ReadUInt64LittleEndian(buf[(i * 8)..]);
                _ = Handle(its, cmd);
            }
            its.Creadr += 32;
            if (its.Creadr == BufferSize(its.Cbaser)) its.Creadr = 0;
        }
    }

    private static ulong Field(ReadOnlySpan<ulong> cmd, int word, int shift, int size) =>
        (cmd[word] >> shift) & (size == 64 ? ulong.MaxValue : (1UL << size) - 1);

    // its_cmd_get_*.
    private static byte Command(ReadOnlySpan<ulong> c) => (byte)Field(c, 0, 0, 8);
    private static uint DeviceId(ReadOnlySpan<ulong> c) => (uint)Field(c, 0, 32, 32);
    private static int Size(ReadOnlySpan<ulong> c) => (int)Field(c, 1, 0, 5) + 1;
    private static uint Id(ReadOnlySpan<ulong> c) => (uint)Field(c, 1, 0, 32);
    private static uint PhysicalId(ReadOnlySpan<ulong> c) => (uint)Field(c, 1, 32, 32);
    private static uint Collection(ReadOnlySpan<ulong> c) => (uint)Field(c, 2, 0, 16);
    private static ulong IttAddr(ReadOnlySpan<ulong> c) => Field(c, 2, 8, 44) << 8;
    private static uint TargetAddr(ReadOnlySpan<ulong> c) => (uint)Field(c, 2, 16, 32);
    private static bool Valid(ReadOnlySpan<ulong> c) => Field(c, 2, 63, 1) != 0;

    /// <summary>vgic_its_handle_command.</summary>
    public static long Handle(VgicIts its, ReadOnlySpan<ulong> cmd) => Command(cmd) switch
    {
        CmdMapd => Mapd(its, cmd),
        CmdMapc => Mapc(its, cmd),
        CmdMapi or CmdMapti => Mapi(its, cmd),
        CmdMovi => Movi(its, cmd),
        CmdDiscard => Discard(its, cmd),
        CmdClear => Clear(its, cmd),
        CmdMovall => Movall(its, cmd),
        CmdInt => its.TriggerMsi(DeviceId(cmd), Id(cmd)),
        CmdInv => Inv(its, cmd),
        CmdInvall => Invall(its, cmd),
        CmdSync => 0, // "we ignore this command: we are in sync all of the time"
        _ => Vfs.Err.ENODEV,
    };

    /// <summary>
    /// vgic_its_check_id: a device ID below 2^VITS_TYPER_DEVBITS or a 16-bit collection ID (CIL = 0) inside the table
    /// GITS_BASER describes — flat: below its size / entry size; two-level: through a valid level-1 entry — and the
    /// entry's page inside a memslot (kvm_is_visible_gfn). GITS_BASER.Valid is not consulted.
    /// </summary>
    public static bool CheckId(VgicIts its, ulong baser, uint id, out ulong eaddr)
    {
        eaddr = 0;
        ulong l1Size = VgicItsMmio.BaserNrPages(baser) * 0x10000;
        ulong type = (baser >> 56) & 7;
        ulong baseAddr = VgicItsMmio.BaserAddress(baser);
        ulong esz = ((baser >> 48) & 0x1f) + 1;
        switch (type)
        {
            case VgicItsMmio.BaserTypeDevice when id >= 1u << TyperDevBits:
            case VgicItsMmio.BaserTypeCollection when id >= 1u << 16:
                return false;
            case VgicItsMmio.BaserTypeDevice or VgicItsMmio.BaserTypeCollection:
                break;
            default:
                return false;
        }
        if ((baser & VgicItsMmio.BaserIndirect) == 0)
        {
            if (id >= l1Size / esz) return false;
            eaddr = baseAddr + id * esz;
            return VgicLpi.IsVisible(its.Kvm, eaddr);
        }
        // "calculate and check the index into the 1st level"; "Each 1st level entry is represented by a 64-bit value".
        ulong index = id / (0x10000 / esz);
        if (index >= l1Size / 8) return false;
        if (!VgicLpi.ReadGuest64(its.Kvm, baseAddr + index * 8, out ulong indirect)) return false;
        if ((indirect & (1UL << 63)) == 0) return false;
        indirect &= 0x000f_ffff_ffff_0000; // GENMASK_ULL(51, 16)
        eaddr = indirect + id % (0x10000 / esz) * esz;
        return VgicLpi.IsVisible(its.Kvm, eaddr);
    }

    /// <summary>
    /// vgic_its_cmd_handle_mapd: the device ID must fit the device table (E_ITS_MAPD_DEVICE_OOR), a valid mapping at
    /// most VITS_TYPER_IDBITS event bits (E_ITS_MAPD_ITTSIZE_OOR); an existing mapping is removed ("MAPD on an already
    /// mapped device invalidates all cached data"), then a valid one is made.
    /// </summary>
    private static long Mapd(VgicIts its, ReadOnlySpan<ulong> cmd)
    {
        uint deviceId = DeviceId(cmd);
        bool valid = Valid(cmd);
        int bits = Size(cmd);
        if (!CheckId(its, its.BaserDevice, deviceId, out _)) return E_ITS_MAPD_DEVICE_OOR;
        if (valid && bits > TyperIdBits) return E_ITS_MAPD_ITTSIZE_OOR;
        if (its.FindDevice(deviceId) is { } existing) its.FreeDevice(existing);
        if (!valid) return 0;
        its.Devices.Add(new ItsDevice(deviceId, IttAddr(cmd), bits));
        return 0;
    }

    /// <summary>
    /// vgic_its_cmd_handle_mapc: a target beyond the online vCPUs → E_ITS_MAPC_PROCNUM_OOR; V = 0 frees the
    /// collection; V = 1 allocates it (vgic_its_alloc_collection: the collection table must hold the ID,
    /// E_ITS_MAPC_COLLECTION_OOR) or retargets it and its LPIs (update_affinity_collection).
    /// </summary>
    private static long Mapc(VgicIts its, ReadOnlySpan<ulong> cmd)
    {
        bool valid = Valid(cmd);
        uint collId = Collection(cmd);
        uint target = TargetAddr(cmd);
        if (target >= (uint)its.Kvm.Vcpus.Count) return E_ITS_MAPC_PROCNUM_OOR;
        if (!valid)
        {
            its.FreeCollection(collId);
            return 0;
        }
        var c = its.FindCollection(collId);
        if (c is null)
        {
            long r = AllocCollection(its, collId, out c);
            if (r != 0) return r;
            c!.TargetAddr = target;
            return 0;
        }
        c.TargetAddr = target;
        foreach (var d in its.Devices)
            foreach (var ite in d.Ites)
                if (ReferenceEquals(ite.Collection, c) && ite.Irq is { } irq) irq.TargetVcpu = its.Vcpu(target);
        return 0;
    }

    private static long AllocCollection(VgicIts its, uint collId, out ItsCollection? c)
    {
        c = null;
        if (!CheckId(its, its.BaserColl, collId, out _)) return E_ITS_MAPC_COLLECTION_OOR;
        c = new ItsCollection(collId);
        its.Collections.Add(c);
        return 0;
    }

    /// <summary>
    /// vgic_its_cmd_handle_mapi (MAPTI and MAPI): an unmapped device → E_ITS_MAPTI_UNMAPPED_DEVICE; an event ID beyond
    /// the device's bits or whose ITT entry is outside every memslot (vgic_its_check_event_id) → E_ITS_MAPTI_ID_OOR; an
    /// LPI (MAPI: the event ID) below 8192 or beyond GICR_PROPBASER.IDbits → E_ITS_MAPTI_PHYSICALID_OOR; "If there is
    /// an existing mapping, behavior is UNPREDICTABLE" → 0 unchanged; a missing collection is allocated unmapped; the
    /// LPI (vgic_add_lpi) targets the collection's vCPU when mapped; its failure undoes the new collection and ITE.
    /// </summary>
    private static long Mapi(VgicIts its, ReadOnlySpan<ulong> cmd)
    {
        uint deviceId = DeviceId(cmd), eventId = Id(cmd), collId = Collection(cmd);
        var device = its.FindDevice(deviceId);
        if (device is null) return E_ITS_MAPTI_UNMAPPED_DEVICE;
        if (eventId >= 1UL << device.NumEventIdBits || !VgicLpi.IsVisible(its.Kvm, device.IttAddr + eventId * 8UL))
            return E_ITS_MAPTI_ID_OOR;
        uint lpi = Command(cmd) == CmdMapti ? PhysicalId(cmd) : eventId;
        if (lpi < VgicLpi.MinLpi || lpi >= VgicLpi.MaxLpis(Arm64VmState.Of(its.Kvm).Vgic.Propbaser)) return E_ITS_MAPTI_PHYSICALID_OOR;
        if (its.FindIte(deviceId, eventId) is not null) return 0;
        var c = its.FindCollection(collId);
        bool newColl = false;
        if (c is null)
        {
            long r = AllocCollection(its, collId, out c);
            if (r != 0) return r;
            newColl = true;
        }
        var ite = new ItsIte(eventId, c);
        device.Ites.Add(ite);
        var vcpu = VgicIts.IsMapped(c) ? its.Vcpu(c!.TargetAddr) : null;
        var irq = VgicLpi.Add(its.Kvm, (int)lpi, vcpu, out long error);
        if (irq is null)
        {
            if (newColl) its.FreeCollection(collId);
            its.FreeIte(device, ite);
            return error;
        }
        ite.Irq = irq;
        return 0;
    }

    /// <summary>
    /// vgic_its_cmd_handle_movi: no ITE → E_ITS_MOVI_UNMAPPED_INTERRUPT; its collection or the new one unmapped →
    /// E_ITS_MOVI_UNMAPPED_COLLECTION; else the ITE takes the collection and its LPI the new target (update_affinity).
    /// </summary>
    private static long Movi(VgicIts its, ReadOnlySpan<ulong> cmd)
    {
        var ite = its.FindIte(DeviceId(cmd), Id(cmd));
        if (ite is null) return E_ITS_MOVI_UNMAPPED_INTERRUPT;
        if (!VgicIts.IsMapped(ite.Collection)) return E_ITS_MOVI_UNMAPPED_COLLECTION;
        var c = its.FindCollection(Collection(cmd));
        if (!VgicIts.IsMapped(c)) return E_ITS_MOVI_UNMAPPED_COLLECTION;
        ite.Collection = c;
        ite.Irq!.TargetVcpu = its.Vcpu(c!.TargetAddr);
        return 0;
    }

    /// <summary>vgic_its_cmd_handle_discard: an ITE with a mapped collection is freed; else E_ITS_DISCARD_UNMAPPED_INTERRUPT.</summary>
    private static long Discard(VgicIts its, ReadOnlySpan<ulong> cmd)
    {
        uint deviceId = DeviceId(cmd);
        var ite = its.FindIte(deviceId, Id(cmd));
        if (ite is null || !VgicIts.IsMapped(ite.Collection)) return E_ITS_DISCARD_UNMAPPED_INTERRUPT;
        its.FreeIte(its.FindDevice(deviceId)!, ite);
        return 0;
    }

    /// <summary>vgic_its_cmd_handle_clear: the LPI's pending_latch is cleared; no ITE → E_ITS_CLEAR_UNMAPPED_INTERRUPT.</summary>
    private static long Clear(VgicIts its, ReadOnlySpan<ulong> cmd)
    {
        var ite = its.FindIte(DeviceId(cmd), Id(cmd));
        if (ite is null) return E_ITS_CLEAR_UNMAPPED_INTERRUPT;
        ite.Irq!.PendingLatch = false;
        return 0;
    }

    /// <summary>vgic_its_cmd_handle_inv: the LPI rereads its configuration byte; no ITE → E_ITS_INV_UNMAPPED_INTERRUPT.</summary>
    private static long Inv(VgicIts its, ReadOnlySpan<ulong> cmd)
    {
        var ite = its.FindIte(DeviceId(cmd), Id(cmd));
        if (ite is null) return E_ITS_INV_UNMAPPED_INTERRUPT;
        return VgicLpi.UpdateConfig(its.Kvm, ite.Irq!, null) ? 0 : Vfs.Err.EFAULT;
    }

    /// <summary>
    /// vgic_its_cmd_handle_invall: the collection must be mapped (E_ITS_INVALL_UNMAPPED_COLLECTION); every LPI targeting
    /// its vCPU rereads its configuration (vgic_its_invall).
    /// </summary>
    private static long Invall(VgicIts its, ReadOnlySpan<ulong> cmd)
    {
        var c = its.FindCollection(Collection(cmd));
        if (!VgicIts.IsMapped(c)) return E_ITS_INVALL_UNMAPPED_COLLECTION;
        var vcpu = its.Vcpu(c!.TargetAddr);
        foreach (var irq in VgicLpi.Targeting(its.Kvm, vcpu)) _ = VgicLpi.UpdateConfig(its.Kvm, irq, vcpu);
        return 0;
    }

    /// <summary>
    /// vgic_its_cmd_handle_movall: both targets must be online vCPUs (E_ITS_MOVALL_PROCNUM_OOR); every LPI of the VM
    /// targeting the first moves to the second.
    /// </summary>
    private static long Movall(VgicIts its, ReadOnlySpan<ulong> cmd)
    {
        uint t1 = TargetAddr(cmd), t2 = (uint)Field(cmd, 3, 16, 32);
        int online = its.Kvm.Vcpus.Count;
        if (t1 >= (uint)online || t2 >= (uint)online) return E_ITS_MOVALL_PROCNUM_OOR;
        if (t1 == t2) return 0;
        var v1 = its.Vcpu(t1);
        var v2 = its.Vcpu(t2);
        foreach (var irq in VgicLpi.Targeting(its.Kvm, v1)) irq.TargetVcpu = v2;
        return 0;
    }
}
