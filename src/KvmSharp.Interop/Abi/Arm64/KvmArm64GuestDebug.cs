// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static KvmSharp.Abi.IoctlEncoding;

namespace KvmSharp.Abi.Arm64;

/// <summary>
/// arm64 <c>struct kvm_guest_debug_arch</c> (arch/arm64/include/uapi/asm/kvm.h), 512 bytes: the host's hardware
/// breakpoints (dbg_bcr/dbg_bvr: DBGBCRn_EL1 control, DBGBVRn_EL1 address) and watchpoints (dbg_wcr/dbg_wvr), each
/// <c>__u64[KVM_ARM_MAX_DBG_REGS]</c>; read by the kernel only with KVM_GUESTDBG_USE_HW. The C name is x86's
/// <see cref="kvm_guest_debug_arch"/> too, hence the suffix here.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_guest_debug_arch_arm64
{
    public U64x16 dbg_bcr;
    public U64x16 dbg_bvr;
    public U64x16 dbg_wcr;
    public U64x16 dbg_wvr;
}

/// <summary>
/// <c>struct kvm_guest_debug</c> (include/uapi/linux/kvm.h) as arm64 lays it out, 520 bytes: control, pad, then
/// <see cref="kvm_guest_debug_arch_arm64"/>. KVM_SET_GUEST_DEBUG's size field is this size on arm64
/// (<see cref="KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64"/>), 72 on x86 (<see cref="kvm_guest_debug"/>).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_guest_debug_arm64
{
    public uint control;
    public uint pad;
    public kvm_guest_debug_arch_arm64 arch;
}

/// <summary>
/// arm64 <c>struct kvm_debug_exit_arch { __u32 hsr; __u32 hsr_high; __u64 far; }</c> (asm/kvm.h since 5.19,
/// "KVM: arm64: uapi: Add kvm_debug_exit_arch.hsr_high"), 16 bytes: kvm_run.debug.arch of a KVM_EXIT_DEBUG — ESR_EL2
/// bits 31:0 and 63:32 (the latter valid with KVM_DEBUG_ARCH_HSR_HIGH_VALID in kvm_run.flags) and, for a watchpoint,
/// FAR_EL2.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_debug_exit_arch_arm64
{
    public uint hsr;
    public uint hsr_high;
    public ulong far;
}

/// <summary>The arm64 KVM_SET_GUEST_DEBUG / KVM_EXIT_DEBUG numbers of arch/arm64/include/uapi/asm/kvm.h.</summary>
public static class KvmArm64GuestDebug
{
    /// <summary>asm/kvm.h <c>#define KVM_ARM_MAX_DBG_REGS 16</c>: the length of each dbg_* array.</summary>
    public const int KVM_ARM_MAX_DBG_REGS = 16;

    /// <summary>
    /// asm/kvm.h <c>#define KVM_GUESTDBG_USE_HW (1 &lt;&lt; 17)</c>: the dbg_* registers are the host's breakpoints and
    /// watchpoints (x86 calls the same bit KVM_GUESTDBG_USE_HW_BP; KVM_GUESTDBG_USE_SW_BP, 1 &lt;&lt; 16, is spelled
    /// alike on both: <see cref="KvmConstants.KVM_GUESTDBG_USE_SW_BP"/>).
    /// </summary>
    public const uint KVM_GUESTDBG_USE_HW = 1u << 17;

    /// <summary>asm/kvm.h <c>#define KVM_DEBUG_ARCH_HSR_HIGH_VALID (1 &lt;&lt; 0)</c>: kvm_run.flags of a KVM_EXIT_DEBUG whose hsr_high is set.</summary>
    public const ushort KVM_DEBUG_ARCH_HSR_HIGH_VALID = 1 << 0;

    /// <summary>
    /// vCPU ioctl KVM_SET_GUEST_DEBUG, <c>_IOW(KVMIO, 0x9b, struct kvm_guest_debug)</c>, as arm64 encodes it (the
    /// 520-byte struct): 0x4208AE9B. Suffixed because x86's number (72 bytes) is <see cref="KvmIoctls.KVM_SET_GUEST_DEBUG"/>.
    /// </summary>
    public static readonly uint KVM_SET_GUEST_DEBUG_ARM64 = _IOW(KvmIoctls.KVMIO, 0x9b, (uint)Unsafe.SizeOf<kvm_guest_debug_arm64>());

    /// <summary>kvm_run offset of debug.arch.hsr (the exit union starts at 32).</summary>
    public const int kvm_run_debug_arch_hsr = KvmRunLayout.exit_union;

    /// <summary>kvm_run offset of debug.arch.hsr_high.</summary>
    public const int kvm_run_debug_arch_hsr_high = KvmRunLayout.exit_union + 4;

    /// <summary>kvm_run offset of debug.arch.far.</summary>
    public const int kvm_run_debug_arch_far = KvmRunLayout.exit_union + 8;
}
