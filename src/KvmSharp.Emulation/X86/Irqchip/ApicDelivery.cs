// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// struct kvm_lapic_irq as the IOAPIC, MSIs (kvm_set_msi_irq) and IPIs (kvm_icr_to_lapic_irq) build it. Shorthand: 0
/// none, 1 self, 2 all including self, 3 all but self (ICR bits 19:18). <see cref="RedirHint"/> is an MSI's
/// msi_redir_hint (address bit 3), which makes the message lowest-priority (kvm_lowest_prio_delivery).
/// </summary>
internal readonly record struct ApicIrq(byte Vector, int DeliveryMode, bool LogicalDest, bool LevelTriggered, bool Level, uint DestId,
    int Shorthand = 0, bool RedirHint = false);

/// <summary>
/// arch/x86/kvm/lapic.c __kvm_irq_delivery_to_apic (its fast path over the APIC map, __kvm_irq_delivery_to_apic_fast /
/// kvm_apic_map_get_dest_lapic, then the walk over every present APIC), __apic_accept_irq, and irq.c kvm_set_msi:
/// an interrupt message to the local APICs it names. Answers what the kernel answers: -1 when nothing could take it,
/// else how many APICs accepted it (0 included). Probed on this host (Conformance/Cases/IrqchipRules.cs,
/// LapicDelivery.cs): delivery modes 3 (remote read) and 6 (startup) are accepted (1) like NMI and INIT, 2 (SMI, no
/// CONFIG_KVM_SMM) and 7 are not (0); an MSI's address bits other than 19:12, 3 and 2 are not looked at.
/// </summary>
internal static class ApicDelivery
{
    private const int DmFixed = 0, DmLowest = 1, DmSmi = 2, DmRemrd = 3, DmNmi = 4, DmInit = 5, DmStartup = 6;
    private const int ShSelf = 1, ShAllInc = 2, ShAllBut = 3;
    private const uint Broadcast = 0xff, X2apicBroadcast = 0xffffffff;
    private const ulong ApicBaseEnable = 1UL << 11;

    /// <summary>
    /// irq.c kvm_set_msi: kvm_msi_route_invalid — with KVM_CAP_X2APIC_API's x2apic_format, address_hi bits 7:0 set →
    /// -EINVAL; "if (!level) return -1"; kvm_set_msi_irq decodes the message — destination address bits 19:12, with
    /// x2apic_format also address_hi bits 31:8 as destination bits 31:8 (x86_msi_msg_get_destid), redirect hint bit 3,
    /// logical bit 2; data bits 7:0 vector, 10:8 delivery mode, 15 level-triggered; level always 1 — then
    /// kvm_irq_delivery_to_apic.
    /// </summary>
    public static int SetMsi(Kvm kvm, uint addressLo, uint addressHi, uint data, bool level)
    {
        bool format = kvm.Irqchip.X2apicApiFlags.Format;
        if (format && (addressHi & 0xff) != 0) return (int)Vfs.Err.EINVAL;
        if (!level) return -1;
        uint dest = ((addressLo >> 12) & 0xff) | (format ? addressHi & 0xffffff00 : 0);
        var irq = new ApicIrq(
            Vector: (byte)data, DeliveryMode: (int)((data >> 8) & 7), LogicalDest: (addressLo & (1u << 2)) != 0,
            LevelTriggered: (data & (1u << 15)) != 0, Level: true, DestId: dest,
            RedirHint: (addressLo & (1u << 3)) != 0);
        return ToApic(kvm, irq);
    }

    /// <summary>
    /// lapic.c kvm_apic_send_ipi / kvm_icr_to_lapic_irq: vector 7:0, delivery mode 10:8, logical 11, level (assert) 14,
    /// trigger 15, shorthand 19:18, destination ICR2 31:24 in xAPIC mode, the whole 32-bit ICR high half in x2APIC mode;
    /// msi_redir_hint false; the sender is the source.
    /// </summary>
    public static int SendIpi(KvmVcpu source, uint icrLow, uint icrHigh)
    {
        bool x2apic = source.Lapic?.X2apicMode ?? false;
        var irq = new ApicIrq(
            Vector: (byte)icrLow, DeliveryMode: (int)((icrLow >> 8) & 7), LogicalDest: (icrLow & (1u << 11)) != 0,
            LevelTriggered: (icrLow & (1u << 15)) != 0, Level: (icrLow & (1u << 14)) != 0, DestId: x2apic ? icrHigh : icrHigh >> 24,
            Shorthand: (int)((icrLow >> 18) & 3));
        return ToApic(source.Kvm, irq, source);
    }

    /// <summary>kvm_lowest_prio_delivery: lowest priority, or an MSI's redirect hint.</summary>
    private static bool LowestPrio(in ApicIrq irq) => irq.DeliveryMode == DmLowest || irq.RedirHint;

