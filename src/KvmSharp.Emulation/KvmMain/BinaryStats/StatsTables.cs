// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.KvmMain.BinaryStats;

/// <summary>
/// The descriptor tables of upstream 6.18, in the kernel's order, with offsets as the stat structs lay them out
/// (<c>offsetof(struct kvm_vm_stat, …)</c>, <c>offsetof(struct kvm_vcpu_stat, …)</c>; every value is a u64). Every
/// generation answers these (older releases had fewer x86 vCPU page-fault counters; not modelled). A configuration's
/// <see cref="EmulatorConfig.ExtraVmStats"/> / <see cref="EmulatorConfig.ExtraVcpuStats"/> come after them.
/// </summary>
internal static class StatsTables
{
    /// <summary>x86 VM stats: arch/x86/kvm/x86.c kvm_vm_stats_desc, struct kvm_vm_stat (arch/x86/include/asm/kvm_host.h).</summary>
    public static StatsTable Vm(EmulatorConfig config)
    {
        var d = new List<StatsDesc>();
        // include/linux/kvm_host.h KVM_GENERIC_VM_STATS(): struct kvm_vm_stat_generic opens every kvm_vm_stat.
        d.Add(StatsDesc.Counter("remote_tlb_flush", 0));
        d.Add(StatsDesc.Counter("remote_tlb_flush_requests", 8));
        uint end = 16;
        if (config.Architecture == Architecture.X86_64)
        {
            d.Add(StatsDesc.Counter("mmu_shadow_zapped", 16));
            d.Add(StatsDesc.Counter("mmu_pte_write", 24));
            d.Add(StatsDesc.Counter("mmu_pde_zapped", 32));
            d.Add(StatsDesc.Counter("mmu_flooded", 40));
            d.Add(StatsDesc.Counter("mmu_recycled", 48));
            d.Add(StatsDesc.Counter("mmu_cache_miss", 56));
            d.Add(StatsDesc.ICounter("mmu_unsync", 64));
            // union { struct { atomic64_t pages_4k, pages_2m, pages_1g; }; atomic64_t pages[KVM_NR_PAGE_SIZES]; }
            d.Add(StatsDesc.ICounter("pages_4k", 72));
            d.Add(StatsDesc.ICounter("pages_2m", 80));
            d.Add(StatsDesc.ICounter("pages_1g", 88));
            d.Add(StatsDesc.ICounter("nx_lpage_splits", 96));
            // The table lists max_mmu_rmap_size first; the struct has max_mmu_page_hash_collisions first.
            d.Add(StatsDesc.PCounter("max_mmu_rmap_size", 112));
            d.Add(StatsDesc.PCounter("max_mmu_page_hash_collisions", 104));
            end = 120;
        }
        // arm64 (arch/arm64/kvm/guest.c): kvm_vm_stats_desc is KVM_GENERIC_VM_STATS() alone.
        return StatsTable.Build(d, end, config.ExtraVmStats);
    }

    /// <summary>
    /// vCPU stats: KVM_GENERIC_VCPU_STATS() then x86's (arch/x86/kvm/x86.c kvm_vcpu_stats_desc) or arm64's
    /// (arch/arm64/kvm/guest.c kvm_vcpu_stats_desc) per struct kvm_vcpu_stat.
    /// </summary>
    public static StatsTable Vcpu(EmulatorConfig config)
    {
        var d = new List<StatsDesc>();
        // struct kvm_vcpu_stat_generic (include/linux/kvm_types.h): the first member of every kvm_vcpu_stat.
        d.Add(StatsDesc.Counter("halt_successful_poll", 0));
        d.Add(StatsDesc.Counter("halt_attempted_poll", 8));
        d.Add(StatsDesc.Counter("halt_poll_invalid", 16));
        d.Add(StatsDesc.Counter("halt_wakeup", 24));
        d.Add(StatsDesc.TimeNsec("halt_poll_success_ns", 32));
        d.Add(StatsDesc.TimeNsec("halt_poll_fail_ns", 40));
        d.Add(StatsDesc.TimeNsec("halt_wait_ns", 48));
        const uint Hist = StatsDesc.HaltPollHistCount * 8;
        d.Add(StatsDesc.LogHistTimeNsec("halt_poll_success_hist", 56, StatsDesc.HaltPollHistCount));
        d.Add(StatsDesc.LogHistTimeNsec("halt_poll_fail_hist", 56 + Hist, StatsDesc.HaltPollHistCount));
        d.Add(StatsDesc.LogHistTimeNsec("halt_wait_hist", 56 + 2 * Hist, StatsDesc.HaltPollHistCount));
        uint offset = 56 + 3 * Hist;
        d.Add(StatsDesc.IBoolean("blocking", offset));
        offset += 8;
        string[] arch = config.Architecture == Architecture.X86_64 ? X86VcpuCounters : Arm64VcpuCounters;
        foreach (string name in arch)
        {
            // x86: STATS_DESC_IBOOLEAN(VCPU, guest_mode); everything else is STATS_DESC_COUNTER.
            d.Add(name == "guest_mode" ? StatsDesc.IBoolean(name, offset) : StatsDesc.Counter(name, offset));
            offset += 8;
        }
        return StatsTable.Build(d, offset, config.ExtraVcpuStats);
    }

    // arch/x86/kvm/x86.c kvm_vcpu_stats_desc after KVM_GENERIC_VCPU_STATS(), in table (and struct) order (6.18).
    private static readonly string[] X86VcpuCounters =
    [
        "pf_taken", "pf_fixed", "pf_emulate", "pf_spurious", "pf_fast", "pf_mmio_spte_created", "pf_guest", "tlb_flush",
        "invlpg", "exits", "io_exits", "mmio_exits", "signal_exits", "irq_window_exits", "nmi_window_exits", "l1d_flush",
        "halt_exits", "request_irq_exits", "irq_exits", "host_state_reload", "fpu_reload", "insn_emulation",
        "insn_emulation_fail", "hypercalls", "irq_injections", "nmi_injections", "req_event", "nested_run",
        "directed_yield_attempted", "directed_yield_successful", "preemption_reported", "preemption_other",
        "guest_mode", "notify_window_exits",
    ];

    // arch/arm64/kvm/guest.c kvm_vcpu_stats_desc after KVM_GENERIC_VCPU_STATS() (6.18).
    private static readonly string[] Arm64VcpuCounters =
    [
        "hvc_exit_stat", "wfe_exit_stat", "wfi_exit_stat", "mmio_exit_user", "mmio_exit_kernel", "signal_exits", "exits",
    ];
}
