// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// arch/x86/kvm/ioapic.c: the in-kernel IOAPIC's struct kvm_ioapic_state (KVM_GET/SET_IRQCHIP chip 2), its pins as
/// KVM_IRQ_LINE and irqfds drive them (one level per IRQ source) and the EOI of a level-triggered vector from a local
/// APIC (ack notifiers, remote IRR, re-delivery). Unmasked pins deliver through <see cref="ApicDelivery"/>. The guest's
/// MMIO window at base_address (IOREGSEL/IOWIN) is not modelled.
/// </summary>
internal sealed class Ioapic
{
    /// <summary>IOAPIC_SUCCESSIVE_IRQ_MAX_COUNT (ioapic.c).</summary>
    private const int SuccessiveIrqMaxCount = 10000;

    private readonly KvmMain.Kvm _kvm;

    /// <summary>ioapic-&gt;irq_states: per pin, one bit per IRQ source whose line is high.</summary>
    private readonly ulong[] _irqStates = new ulong[NumPins];

    /// <summary>ioapic-&gt;irq_eoi: successive EOIs that found the line still high.</summary>
    private readonly int[] _irqEoi = new int[NumPins];

    public const int NumPins = 24;
    /// <summary>IOAPIC_DEFAULT_BASE_ADDRESS.</summary>
    public const ulong DefaultBaseAddress = 0xfec00000;

    private const ulong Mask = 1UL << 16, TrigLevel = 1UL << 15, RemoteIrr = 1UL << 14, DeliveryStatus = 1UL << 12;

    /// <summary>IOAPIC_MEM_LENGTH (ioapic.h): the MMIO window's size.</summary>
    public const int MemLength = 0x100;

    public ulong BaseAddress = DefaultBaseAddress;
    public uint IoRegSel, Id, Irr, Pad;
    /// <summary>ioapic-&gt;irr_delivered: edge pins delivered since they were raised (hidden from KVM_GET_IRQCHIP).</summary>
    public uint IrrDelivered;
    public readonly ulong[] Redirtbl = new ulong[NumPins];

    // ioapic.c struct rtc_status: the vCPUs RTC_GSI's last KVM_IRQ_LINE_STATUS delivery reached (vCPU id → vector)
    // and how many of them have not EOIed it yet.
    private readonly Dictionary<int, int> _rtcDestMap = [];
    private int _rtcPendingEoi;

    /// <summary>kvm_ioapic_init → kvm_ioapic_reset: every entry masked ("redirtbl[i].fields.mask = 1"), base 0xfec00000.</summary>
    public Ioapic(KvmMain.Kvm kvm)
    {
        _kvm = kvm;
        for (int i = 0; i < NumPins; i++) Redirtbl[i] = Mask;
    }

    /// <summary>kvm_get_ioapic: "memcpy(state, ioapic, …); state-&gt;irr &amp;= ~ioapic-&gt;irr_delivered" (216 bytes).</summary>
    public void Write(Span<byte> state)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(state, BaseAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(state[8..], IoRegSel);
        BinaryPrimitives.WriteUInt32LittleEndian(state[12..], Id);
        BinaryPrimitives.WriteUInt32LittleEndian(state[16..], Irr & ~IrrDelivered);
        BinaryPrimitives.WriteUInt32LittleEndian(state[20..], Pad);
        for (int i = 0; i < NumPins; i++) BinaryPrimitives.WriteUInt64LittleEndian(state[(24 + 8 * i)..], Redirtbl[i]);
    }