    /// <summary>
    /// __kvm_irq_delivery_to_apic: the fast path when it answers; else "phys broadcast and lowest prio" becomes fixed
    /// (the redirect hint still counts), then every present APIC that matches: each takes a non-lowest-priority message
    /// (r from -1), and a lowest-priority one goes to the software-enabled match kvm_vector_to_index picks (vector %
    /// count, vector_hashing on by default). With <paramref name="destMap"/> (ioapic.c's rtc_status.dest_map), each vCPU
    /// that accepted a fixed or lowest-priority interrupt is recorded with the vector (lapic.c __apic_accept_irq: "if
    /// (dest_map) { __set_bit(vcpu->vcpu_id, dest_map->map); dest_map->vectors[vcpu->vcpu_id] = vector; }").
    /// </summary>
    public static int ToApic(Kvm kvm, ApicIrq irq, KvmVcpu? source = null, Dictionary<int, int>? destMap = null)
    {
        var online = kvm.Irqchip.Online;
        if (FastPath(kvm, online, irq, source, destMap, out int r)) return r;
        if (!irq.LogicalDest && irq.DestId == Broadcast && LowestPrio(irq)) irq = irq with { DeliveryMode = DmFixed };
        r = -1;
        var eligible = new List<KvmVcpu>();
        foreach (var v in online)
        {
            if (!ApicMap.Present(v) || !MatchDest(v, source, irq)) continue;
            if (!LowestPrio(irq))
            {
                if (r < 0) r = 0;
                r += Accept(kvm, v, irq, destMap);
            }
            else if (v.Lapic!.SoftwareEnabled)
            {
                eligible.Add(v);
            }
        }
        if (eligible.Count != 0) r = Accept(kvm, eligible[irq.Vector % eligible.Count], irq, destMap);
        return r;
    }

    /// <summary>
    /// __kvm_irq_delivery_to_apic_fast + kvm_apic_map_get_dest_lapic: SELF goes to the source; another shorthand, no
    /// map, or a broadcast destination (kvm_apic_is_broadcast_dest: 0xffffffff for an IPI from an x2APIC-mode APIC, else
    /// 0xff) → not answered here. Physical: the map's entry for the ID (none, or past max_apic_id → 0). Logical: the
    /// cluster and mask from the map (MAP_DISABLED → not answered); lowest priority keeps one bit by vector hashing over
    /// the mask — an empty slot there is kvm_apic_disabled_lapic_found, delivered to none.
    /// </summary>
    private static bool FastPath(Kvm kvm, KvmVcpu[] online, in ApicIrq irq, KvmVcpu? source, Dictionary<int, int>? destMap, out int r)
    {
        r = -1;
        if (irq.Shorthand == ShSelf)
        {
            r = source is null ? 0 : Accept(kvm, source, irq, destMap);
            return true;
        }
        if (irq.Shorthand != 0) return false;
        var map = kvm.Irqchip.CurrentApicMap(online);
        if (map is null || IsBroadcastDest(kvm, source, irq, map)) return false;
        if (!irq.LogicalDest)
        {
            r = irq.DestId <= map.MaxApicId && map.Phys[irq.DestId] is { } target ? Accept(kvm, target, irq, destMap) : 0;
            return true;
        }
        if (!map.GetLogicalDest(irq.DestId, out var cluster, out uint mask)) return false;
        r = 0;
        if (LowestPrio(irq))
        {
            if (mask == 0) return true;
            int nth = irq.Vector % System.Numerics.BitOperations.PopCount(mask);
            int lowest = NthSetBit(mask, nth);
            if (cluster[lowest] is null) return true;
            mask = 1u << lowest;
        }
        for (int i = 0; i < cluster.Count; i++)
            if ((mask & (1u << i)) != 0 && cluster[i] is { } v) r += Accept(kvm, v, irq, destMap);
        return true;
    }

    /// <summary>
    /// kvm_apic_is_broadcast_dest: with the broadcast quirk disabled (KVM_CAP_X2APIC_API), 0xFF unless the logical map
    /// is x2APIC, and 0xFFFFFFFF; else the broadcast of the source's mode (an IPI from an x2APIC-mode APIC:
    /// 0xFFFFFFFF; anything else: 0xFF).
    /// </summary>
    private static bool IsBroadcastDest(Kvm kvm, KvmVcpu? source, in ApicIrq irq, ApicMap map)
    {
        if (kvm.Irqchip.X2apicApiFlags.BroadcastQuirkDisabled)
            return (irq.DestId == Broadcast && map.LogicalMode != ApicMap.X2apic) || irq.DestId == X2apicBroadcast;
        bool x2apicIpi = source?.Lapic?.X2apicMode ?? false;
        return irq.DestId == (x2apicIpi ? X2apicBroadcast : Broadcast);
    }

    private static int NthSetBit(uint mask, int n)
    {
        for (int i = 0; i < 32; i++)
            if ((mask & (1u << i)) != 0 && n-- == 0) return i;
        return -1;
    }

