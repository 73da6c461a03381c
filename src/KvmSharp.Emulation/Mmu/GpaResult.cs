// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Mmu;

/// <summary>How a guest-physical access ended (the RET_PF_* / -errno outcomes of kvm_mmu_do_page_fault).</summary>
internal enum GpaStatus
{
    /// <summary>The bytes were read or written (RET_PF_FIXED).</summary>
    Done,

    /// <summary>No memslot, or a write to a read-only slot: emulated MMIO (RET_PF_EMULATE).</summary>
    Mmio,

    /// <summary>
    /// KVM_RUN fails with <see cref="GpaResult.Errno"/> and, for EFAULT/EIO from the fault-in path, a
    /// KVM_EXIT_MEMORY_FAULT (kvm_mmu_prepare_memory_fault_exit).
    /// </summary>
    MemoryFault,
}

/// <summary>The outcome of one guest-physical access within a page.</summary>
internal readonly record struct GpaResult(GpaStatus Status, long Errno = 0, ulong Gpa = 0, bool Private = false)
{
    public static GpaResult Done => new(GpaStatus.Done);

    public static GpaResult Mmio(ulong gpa) => new(GpaStatus.Mmio, Gpa: gpa);

    /// <summary>kvm_prepare_memory_fault_exit(gfn_to_gpa(gfn), PAGE_SIZE, …, is_private) with KVM_RUN's errno.</summary>
    public static GpaResult Fault(long errno, ulong gpa, bool isPrivate) =>
        new(GpaStatus.MemoryFault, errno, gpa & ~((ulong)EmulatorConfig.PageSize - 1), isPrivate);
}