    /// <summary>
    /// kvm_set_ioapic: "memcpy(ioapic, state, …); ioapic-&gt;irr = 0; ioapic-&gt;irr_delivered = 0; …
    /// kvm_ioapic_inject_all(ioapic, state-&gt;irr)": the given irr bits are raised again, pin by pin (probed: every
    /// field, pad too, reads back as written while the pins stay masked).
    /// </summary>
    public void Read(ReadOnlySpan<byte> state, KvmMain.Kvm kvm)
    {
        BaseAddress = BinaryPrimitives.ReadUInt64LittleEndian(state);
        IoRegSel = BinaryPrimitives.ReadUInt32LittleEndian(state[8..]);
        Id = BinaryPrimitives.ReadUInt32LittleEndian(state[12..]);
        uint irr = BinaryPrimitives.ReadUInt32LittleEndian(state[16..]);
        Pad = BinaryPrimitives.ReadUInt32LittleEndian(state[20..]);
        for (int i = 0; i < NumPins; i++) Redirtbl[i] = BinaryPrimitives.ReadUInt64LittleEndian(state[(24 + 8 * i)..]);
        Irr = 0;
        IrrDelivered = 0;
        // kvm_ioapic_inject_all: "rtc_irq_eoi_tracking_reset(ioapic); for_each_set_bit(idx, &irr, IOAPIC_NUM_PINS)
        // ioapic_set_irq(ioapic, idx, 1, true); kvm_rtc_eoi_tracking_restore_all(ioapic)".
        _rtcDestMap.Clear();
        _rtcPendingEoi = 0;
        for (int pin = 0; pin < NumPins; pin++)
            if ((irr & (1u << pin)) != 0) SetLine(pin, level: true, kvm, lineStatus: true);
        foreach (var v in kvm.Irqchip.Online) RestoreRtcTracking(v);
    }

    /// <summary>
    /// ioapic.c kvm_ioapic_set_irq: "irq_level = __kvm_irq_line_state(&amp;ioapic-&gt;irq_states[irq], irq_source_id,
    /// level)" — the line is the OR of every source's level — then ioapic_set_irq. Caller holds the kernel lock.
    /// </summary>
    public int SetIrq(int pin, int sourceId, bool level, bool lineStatus = false)
    {
        if (level) _irqStates[pin] |= 1UL << sourceId;
        else _irqStates[pin] &= ~(1UL << sourceId);
        return SetLine(pin, _irqStates[pin] != 0, _kvm, lineStatus);
    }

    /// <summary>
    /// ioapic.c ioapic_set_irq: a low line clears irr and answers 1; a high one sets irr — an edge pin already in irr
    /// answers 0 (coalesced) — and is serviced. RTC_GSI with <paramref name="lineStatus"/> (KVM_IRQ_LINE_STATUS, and
    /// KVM_SET_IRQCHIP's re-injection) answers 0 while an earlier delivery waits for its EOI ("RTC is special:
    /// … userspace likes to know if it has been already ack-ed via EOI": rtc_irq_check_coalesced).
    /// </summary>
    private int SetLine(int pin, bool level, KvmMain.Kvm kvm, bool lineStatus = false)
    {
        uint mask = 1u << pin;
        bool edge = (Redirtbl[pin] & TrigLevel) == 0;
        if (!level)
        {
            Irr &= ~mask;
            return 1;
        }
        if (pin == RtcGsi && lineStatus && _rtcPendingEoi > 0) return 0;
        uint oldIrr = Irr;
        Irr |= mask;
        if (edge)
        {
            IrrDelivered &= ~mask;
            if (oldIrr == Irr) return 0;
        }
        return Service(pin, kvm, lineStatus);
    }

    /// <summary>
    /// lapic.c kvm_ioapic_send_eoi for the full irqchip, from the vCPU's EOI of <paramref name="vector"/> (apic_set_eoi):
    /// "if (!kvm_ioapic_handles_vector(apic, vector)) return;" (<see cref="HandlesVector"/>), then
    /// kvm_ioapic_update_eoi with the trigger mode TMR holds for the vector. Takes the kernel lock (ioapic-&gt;lock).
    /// </summary>
    public void SendEoi(Vcpu.KvmVcpu vcpu, int vector)
    {
        if (vcpu.Lapic is not { } apic) return;
        lock (_kvm.Kernel.SyncRoot)
        {
            if (!HandlesVector(vcpu, apic, vector)) return;
            UpdateEoi(vcpu, apic, vector, level: apic.TestVector(Lapic.Tmr, vector));
        }
    }

    /// <summary>
    /// lapic.c kvm_ioapic_handles_vector for the full irqchip (apic_sync_pv_eoi_to_guest: "Need EOI to update ioapic"):
    /// <see cref="HandlesVector"/> under the kernel lock.
    /// </summary>
    public bool HandlesVectorOf(Vcpu.KvmVcpu vcpu, int vector)
    {
        if (vcpu.Lapic is not { } apic) return false;
        lock (_kvm.Kernel.SyncRoot) return HandlesVector(vcpu, apic, vector);
    }

