// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// Divergences the differential fuzzer found in emulator code its owners change, not the fuzzer's: the x86 CPU model
/// (src/KvmSharp.Emulation/X86, being rewritten by another engineer) and EmulatedKernel.Madvise. They are reported, not
/// fixed here. By default the generator steers around them so a run keeps finding new ones; <see cref="OpGenerator"/>'s
/// <c>includeReported</c> (`kvmsharp fuzz --include-reported`) draws them again, to check a fix. Each names its reduced
/// reproducer (x86 ones: open, KVM_CREATE_VM, KVM_CREATE_VCPU id 1, then the call).
/// </summary>
public static class ReportedDivergences
{
    /// <summary>
    /// KVM_SET_REGS with RFLAGS.VM (bit 17) set, then KVM_GET_REGS: this host reports bit 17 clear (every other bit,
    /// reserved ones included, as written); the emulator keeps it. E.g. set 0x43813626751E329E → host 0x43813626751C329E.
    /// </summary>
    public const ulong RflagsVm = 1UL << 17;

    /// <summary>
    /// KVM_SET_SREGS with CR0.PG | PE (0x80000031) outside long mode (EFER.LME clear): accepted by both, but this host then
    /// reports CR0 = 0x31 (PG dropped) while the emulator keeps 0x80000031.
    /// </summary>
    public static ulong SteerCr0(ulong cr0, ulong efer) =>
        (cr0 & (1UL << 31)) != 0 && (cr0 & 1) != 0 && (efer & (1UL << 8)) == 0 ? cr0 & ~(1UL << 31) : cr0;

    /// <summary>
    /// madvise(MADV_COLLAPSE) with length 0 on a gmem mapping: the kernel returns 0 (do_madvise: "if (end == start) return
    /// 0" after the alignment checks); EmulatedKernel.Madvise answers EINVAL for any MADV_COLLAPSE on gmem. Reproducer:
    /// open, KVM_CREATE_VM, KVM_CREATE_GUEST_MEMFD(size 0xC000, MMAP|INIT_SHARED), mmap 0xC000, madvise(+0x4000, 0, 25).
    /// </summary>
    public static bool IsEmptyCollapse(ulong length, int advice) => length == 0 && advice == 25;

    /// <summary>
    /// madvise(MADV_POPULATE_READ 22 / MADV_POPULATE_WRITE 23) on a mapping of a guest_memfd created without
    /// GUEST_MEMFD_FLAG_INIT_SHARED (its pages are private: kvm_gmem_fault_user_mapping → VM_FAULT_SIGBUS): the kernel
    /// answers EFAULT; EmulatedKernel.Madvise passes the advice to its host backing, which succeeds. Reproducer: open,
    /// KVM_CREATE_VM, KVM_CREATE_GUEST_MEMFD(size 0x8000, flags MMAP), mmap 0x3000, madvise(+0, 0x2000, 23).
    /// </summary>
    public static bool IsPopulateOfPrivate(int advice, ulong gmemFlags) =>
        advice is 22 or 23 && (gmemFlags & Abi.KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED) == 0;

    // Also reported: KVM_SET_SREGS with CR8 having bits above 3 set (e.g. 0xCF7827005B7CB27): the kernel's
    // __set_sregs_common ignores kvm_set_cr8's refusal and CR8 stays 0; the emulator stores the value as given
    // (SregsMutation draws such values only with SregsMutation.WithReported).
}
