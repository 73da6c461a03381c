// SPDX-License-Identifier: MIT
// Host deviations in the binary statistics (vCPU io_exits, VM page counts).
namespace KvmSharp.Conformance;

public static partial class HostDeviations
{
    /// <summary>
    /// kvm_pvm (software nested KVM) never counts the vCPU statistic <c>io_exits</c>, though it lists it: upstream
    /// counts every port I/O intercept (svm.c io_interception, vmx.c handle_io: "++vcpu->stat.io_exits"). Its other
    /// exit counters do count: <c>exits</c> once per exit to userspace, <c>mmio_exits</c>, <c>halt_exits</c>.
    /// Observed on Linux 6.18 kvm_pvm (C probe, real mode): three <c>out dx, al</c> (KVM_EXIT_IO), two writes to
    /// unbacked GPAs (KVM_EXIT_MMIO) and a HLT read back exits=6, io_exits=0, mmio_exits=2, halt_exits=1,
    /// fpu_reload=6 (one per KVM_RUN) — and insn_emulation=11, one per real-mode instruction executed, as kvm_pvm
    /// emulates real mode (upstream counts only the instructions KVM emulates, such as the two MMIO writes). The
    /// emulator counts io_exits as upstream (BinaryStatsRules).
    /// </summary>
    public static bool KvmPvmIoExitsNotCounted(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>
    /// kvm_pvm (software nested KVM, shadow MMU) never moves the VM statistics pages_4k, pages_2m and pages_1g: it
    /// emulates every instruction of a guest that is not PVM-aware (its own counter insn_emulation counts each one),
    /// so no leaf SPTE is installed for the guest's memory. Upstream counts each leaf as it is installed or zapped
    /// (mmu.c kvm_update_page_stats from mmu_set_spte / tdp_mmu.c handle_changed_spte); with TDP a 2 MiB-aligned slot
    /// over a PMD-mapped THP maps 2M leaves (host_pfn_mapping_level). Observed on Linux 6.18.44 kvm_pvm (C probe
    /// /tmp/thp/lm.c, 2026-12-06): a 64-bit guest (2M and 4K guest pages alike) storing one byte to each 4 KiB page
    /// of an 8 MiB MAP_PRIVATE slot, 2 MiB-aligned and MADV_HUGEPAGE'd (smaps AnonHugePages: 8192 kB), read back
    /// pages_4k = pages_2m = pages_1g = 0, mmu_cache_miss = 1 and insn_emulation = 8195; the same without
    /// MADV_HUGEPAGE (AnonHugePages 0 kB), with KVM_MEM_LOG_DIRTY_PAGES and with a GPA 4 KiB off the host address
    /// modulo 2 MiB. A real-mode or unpaged protected-mode guest: the same zeros. The emulator's TDP profiles count as
    /// upstream; its shadow-MMU preset (this host's) answers the zeros (KvmMain/BinaryStats/VmPageStats.cs).
    /// </summary>
    public static bool KvmPvmPageStatsStayZero(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");
}