    /// <summary>
    /// kvm_ioapic_update_eoi(vcpu, vector, IOAPIC_LEVEL_TRIG) from a vCPU without directed EOI, past the
    /// ioapic_handled_vectors filter: the EOI path as the unit tests drive it directly.
    /// </summary>
    public void Eoi(int vector)
    {
        lock (_kvm.Kernel.SyncRoot)
        {
            for (int pin = 0; pin < NumPins; pin++)
                if ((byte)Redirtbl[pin] == vector) UpdateEoiOne(null, null, pin, level: true);
        }
    }

    /// <summary>
    /// The vCPU's ioapic_handled_vectors as kvm_ioapic_scan_entry fills it, evaluated at the EOI (the kernel rescans on
    /// KVM_REQ_SCAN_IOAPIC: a redirection entry or KVM_SET_IRQCHIP write, an ack notifier added or removed, an APIC
    /// map change): the vector of every entry that is level-triggered, has an ack notifier on its GSI
    /// (kvm_irq_has_notifier: an irqfd resampler) or is RTC_GSI (8), whose destination matches the vCPU
    /// (kvm_apic_match_dest, no shorthand) or whose vector is pending in its IRR (kvm_apic_pending_eoi).
    /// </summary>
    private bool HandlesVector(Vcpu.KvmVcpu vcpu, Lapic apic, int vector)
    {
        for (int pin = 0; pin < NumPins; pin++)
        {
            ulong e = Redirtbl[pin];
            if ((byte)e != vector) continue;
            if ((e & TrigLevel) == 0 && !HasAckNotifier(pin) && pin != RtcGsi) continue;
            if (ApicDelivery.MatchesDest(vcpu, (uint)(e >> 56), logical: (e & (1UL << 11)) != 0) || apic.TestVector(Lapic.Irr, vector))
                return true;
        }
        return false;
    }

    /// <summary>
    /// __rtc_irq_eoi_tracking_restore_one (KVM_SET_LAPIC's kvm_rtc_eoi_tracking_restore_one, and for every vCPU after
    /// KVM_SET_IRQCHIP): a vCPU RTC_GSI's entry targets is in the dest map exactly when the entry's vector is in its
    /// IRR or ISR (kvm_apic_pending_eoi). Caller holds the kernel lock.
    /// </summary>
    public void RestoreRtcTracking(Vcpu.KvmVcpu vcpu)
    {
        if (vcpu.Lapic is not { } apic) return;
        ulong e = Redirtbl[RtcGsi];
        if (!ApicDelivery.MatchesDest(vcpu, (uint)(e >> 56), logical: (e & (1UL << 11)) != 0)) return;
        int vector = (byte)e;
        bool pending = apic.TestVector(Lapic.Irr, vector) || apic.TestVector(Lapic.Isr, vector);
        bool tracked = _rtcDestMap.ContainsKey(vcpu.Id);
        if (pending == tracked) return;
        if (pending)
        {
            _rtcDestMap[vcpu.Id] = vector;
            _rtcPendingEoi++;
        }
        else
        {
            _rtcDestMap.Remove(vcpu.Id);
            _rtcPendingEoi = Math.Max(0, _rtcPendingEoi - 1);
        }
    }

    /// <summary>RTC_GSI (ioapic.h).</summary>
    private const int RtcGsi = 8;

    /// <summary>
    /// irqchip.c kvm_irq_has_notifier(kvm, KVM_IRQCHIP_IOAPIC, pin): an ack notifier on the pin's GSI — an irqfd
    /// resampler, or the PIT's kvm_pit_ack_irq on GSI 0 (registered while reinject is on).
    /// </summary>
    private bool HasAckNotifier(int pin) =>
        _kvm.Irqchip.Routing.ChipPinGsi.TryGetValue((KvmSharp.Abi.KvmConstants.KVM_IRQCHIP_IOAPIC, (uint)pin), out uint gsi)
        && (_kvm.Irqchip.Resamplers.Any(r => r.Gsi == gsi) || (gsi == 0 && _kvm.Pit is { Reinject: true }));

