// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer
/// <summary><c>__u64 debugreg[8]</c> of <see cref="kvm_guest_debug_arch"/>.</summary>
[InlineArray(8)] public struct U64x8 { private ulong _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169

/// <summary>
/// x86 <c>struct kvm_guest_debug_arch</c> (arch/x86/include/uapi/asm/kvm.h), 64 bytes: the host's debug registers for
/// KVM_GUESTDBG_USE_HW_BP — debugreg[0..3] are the breakpoint addresses, debugreg[7] their DR7-format controls
/// (debugreg[4..6] are not used).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_guest_debug_arch
{
    public U64x8 debugreg;
}

/// <summary>
/// <c>struct kvm_guest_debug</c> (include/uapi/linux/kvm.h), 72 bytes on x86: KVM_SET_GUEST_DEBUG's argument.
/// control is a set of KVM_GUESTDBG_* bits (nothing takes effect without KVM_GUESTDBG_ENABLE, except INJECT_DB/BP).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_guest_debug
{
    public uint control;
    public uint pad;
    public kvm_guest_debug_arch arch;
}

/// <summary>
/// x86 <c>struct kvm_debug_exit_arch</c> (arch/x86/include/uapi/asm/kvm.h), 32 bytes: kvm_run.debug.arch of a
/// KVM_EXIT_DEBUG — the vector (1 = #DB, 3 = #BP), the linear address of the instruction, and DR6/DR7 where the
/// exit path writes them.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_debug_exit_arch
{
    public uint exception;
    public uint pad;
    public ulong pc;
    public ulong dr6;
    public ulong dr7;
}
