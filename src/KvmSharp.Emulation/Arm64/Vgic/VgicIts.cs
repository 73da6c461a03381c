// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.KvmMain.Devices;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// <c>struct vgic_its</c> (include/kvm/arm_vgic.h) with vgic-its.c's its_device / its_collection / its_ite lists
/// (6.18): where userspace placed the ITS frame, GITS_CTLR.Enable, the command queue registers, GITS_BASER0 (device
/// table) and GITS_BASER1 (collection table), the table ABI revision, and the mapped devices and collections. The
/// lists keep list_add_tail order (what KVM_DEV_ARM_ITS_SAVE_TABLES sorts). KVM's translation cache is not modelled
/// (a cache hit injects exactly what a full translation would). Guarded by the <see cref="VgicDist"/> lock.
/// </summary>
internal sealed class VgicIts(KvmDevice dev)
{
    /// <summary>COLLECTION_NOT_MAPPED.</summary>
    public const uint CollectionNotMapped = uint.MaxValue;

    public KvmDevice Dev { get; } = dev;

    public Kvm Kvm => Dev.Kvm;

    /// <summary>its->vgic_its_base (VGIC_ADDR_UNDEF until KVM_VGIC_ITS_ADDR_TYPE is set).</summary>
    public ulong Base { get; set; } = VgicDist.AddrUndef;

    public bool Enabled { get; set; }
    public ulong Cbaser { get; set; }
    public ulong Creadr { get; set; }
    public ulong Cwriter { get; set; }
    public ulong BaserDevice { get; set; }
    public ulong BaserColl { get; set; }
    public uint AbiRev { get; set; }

    public List<ItsDevice> Devices { get; } = [];
    public List<ItsCollection> Collections { get; } = [];

    public ItsDevice? FindDevice(uint id) => Devices.FirstOrDefault(d => d.Id == id);

    public ItsCollection? FindCollection(uint id) => Collections.FirstOrDefault(c => c.Id == id);

    /// <summary>find_ite.</summary>
    public ItsIte? FindIte(uint deviceId, uint eventId) => FindDevice(deviceId)?.Ites.FirstOrDefault(i => i.EventId == eventId);

    /// <summary>its_is_collection_mapped.</summary>
    public static bool IsMapped(ItsCollection? c) => c is not null && c.TargetAddr != CollectionNotMapped;

    /// <summary>kvm_get_vcpu(kvm, target_addr): the vCPU at that index, or null.</summary>
    public KvmVcpu? Vcpu(uint targetAddr) => targetAddr < (uint)Kvm.Vcpus.Count ? Kvm.Vcpus[(int)targetAddr] : null;

    /// <summary>its_free_ite: the ITE leaves its device, its LPI loses a reference.</summary>
    public void FreeIte(ItsDevice device, ItsIte ite)
    {
        device.Ites.Remove(ite);
        if (ite.Irq is { } irq) VgicLpi.Put(Kvm, irq);
    }

    /// <summary>vgic_its_free_device: "We remove all ITTEs, since we cannot leave the memory unreferenced".</summary>
    public void FreeDevice(ItsDevice device)
    {
        foreach (var ite in device.Ites.ToList()) FreeIte(device, ite);
        Devices.Remove(device);
    }

    /// <summary>vgic_its_free_collection: ITEs of that collection are left without one.</summary>
    public void FreeCollection(uint id)
    {
        var c = FindCollection(id);
        if (c is null) return;
        foreach (var d in Devices)
            foreach (var ite in d.Ites)
                if (ReferenceEquals(ite.Collection, c)) ite.Collection = null;
        Collections.Remove(c);
    }

    /// <summary>vgic_its_reset (KVM_DEV_ARM_ITS_CTRL_RESET): "We need to keep the ABI specific field values".</summary>
    public void Reset()
    {
        BaserColl &= ~VgicItsMmio.BaserValid;
        BaserDevice &= ~VgicItsMmio.BaserValid;
        Cbaser = Creadr = Cwriter = 0;
        Enabled = false;
        foreach (var d in Devices.ToList()) FreeDevice(d);
        foreach (var c in Collections.ToList()) FreeCollection(c.Id);
    }

    /// <summary>
    /// vgic_its_resolve_lpi + vgic_its_trigger_msi: a disabled ITS → -EBUSY; no ITE or an unmapped collection →
    /// E_ITS_INT_UNMAPPED_INTERRUPT (positive); the target vCPU without LPIs enabled → -EBUSY; else the LPI latches
    /// pending.
    /// </summary>
    public long TriggerMsi(uint devid, uint eventid)
    {
        if (!Enabled) return Vfs.Err.EBUSY;
        var ite = FindIte(devid, eventid);
        if (ite is null || !IsMapped(ite.Collection)) return VgicItsCommands.E_ITS_INT_UNMAPPED_INTERRUPT;
        var vcpu = Vcpu(ite.Collection!.TargetAddr);
        if (vcpu is null) return VgicItsCommands.E_ITS_INT_UNMAPPED_INTERRUPT;
        if (!VgicCpu.Of(vcpu).LpisEnabled) return Vfs.Err.EBUSY;
        ite.Irq!.PendingLatch = true;
        return 0;
    }

    /// <summary>
    /// vgic_its_inject_msi (KVM_SIGNAL_MSI and MSI routes, through kvm_set_msi: "if (!vgic_has_its(kvm)) return
    /// -ENODEV"): vgic_msi_to_its — no KVM_MSI_VALID_DEVID → EINVAL, the doorbell address not inside an ITS frame
    /// (kvm_io_bus_get_dev … IODEV_ITS) → EINVAL; then a negative trigger result is the answer, a positive one (an
    /// ITS mapping error) 0 ("the guest has blocked the MSI") and success 1.
    /// </summary>
    public static long InjectMsi(Kvm kvm, ulong address, uint data, uint flags, uint devid)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        lock (dist)
        {
            if (dist.Its.Count == 0) return Vfs.Err.ENODEV;
            if ((flags & KvmConstants.KVM_MSI_VALID_DEVID) == 0) return Vfs.Err.EINVAL;
            var its = dist.Its.FirstOrDefault(i => i.Base != VgicDist.AddrUndef && address >= i.Base &&
                                                   address - i.Base < KvmSharp.Abi.Arm64.KvmArm64Vgic.KVM_VGIC_V3_ITS_SIZE);
            if (its is null) return Vfs.Err.EINVAL;
            long r = its.TriggerMsi(devid, data);
            return r < 0 ? r : r > 0 ? 0 : 1;
        }
    }
}

/// <summary>struct its_device: an ITT at <see cref="IttAddr"/> for 2^<see cref="NumEventIdBits"/> events.</summary>
internal sealed class ItsDevice(uint id, ulong ittAddr, int numEventIdBits)
{
    public uint Id { get; } = id;
    public ulong IttAddr { get; } = ittAddr;
    public int NumEventIdBits { get; } = numEventIdBits;
    public List<ItsIte> Ites { get; } = [];
}

/// <summary>struct its_collection: a collection ID and its target redistributor (a vCPU index).</summary>
internal sealed class ItsCollection(uint id)
{
    public uint Id { get; } = id;
    public uint TargetAddr { get; set; } = VgicIts.CollectionNotMapped;
}

/// <summary>struct its_ite: an event of a device, its collection and its LPI.</summary>
internal sealed class ItsIte(uint eventId, ItsCollection? collection)
{
    public uint EventId { get; } = eventId;
    public ItsCollection? Collection { get; set; } = collection;
    public VgicIrq? Irq { get; set; }
}