    /// <summary>
    /// ioapic.c kvm_ioapic_update_eoi → __kvm_ioapic_update_eoi: every entry with the vector runs
    /// kvm_ioapic_update_eoi_one (<see cref="UpdateEoiOne"/>), after rtc_irq_eoi.
    /// </summary>
    private void UpdateEoi(Vcpu.KvmVcpu vcpu, Lapic apic, int vector, bool level)
    {
        // rtc_irq_eoi: the vCPU's EOI of the vector the RTC delivery left it.
        if (_rtcDestMap.TryGetValue(vcpu.Id, out int rtcVector) && rtcVector == vector)
        {
            _rtcDestMap.Remove(vcpu.Id);
            _rtcPendingEoi = Math.Max(0, _rtcPendingEoi - 1);
        }
        for (int pin = 0; pin < NumPins; pin++)
            if ((byte)Redirtbl[pin] == vector) UpdateEoiOne(vcpu, apic, pin, level);
    }

    /// <summary>
    /// ioapic.c kvm_ioapic_update_eoi_one: kvm_notify_acked_irq(kvm, KVM_IRQCHIP_IOAPIC, pin) first, for an
    /// edge-triggered EOI too (an irqfd resampler lowers its line and signals its resamplefds; upstream drops
    /// ioapic-&gt;lock for it, so a re-assertion meanwhile waits in irr); then "if (trigger_mode != IOAPIC_LEVEL_TRIG ||
    /// kvm_lapic_suppress_eoi_broadcast(apic)) return" — with directed EOI (SPIV bit 12, which only KVM_SET_LAPIC can
    /// set with this IOAPIC) remote IRR stays unless KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST (lapic.c
    /// kvm_lapic_suppress_eoi_broadcast: quirked mode with the in-kernel IOAPIC respects it). Else "ent-&gt;fields.remote_irr
    /// = 0" and, if the pin is unmasked and its line still high, ioapic_service delivers it again — after
    /// IOAPIC_SUCCESSIVE_IRQ_MAX_COUNT successive ones upstream delays that by HZ / 100 (eoi_inject work); here it is
    /// delivered at once then too. A line found low resets the count.
    /// </summary>
    private void UpdateEoiOne(Vcpu.KvmVcpu? vcpu, Lapic? apic, int pin, bool level)
    {
        IrqRouting.NotifyAckedIrq(_kvm, KvmSharp.Abi.KvmConstants.KVM_IRQCHIP_IOAPIC, (uint)pin);
        if (!level || (vcpu is not null && apic is not null && SuppressEoiBroadcast(vcpu, apic))) return;
        Redirtbl[pin] &= ~RemoteIrr;
        if ((Redirtbl[pin] & Mask) == 0 && (Irr & (1u << pin)) != 0)
        {
            if (++_irqEoi[pin] == SuccessiveIrqMaxCount) _irqEoi[pin] = 0;
            Service(pin, _kvm);
        }
        else
        {
            _irqEoi[pin] = 0;
        }
    }

    /// <summary>
    /// lapic.c kvm_lapic_suppress_eoi_broadcast: SPIV's APIC_SPIV_DIRECTED_EOI, then by suppress_eoi_broadcast_mode —
    /// enabled yes, disabled no, quirked "return ioapic_in_kernel(kvm)" (yes here).
    /// </summary>
    private static bool SuppressEoiBroadcast(Vcpu.KvmVcpu vcpu, Lapic apic) =>
        (apic.Get(Lapic.Spiv) & Lapic.SpivDirectedEoi) != 0
        && vcpu.Kvm.Irqchip.X2apicApiFlags.SuppressEoiBroadcast != X2apicApi.SuppressDisabled;

    /// <summary>IOAPIC_VERSION_ID (ioapic.h): the 82093AA, which has no EOI register.</summary>
    public const uint VersionId = 0x11;

    /// <summary>IOAPIC_REG_APIC_ID, IOAPIC_REG_VERSION, IOAPIC_REG_ARB_ID (ioapic.h).</summary>
    private const uint RegApicId = 0, RegVersion = 1, RegArbId = 2;

    /// <summary>
    /// ioapic.c ioapic_read_indirect by ioregsel: VERSION "((IOAPIC_NUM_PINS - 1) &amp; 0xff) &lt;&lt; 16 | IOAPIC_VERSION_ID"
    /// (0x170011), APIC_ID and ARB_ID "(ioapic-&gt;id &amp; 0xf) &lt;&lt; 24", else redirection entry (ioregsel - 0x10) &gt;&gt; 1
    /// (beyond the 24 pins all ones), the high half for an odd ioregsel.
    /// </summary>
    public uint ReadIndirect()
    {
        switch (IoRegSel)
        {
            case RegVersion:
                return ((NumPins - 1) & 0xff) << 16 | VersionId;
            case RegApicId or RegArbId:
                return (Id & 0xf) << 24;
        }
        uint index = (IoRegSel - 0x10) >> 1;
        ulong content = index < NumPins ? Redirtbl[index] : ulong.MaxValue;
        return (IoRegSel & 1) != 0 ? (uint)(content >> 32) : (uint)content;
    }

