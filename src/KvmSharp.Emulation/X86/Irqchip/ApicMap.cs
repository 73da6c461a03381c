// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// lapic.c struct kvm_apic_map, the optimized destination map of kvm_irq_delivery_to_apic_fast, as
/// kvm_recalculate_apic_map builds it: max_apic_id is 255 or the highest x2APIC ID (the vCPU id) of
/// a present APIC; the physical map by the xAPIC ID, or the x2APIC ID in x2APIC mode (kvm_recalculate_phys_map: without
/// KVM_CAP_X2APIC_API's 32-bit IDs, an ID two present APICs share disables the whole map, -EINVAL → no map); the logical map of the software-enabled APICs
/// with a non-zero LDR (kvm_recalculate_logical_map) — xAPIC flat or cluster by DFR, x2APIC (which reuses the
/// physical map, clusters of 16 by ID); mixed modes, a multi-bit xAPIC LDR or two APICs on one logical bit disable it
/// (KVM_APIC_MODE_MAP_DISABLED).
/// </summary>
internal sealed class ApicMap
{
    public const int SwDisabled = 0, Flat = 1, Cluster = 2, MapDisabled = 3, X2apic = 4;

    private const ulong ApicBaseEnable = 1UL << 11;

    private ApicMap(uint maxApicId) => Phys = new KvmVcpu?[maxApicId + 1];

    /// <summary>map-&gt;phys_map, max_apic_id + 1 entries.</summary>
    public KvmVcpu?[] Phys { get; }

    /// <summary>map-&gt;max_apic_id.</summary>
    public uint MaxApicId => (uint)Phys.Length - 1;

    /// <summary>map-&gt;logical_mode.</summary>
    public int LogicalMode { get; private set; } = SwDisabled;

    private readonly KvmVcpu?[] _flat = new KvmVcpu?[8];
    private readonly KvmVcpu?[][] _cluster = Enumerable.Range(0, 16).Select(_ => new KvmVcpu?[4]).ToArray();

    /// <summary>kvm_apic_present: an in-kernel APIC that is hardware-enabled (MSR_IA32_APICBASE_ENABLE).</summary>
    public static bool Present(KvmVcpu v) => v.Lapic is not null && (v.Cpu.Sregs.apic_base & ApicBaseEnable) != 0;

    /// <summary>
    /// kvm_recalculate_apic_map over the vCPUs that were online then, with kvm-&gt;arch.x2apic_format as it was then
    /// (<paramref name="x2apicFormat"/>); null when the physical IDs alias.
    /// </summary>
    public static ApicMap? Build(IEnumerable<KvmVcpu> members, bool x2apicFormat)
    {
        var present = members.Where(Present).Select(v => (Vcpu: v, View: v.Lapic!.View())).ToList();
        // "u32 max_id = 255; … max_id = max(max_id, kvm_x2apic_id(vcpu->arch.apic))".
        uint maxId = 255;
        foreach (var (_, view) in present) maxId = Math.Max(maxId, view.X2apicId);
        var map = new ApicMap(maxId);
        foreach (var (v, view) in present)
        {
            if (x2apicFormat)
            {
                // kvm_recalculate_phys_map with x2apic_format: "if (apic_x2apic_mode(apic) || x2apic_id > 0xff)
                // new->phys_map[x2apic_id] = apic; if (!apic_x2apic_mode(apic) && !new->phys_map[xapic_id])
                // new->phys_map[xapic_id] = apic;" — aliases are silently ignored.
                if (view.X2apic || view.X2apicId > 0xff) map.Phys[view.X2apicId] = v;
                if (!view.X2apic && map.Phys[view.XapicId] is null) map.Phys[view.XapicId] = v;
            }
            else
            {
                // Without it: "physical_id = apic_x2apic_mode(apic) ? x2apic_id : xapic_id; if (new->phys_map[physical_id])
                // return -EINVAL".
                uint id = view.X2apic ? view.X2apicId : view.XapicId;
                if (map.Phys[id] is not null) return null;
                map.Phys[id] = v;
            }
            map.AddLogical(v, view);
        }
        return map;
    }

    /// <summary>kvm_recalculate_logical_map.</summary>
    private void AddLogical(KvmVcpu v, in ApicView view)
    {
        if (LogicalMode == MapDisabled || !view.SoftwareEnabled) return;
        uint ldr = view.Ldr;
        if (ldr == 0) return;
        int mode;
        if (view.X2apic)
        {
            mode = X2apic;
        }
        else
        {
            ldr >>= 24;
            mode = view.Dfr == 0xffffffff ? Flat : Cluster;
        }
        if (LogicalMode == SwDisabled) LogicalMode = mode;
        else if (LogicalMode != mode)
        {
            LogicalMode = MapDisabled;
            return;
        }
        // "In x2APIC mode, the LDR is read-only and derived directly from the x2APIC ID … KVM reuses phys_map".
        if (view.X2apic) return;
        GetLogicalDest(ldr, out var cluster, out uint mask);
        if (mask == 0) return;
        int idx = System.Numerics.BitOperations.TrailingZeroCount(mask);
        if (!System.Numerics.BitOperations.IsPow2(mask) || cluster[idx] is not null) LogicalMode = MapDisabled;
        else cluster[idx] = v;
    }

    /// <summary>
    /// kvm_apic_map_get_logical_dest: SW_DISABLED — the flat map with an empty mask; X2APIC — the 16 physical entries
    /// from (dest &gt;&gt; 16) * 16, mask = dest &amp; 0xffff cut to the entries below max_apic_id (none past it); flat —
    /// the 8 entries, mask = dest &amp; 0xff; cluster — cluster (dest &gt;&gt; 4) &amp; 0xf, mask = dest &amp; 0xf;
    /// MAP_DISABLED — false.
    /// </summary>
    public bool GetLogicalDest(uint destId, out ArraySegment<KvmVcpu?> cluster, out uint mask)
    {
        switch (LogicalMode)
        {
            case SwDisabled:
                cluster = _flat;
                mask = 0;
                return true;
            case X2apic:
            {
                ulong offset = (ulong)(destId >> 16) * 16;
                if (offset <= MaxApicId)
                {
                    int size = (int)Math.Min(MaxApicId - offset + 1, 16);
                    cluster = new ArraySegment<KvmVcpu?>(Phys, (int)offset, size);
                    mask = destId & (0xffffu >> (16 - size));
                }
                else
                {
                    cluster = _flat;
                    mask = 0;
                }
                return true;
            }
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