    /// <summary>
    /// kvm_apic_match_dest(vcpu, NULL, APIC_DEST_NOSHORT, <paramref name="destId"/>, dest mode) for a message from no
    /// source (ioapic.c kvm_ioapic_scan_entry).
    /// </summary>
    public static bool MatchesDest(KvmVcpu v, uint destId, bool logical) =>
        v.Lapic is not null && MatchDest(v, null, new ApicIrq(Vector: 0, DeliveryMode: DmFixed, LogicalDest: logical,
            LevelTriggered: false, Level: true, DestId: destId));

    /// <summary>
    /// lapic.c kvm_apic_match_dest: the message destination address is kvm_apic_mda — without
    /// KVM_CAP_X2APIC_API's broadcast-quirk disable, a non-IPI message to 0xff becomes the x2APIC broadcast 0xffffffff
    /// for an APIC in x2APIC mode. No shorthand — physical (kvm_apic_match_physical_addr: the broadcast of the APIC's
    /// mode; the x2APIC ID in x2APIC mode or when the destination is above 0xff, else the xAPIC ID) or logical
    /// (kvm_apic_match_logical_addr: broadcast; x2APIC — same cluster (LDR 31:16) and a common bit in 15:0; xAPIC —
    /// by DFR); self — the source; all including self; all but self.
    /// </summary>
    private static bool MatchDest(KvmVcpu v, KvmVcpu? source, in ApicIrq irq)
    {
        switch (irq.Shorthand)
        {
            case ShSelf: return v == source;
            case ShAllInc: return true;
            case ShAllBut: return v != source;
        }
        var view = v.Lapic!.View();
        uint mda = !v.Kvm.Irqchip.X2apicApiFlags.BroadcastQuirkDisabled && source is null && irq.DestId == Broadcast && view.X2apic
            ? X2apicBroadcast : irq.DestId;
        if (mda == (view.X2apic ? X2apicBroadcast : Broadcast)) return true;
        if (!irq.LogicalDest) return view.X2apic || mda > 0xff ? mda == view.X2apicId : mda == view.XapicId;
        if (view.X2apic) return (view.Ldr >> 16) == (mda >> 16) && (view.Ldr & mda & 0xffff) != 0;
        uint logicalId = view.Ldr >> 24;
        return view.Dfr switch
        {
            0xffffffff => (logicalId & mda) != 0,
            0x0fffffff => (logicalId >> 4) == (mda >> 4) && (logicalId & mda & 0xf) != 0,
            _ => false,
        };
    }

    /// <summary>
    /// lapic.c __apic_accept_irq by delivery mode: fixed and lowest priority set IRR (<see cref="Lapic.AcceptFixed"/>);
    /// remote read 1 (pv_unhalted: a halted vCPU wakes); SMI is kvm_inject_smi, -ENOTTY without CONFIG_KVM_SMM (0); NMI
    /// queues an NMI (kvm_inject_nmi) — 1; INIT (unless a level-triggered deassert) makes KVM_APIC_INIT the only
    /// pending event — 1; STARTUP records the vector and KVM_APIC_SIPI — 1; ExtINT and 7: 0. Every accepted message
    /// kicks the vCPU (kvm_vcpu_kick: a vCPU waiting in KVM_RUN looks again).
    /// </summary>
    private static int Accept(Kvm kvm, KvmVcpu vcpu, in ApicIrq irq, Dictionary<int, int>? destMap = null)
    {
        int result;
        var s = vcpu.Cpu.State;
        switch (irq.DeliveryMode)
        {
            case DmFixed or DmLowest:
                result = vcpu.Lapic!.AcceptFixed(irq.Vector, irq.LevelTriggered, irq.Level,
                    hardwareEnabled: (vcpu.Cpu.Sregs.apic_base & ApicBaseEnable) != 0);
                if (result == 1 && destMap is not null) destMap[vcpu.Id] = irq.Vector;
                break;
            case DmRemrd:
                s.PvUnhalted = true;
                result = 1;
                break;
            case DmSmi:
                result = kvm.Kernel.Config.Kconfig.KVM_SMM ? 1 : 0;
                break;
            case DmNmi:
                Interlocked.Increment(ref s.NmiQueued);
                s.EventRequested = true;
                result = 1;
                break;
            case DmInit:
                if (irq.LevelTriggered && !irq.Level) return 0;
                // "apic->pending_events = (1UL << KVM_APIC_INIT)" — a pending SIPI is dropped.
                lock (s.ApicEventsLock)
                {
                    s.InitPending = true;
                    s.SipiPending = false;
                }
                s.EventRequested = true;
                result = 1;
                break;
            case DmStartup:
                lock (s.ApicEventsLock)
                {
                    s.SipiVector = irq.Vector;
                    s.SipiPending = true;
                }
                s.EventRequested = true;
                result = 1;
                break;
            default:
                return 0;
        }
        if (result != 0) vcpu.Kick();
        return result;
    }
}
