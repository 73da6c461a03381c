// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>
/// The guest→host hypercall ABI: return codes and hypercall numbers (include/uapi/linux/kvm_para.h), the
/// KVM_HC_MAP_GPA_RANGE attribute bits (arch/x86/include/uapi/asm/kvm_para.h) and the x86 KVM_EXIT_HYPERCALL flags
/// (arch/x86/include/uapi/asm/kvm.h). A hypercall returns <c>-KVM_E*</c> in RAX (truncated to 32 bits outside
/// 64-bit mode).
/// </summary>
public static class KvmPara
{
    // ---- return values for hypercalls ----
    public const long KVM_ENOSYS = 1000;
    public const long KVM_EFAULT = 14;
    public const long KVM_EINVAL = 22;
    public const long KVM_E2BIG = 7;
    public const long KVM_EPERM = 1;
    public const long KVM_EOPNOTSUPP = 95;

    // ---- hypercall numbers (RAX) ----
    public const ulong KVM_HC_VAPIC_POLL_IRQ = 1;
    public const ulong KVM_HC_MMU_OP = 2;
    public const ulong KVM_HC_FEATURES = 3;
    public const ulong KVM_HC_PPC_MAP_MAGIC_PAGE = 4;
    public const ulong KVM_HC_KICK_CPU = 5;
    public const ulong KVM_HC_MIPS_GET_CLOCK_FREQ = 6;
    public const ulong KVM_HC_MIPS_EXIT_VM = 7;
    public const ulong KVM_HC_MIPS_CONSOLE_OUTPUT = 8;
    public const ulong KVM_HC_CLOCK_PAIRING = 9;
    public const ulong KVM_HC_SEND_IPI = 10;
    public const ulong KVM_HC_SCHED_YIELD = 11;
    /// <summary>a0 = GPA (page aligned), a1 = number of 4 KiB pages (non-zero), a2 = attributes (x86/hypercalls.rst).</summary>
    public const ulong KVM_HC_MAP_GPA_RANGE = 12;

    // ---- KVM_HC_MAP_GPA_RANGE attributes: bits 3:0 preferred page size, bit 4 encrypted, 63:5 reserved ----
    public const ulong KVM_MAP_GPA_RANGE_PAGE_SZ_4K = 0;
    public const ulong KVM_MAP_GPA_RANGE_PAGE_SZ_2M = 1UL << 0;
    public const ulong KVM_MAP_GPA_RANGE_PAGE_SZ_1G = 1UL << 1;
    public static ulong KVM_MAP_GPA_RANGE_ENC_STAT(ulong n) => n << 4;
    public const ulong KVM_MAP_GPA_RANGE_ENCRYPTED = 1UL << 4;
    public const ulong KVM_MAP_GPA_RANGE_DECRYPTED = 0;
    /// <summary>Bits 3:0 of the attributes: the page-size encoding (Documentation/virt/kvm/x86/hypercalls.rst).</summary>
    public const ulong KVM_MAP_GPA_RANGE_PAGE_SZ_MASK = 0xf;

    // ---- kvm_run.hypercall.flags (x86) ----
    /// <summary>The hypercall came from 64-bit mode (its arguments were not truncated to 32 bits).</summary>
    public const ulong KVM_EXIT_HYPERCALL_LONG_MODE = 1UL << 0;
    /// <summary>
    /// Kernel-internal (arch/x86/kvm/x86.h): flag bits 31:1 must be zero — they were the old <c>__u32 longmode</c>.
    /// </summary>
    public const ulong KVM_EXIT_HYPERCALL_MBZ = 0xffff_fffeUL;

    /// <summary>
    /// Kernel-internal (arch/x86/kvm/x86.c): the hypercalls KVM_CAP_EXIT_HYPERCALL may enable, which is also the
    /// capability's KVM_CHECK_EXTENSION answer on x86.
    /// </summary>
    public const ulong KVM_EXIT_HYPERCALL_VALID_MASK = 1UL << (int)KVM_HC_MAP_GPA_RANGE;

    /// <summary>The kernel name of a hypercall number (null when unknown).</summary>
    public static string? NameOf(ulong nr) => nr switch
    {
        KVM_HC_VAPIC_POLL_IRQ => nameof(KVM_HC_VAPIC_POLL_IRQ),
        KVM_HC_MMU_OP => nameof(KVM_HC_MMU_OP),
        KVM_HC_FEATURES => nameof(KVM_HC_FEATURES),
        KVM_HC_PPC_MAP_MAGIC_PAGE => nameof(KVM_HC_PPC_MAP_MAGIC_PAGE),
        KVM_HC_KICK_CPU => nameof(KVM_HC_KICK_CPU),
        KVM_HC_MIPS_GET_CLOCK_FREQ => nameof(KVM_HC_MIPS_GET_CLOCK_FREQ),
        KVM_HC_MIPS_EXIT_VM => nameof(KVM_HC_MIPS_EXIT_VM),
        KVM_HC_MIPS_CONSOLE_OUTPUT => nameof(KVM_HC_MIPS_CONSOLE_OUTPUT),
        KVM_HC_CLOCK_PAIRING => nameof(KVM_HC_CLOCK_PAIRING),
        KVM_HC_SEND_IPI => nameof(KVM_HC_SEND_IPI),
        KVM_HC_SCHED_YIELD => nameof(KVM_HC_SCHED_YIELD),
        KVM_HC_MAP_GPA_RANGE => nameof(KVM_HC_MAP_GPA_RANGE),
        _ => null,
    };
}
