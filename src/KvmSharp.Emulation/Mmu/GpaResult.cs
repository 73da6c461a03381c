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

/// <summary>
/// The outcome of one guest-physical access within a page. <see cref="IsUserfault"/>: the memory fault exit also carries
/// KVM_MEMORY_EXIT_FLAG_USERFAULT ([PATCH v3 04/15]); <see cref="NoExit"/>: KVM_RUN fails with the errno alone and
/// kvm_run is left as it was (kvm_do_userfault's unreadable bitmap).
/// </summary>
internal readonly record struct GpaResult(GpaStatus Status, long Errno = 0, ulong Gpa = 0, bool Private = false, bool IsUserfault = false, bool NoExit = false, bool TdPending = false, bool SnpUnvalidated = false, bool SnpRmpNpf = false)
{
    /// <summary>
    /// A TD's access to a PENDING private page (Arch/X86/TdxSept.cs): the TDX module's #VE or, with SEPT_VE_DISABLE,
    /// KVM's tdx_handle_ept_violation; the emulator decides which (X86Emulator.TdxModule.cs). <paramref name="gpa"/>
    /// is the access's full GPA (without the shared bit, which it lacks).
    /// </summary>
    public static GpaResult TdPendingAccess(ulong gpa) => new(GpaStatus.MemoryFault, Vfs.Err.EFAULT, gpa, true, TdPending: true);

    /// <summary>
    /// An SNP guest's private access to a page whose RMP entry is assigned but not validated (Arch/X86/SnpRmp.cs): the
    /// CPU raises #VC in the guest instead (AMD APM Vol. 2, 15.36 SEV-SNP "Page Validation": error code 0x404; X86Emulator.Pvalidate.cs).
    /// </summary>
    public static GpaResult SnpUnvalidatedAccess(ulong gpa) => new(GpaStatus.MemoryFault, Vfs.Err.EFAULT, gpa, true, SnpUnvalidated: true);

    /// <summary>
    /// An SNP guest's private access that fails the RMP's ASID/GPA check (Arch/X86/SnpRmpVmpl.cs): an #NPF with the
    /// RMP bit that KVM's sev_handle_rmp_fault leaves as it is — the guest re-runs the instruction.
    /// </summary>
    public static GpaResult SnpRmpNestedFault(ulong gpa) => new(GpaStatus.MemoryFault, Vfs.Err.EFAULT, gpa, true, SnpRmpNpf: true);

    /// <summary>kvm_do_userfault for a set bit: the page's memory fault exit with the USERFAULT flag, KVM_RUN → EFAULT.</summary>
    public static GpaResult Userfault(ulong gpa, bool isPrivate) =>
        new(GpaStatus.MemoryFault, Vfs.Err.EFAULT, gpa & ~((ulong)EmulatorConfig.PageSize - 1), isPrivate, IsUserfault: true);

    /// <summary>A fault-path failure that returns -errno without preparing a memory fault exit.</summary>
    public static GpaResult BareFault(long errno) => new(GpaStatus.MemoryFault, errno, NoExit: true);

    public static GpaResult Done => new(GpaStatus.Done);

    public static GpaResult Mmio(ulong gpa) => new(GpaStatus.Mmio, Gpa: gpa);

    /// <summary>kvm_prepare_memory_fault_exit(gfn_to_gpa(gfn), PAGE_SIZE, …, is_private) with KVM_RUN's errno.</summary>
    public static GpaResult Fault(long errno, ulong gpa, bool isPrivate) =>
        new(GpaStatus.MemoryFault, errno, gpa & ~((ulong)EmulatorConfig.PageSize - 1), isPrivate);
}
