// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi.Arm64;

/// <summary>
/// The SMCCC filter and hypercall exits of arm64 (arch/arm64/include/uapi/asm/kvm.h; Documentation/virt/kvm/devices/vm.rst
/// "KVM_ARM_VM_SMCCC_CTRL", api.rst "KVM_EXIT_HYPERCALL"): the VM attribute group and attribute reached through
/// KVM_HAS/SET_DEVICE_ATTR on the VM fd, the filter actions of <see cref="kvm_smccc_filter"/>, and the arm64 flags of
/// kvm_run.hypercall.flags.
/// </summary>
public static class KvmArm64Smccc
{
    /// <summary>Device control API, arm64-specific VM attribute group (asm/kvm.h "#define KVM_ARM_VM_SMCCC_CTRL 0").</summary>
    public const uint KVM_ARM_VM_SMCCC_CTRL = 0;

    /// <summary>The attribute of <see cref="KVM_ARM_VM_SMCCC_CTRL"/> whose addr points at a <see cref="kvm_smccc_filter"/>.</summary>
    public const ulong KVM_ARM_VM_SMCCC_FILTER = 0;

    /// <summary>enum kvm_smccc_filter_action: KVM handles the call (the default for unfiltered function ids).</summary>
    public const byte KVM_SMCCC_FILTER_HANDLE = 0;

    /// <summary>KVM answers SMCCC_RET_NOT_SUPPORTED without handling the call.</summary>
    public const byte KVM_SMCCC_FILTER_DENY = 1;

    /// <summary>KVM exits to userspace with KVM_EXIT_HYPERCALL (nr = the function id).</summary>
    public const byte KVM_SMCCC_FILTER_FWD_TO_USER = 2;

    /// <summary>kvm_run.hypercall.flags: the guest used the SMC conduit (clear: HVC).</summary>
    public const ulong KVM_HYPERCALL_EXIT_SMC = 1UL << 0;

    /// <summary>kvm_run.hypercall.flags: the trapped instruction was 16 bits wide (a T32 guest; never set for A64).</summary>
    public const ulong KVM_HYPERCALL_EXIT_16BIT = 1UL << 1;
}

/// <summary>
/// asm/kvm.h <c>struct kvm_smccc_filter { __u32 base; __u32 nr_functions; __u8 action; __u8 pad[15]; }</c>, 24 bytes:
/// the function ids [base, base + nr_functions) get <c>action</c> (KVM_SMCCC_FILTER_*); pad must be zero.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_smccc_filter
{
    public uint @base;
    public uint nr_functions;
    public byte action;
    public U8x15 pad;
}

#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // the element field is accessed through the inline-array indexer
/// <summary><c>__u8 pad[15]</c> of <see cref="kvm_smccc_filter"/>.</summary>
[InlineArray(15)] public struct U8x15 { private byte _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169
