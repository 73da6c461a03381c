// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// lapic.c struct kvm_apic_map, the optimized destination map of kvm_irq_delivery_to_apic_fast, as
/// kvm_recalculate_apic_map builds it (xAPIC mode, no x2apic_format): the physical map by xAPIC ID (an ID two present
/// APICs share disables the whole map: kvm_recalculate_phys_map -EINVAL → no map), and the logical map of the
/// software-enabled APICs with a non-zero LDR — flat or cluster by DFR; mixed modes, a multi-bit LDR or two APICs on one
/// logical bit disable it (KVM_APIC_MODE_MAP_DISABLED).
/// </summary>
internal sealed class ApicMap
{
    public const int SwDisabled = 0, Flat = 1, Cluster = 2, MapDisabled = 3;

    private const ulong ApicBaseEnable = 1UL << 11;

    /// <summary>map-&gt;phys_map (max_apic_id 255: vCPU ids here are below 256).</summary>
    public KvmVcpu?[] Phys { get; } = new KvmVcpu?[256];

    /// <summary>map-&gt;logical_mode.</summary>
    public int LogicalMode { get; private set; } = SwDisabled;

    private readonly KvmVcpu?[] _flat = new KvmVcpu?[8];
    private readonly KvmVcpu?[][] _cluster = Enumerable.Range(0, 16).Select(_ => new KvmVcpu?[4]).ToArray();

    /// <summary>kvm_apic_present: an in-kernel APIC that is hardware-enabled (MSR_IA32_APICBASE_ENABLE).</summary>
    public static bool Present(KvmVcpu v) => v.Lapic is not null && (v.Cpu.Sregs.apic_base & ApicBaseEnable) != 0;

    /// <summary>kvm_recalculate_apic_map over the vCPUs that were online then; null when the physical IDs alias.</summary>
    public static ApicMap? Build(IEnumerable<KvmVcpu> members)
    {
        var map = new ApicMap();
        foreach (var v in members)
        {
            if (!Present(v)) continue;
            uint id = v.Lapic!.XapicId;
            if (map.Phys[id] is not null) return null;
            map.Phys[id] = v;
            map.AddLogical(v);
        }
        return map;
    }

    /// <summary>kvm_recalculate_logical_map for an xAPIC-mode APIC.</summary>
    private void AddLogical(KvmVcpu v)
    {
        var apic = v.Lapic!;
        if (LogicalMode == MapDisabled || !apic.SoftwareEnabled) return;
        uint ldr = apic.Get(Lapic.Ldr);
        if (ldr == 0) return;
        ldr >>= 24;
        int mode = apic.Get(Lapic.Dfr) == 0xffffffff ? Flat : Cluster;
        if (LogicalMode == SwDisabled) LogicalMode = mode;
        else if (LogicalMode != mode)
        {
            LogicalMode = MapDisabled;
            return;
        }
        GetLogicalDest(ldr, out var cluster, out uint mask);
        if (mask == 0) return;
        int idx = System.Numerics.BitOperations.TrailingZeroCount(mask);
        if (!System.Numerics.BitOperations.IsPow2(mask) || cluster[idx] is not null) LogicalMode = MapDisabled;
        else cluster[idx] = v;
    }

    /// <summary>
    /// kvm_apic_map_get_logical_dest: SW_DISABLED — the flat map with an empty mask; flat — the 8 entries, mask = dest
    /// &amp; 0xff; cluster — cluster (dest &gt;&gt; 4) &amp; 0xf, mask = dest &amp; 0xf; MAP_DISABLED — false.
    /// </summary>
    public bool GetLogicalDest(uint destId, out KvmVcpu?[] cluster, out uint mask)
    {
        switch (LogicalMode)
        {
            case SwDisabled:
                cluster = _flat;
                mask = 0;
                return true;
            case Flat:
                cluster = _flat;
                mask = destId & 0xff;
                return true;
            case Cluster:
                cluster = _cluster[(destId >> 4) & 0xf];
                mask = destId & 0xf;
                return true;
            default:
                cluster = _flat;
                mask = 0;
                return false;
        }
    }
}