    /// <summary>
    /// ioapic.c ioapic_write_indirect by ioregsel: VERSION and ARB_ID ignore writes; APIC_ID "ioapic-&gt;id = (val &gt;&gt; 24)
    /// &amp; 0xf"; a redirection entry beyond the 24 pins nothing; else the half is replaced with remote IRR and delivery
    /// status kept (read-only), remote IRR cleared if the entry is now edge-triggered ("Some OSes (Linux, Xen) assume
    /// that Remote IRR bit will be cleared … when the entry is configured as edge-triggered"), and a level-triggered
    /// entry whose line is high is serviced at once (ioapic_service); a change of the mask bit fires the mask notifiers
    /// of the pin's GSI first (<see cref="MaskNotifiers"/>). The vCPUs' rescans of ioapic_handled_vectors are not
    /// modelled (<see cref="HandlesVector"/> reads the table at the EOI).
    /// </summary>
    public void WriteIndirect(uint val)
    {
        switch (IoRegSel)
        {
            case RegVersion or RegArbId:
                return;
            case RegApicId:
                Id = (val >> 24) & 0xf;
                return;
        }
        uint index = (IoRegSel - 0x10) >> 1;
        if (index >= NumPins) return;
        ulong e = Redirtbl[index];
        bool maskBefore = (e & Mask) != 0;
        ulong keep = e & (RemoteIrr | DeliveryStatus);
        e = (IoRegSel & 1) != 0 ? (e & 0xffffffffUL) | ((ulong)val << 32) : (e & ~0xffffffffUL) | val;
        e = (e & ~(RemoteIrr | DeliveryStatus)) | keep;
        if ((e & TrigLevel) == 0) e &= ~RemoteIrr;
        Redirtbl[index] = e;
        // "if (mask_before != mask_after) kvm_fire_mask_notifiers(ioapic->kvm, KVM_IRQCHIP_IOAPIC, index, mask_after)".
        bool maskAfter = (e & Mask) != 0;
        if (maskBefore != maskAfter) MaskNotifiers.Fire(_kvm, KvmSharp.Abi.KvmConstants.KVM_IRQCHIP_IOAPIC, index, maskAfter);
        if ((e & TrigLevel) != 0 && (Irr & (1u << (int)index)) != 0) Service((int)index, _kvm);
    }

    /// <summary>
    /// ioapic.c ioapic_service: a masked pin, or a level pin with remote IRR set, answers -1; else the entry is sent
    /// as an APIC interrupt (kvm_irq_delivery_to_apic) — edge pins are marked irr_delivered, level pins that reached a
    /// local APIC get remote IRR.
    /// </summary>
    private int Service(int pin, KvmMain.Kvm kvm, bool lineStatus = false)
    {
        ulong e = Redirtbl[pin];
        bool level = (e & TrigLevel) != 0;
        if ((e & Mask) != 0 || (level && (e & RemoteIrr) != 0)) return -1;
        var irq = new ApicIrq(
            Vector: (byte)e, DeliveryMode: (int)((e >> 8) & 7), LogicalDest: (e & (1UL << 11)) != 0,
            LevelTriggered: level, Level: true, DestId: (uint)(e >> 56));
        if (!level) IrrDelivered |= 1u << pin;
        // "if (irq == RTC_GSI && line_status) { … ret = kvm_irq_delivery_to_apic(…, &ioapic->rtc_status.dest_map);
        // ioapic->rtc_status.pending_eoi = (ret < 0 ? 0 : ret); }".
        bool rtc = pin == RtcGsi && lineStatus;
        int ret = ApicDelivery.ToApic(kvm, irq, destMap: rtc ? _rtcDestMap : null);
        if (rtc) _rtcPendingEoi = Math.Max(0, ret);
        if (ret != 0 && level) Redirtbl[pin] |= RemoteIrr;
        return ret;
    }
}
