// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation;

/// <summary>
/// The statistics this project's host (Linux 6.18.44 with kvm_pvm) lists after upstream 6.18's, read from its
/// KVM_GET_STATS_FD files (2026-12-05): each a STATS_DESC_COUNTER (flags 0, exponent 0, size 1, bucket_size 0)
/// appended to the stat struct. kvm_pvm's own counters; upstream has none of them. They stayed 0 in every probe.
/// </summary>
internal static class HostStatsSnapshot
{
    /// <summary>VM: after max_mmu_page_hash_collisions (offset 104) and max_mmu_rmap_size (112), at offset 120.</summary>
    public static readonly IReadOnlyList<string> Vm = ["mmu_kicks_spared"];

    /// <summary>vCPU: after notify_window_exits (offset 1096), at 1104 and 1112.</summary>
    public static readonly IReadOnlyList<string> Vcpu = ["pf_parked", "pf_park_timeouts"];
}
