// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>struct kvm_lapic_irq as the IOAPIC and MSIs build it (destination shorthand always "none").</summary>
internal readonly record struct ApicIrq(byte Vector, int DeliveryMode, bool LogicalDest, bool LevelTriggered, bool Level, uint DestId);

/// <summary>
/// arch/x86/kvm/lapic.c kvm_irq_delivery_to_apic (and its _fast path over the APIC map) and irq.c kvm_set_msi: an
/// interrupt message to the local APICs it names. Answers what the kernel answers: -1 when nothing could take it,
/// else how many APICs accepted it (0 included: e.g. a software-disabled APIC).
/// </summary>
internal static class ApicDelivery
{
    private const int DmFixed = 0, DmLowest = 1, DmSmi = 2, DmRemrd = 3, DmNmi = 4, DmInit = 5, DmStartup = 6;
    private const uint Broadcast = 0xff;
    private const ulong ApicBaseEnable = 1UL << 11;

    /// <summary>
    /// irq.c kvm_set_msi: "if (!level) return -1"; kvm_set_msi_irq decodes the message — destination address bits
    /// 19:12 (x86_msi_msg_get_destid without x2apic_format), logical bit 2; data bits 7:0 vector, 10:8 delivery mode,
    /// 15 level-triggered — then kvm_irq_delivery_to_apic.
    /// </summary>
    public static int SetMsi(Kvm kvm, uint addressLo, uint addressHi, uint data, bool level)
    {
        _ = addressHi; // destid_8_31 counts only with KVM_CAP_X2APIC_API's x2apic_format (not modelled)
        if (!level) return -1;
        var irq = new ApicIrq(
            Vector: (byte)data, DeliveryMode: (int)((data >> 8) & 7), LogicalDest: (addressLo & (1u << 2)) != 0,
            LevelTriggered: (data & (1u << 15)) != 0, Level: true, DestId: (addressLo >> 12) & 0xff);
        return ToApic(kvm, irq);
    }

    /// <summary>
    /// lapic.c kvm_irq_delivery_to_apic. The fast path (kvm_irq_delivery_to_apic_fast) answers when an APIC map exists
    /// (some vCPU has a hardware-enabled APIC) and the destination is not the broadcast 0xff: it starts from 0, so a
    /// destination nobody has gives 0. Otherwise every present APIC (kvm_apic_present) that matches is tried, starting
    /// from -1. Lowest priority goes to one software-enabled match, chosen by vector hashing (kvm_vector_to_index,
    /// vector_hashing on by default).
    /// </summary>
    public static int ToApic(Kvm kvm, ApicIrq irq)
    {
        var present = kvm.Vcpus.Where(v => v.Lapic is not null && (v.Cpu.Sregs.apic_base & ApicBaseEnable) != 0).ToList();
        bool fast = present.Count > 0 && irq.DestId != Broadcast;
        int r = fast ? 0 : -1;
        var matches = present.Where(v => Matches(v.Lapic!, irq)).ToList();
        if (irq.DeliveryMode == DmLowest)
        {
            var enabled = matches.Where(v => v.Lapic!.SoftwareEnabled).ToList();
            if (enabled.Count == 0) return r;
            return Accept(kvm, enabled[irq.Vector % enabled.Count], irq);
        }
        foreach (var v in matches)
        {
            if (r < 0) r = 0;
            r += Accept(kvm, v, irq);
        }
        return r;
    }

    /// <summary>
    /// lapic.c kvm_apic_match_dest for "no shorthand" in xAPIC mode: physical — broadcast or the xAPIC ID
    /// (kvm_apic_match_physical_addr); logical — kvm_apic_match_logical_addr.
    /// </summary>
    private static bool Matches(Lapic apic, in ApicIrq irq) =>
        irq.LogicalDest ? apic.MatchLogical(irq.DestId) : irq.DestId == Broadcast || irq.DestId == apic.XapicId;

    /// <summary>
    /// lapic.c __apic_accept_irq by delivery mode: fixed and lowest priority set IRR (<see cref="Lapic.AcceptFixed"/>);
    /// NMI queues an NMI (kvm_inject_nmi) — 1; SMI is kvm_inject_smi, -ENOTTY without CONFIG_KVM_SMM (0 accepted; with
    /// SMM 1, the SMI itself is not modelled); remote read 1; INIT (unless a level-triggered deassert) and STARTUP
    /// answer 1 (their pending INIT/SIPI is not modelled); ExtINT and the rest: 0 ("TODO: unsupported delivery mode").
    /// </summary>
    private static int Accept(Kvm kvm, KvmVcpu vcpu, in ApicIrq irq)
    {
        switch (irq.DeliveryMode)
        {
            case DmFixed or DmLowest:
                return vcpu.Lapic!.AcceptFixed(irq.Vector, irq.LevelTriggered, irq.Level,
                    hardwareEnabled: (vcpu.Cpu.Sregs.apic_base & ApicBaseEnable) != 0);
            case DmNmi:
                Interlocked.Increment(ref vcpu.Cpu.State.NmiQueued);
                vcpu.Cpu.State.EventRequested = true;
                return 1;
            case DmSmi:
                return kvm.Kernel.Config.Kconfig.KVM_SMM ? 1 : 0;
            case DmRemrd:
                return 1;
            case DmInit:
                return !irq.LevelTriggered || irq.Level ? 1 : 0;
            case DmStartup:
                return 1;
            default:
                return 0;
        }
    }
}
