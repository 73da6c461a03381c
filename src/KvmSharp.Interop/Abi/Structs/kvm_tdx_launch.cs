// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer
/// <summary><c>__u64 reserved[250]</c>.</summary>
[InlineArray(250)] public struct U64x250 { private ulong _e0; }
/// <summary><c>__u64 reserved[12]</c>.</summary>
[InlineArray(12)] public struct U64x12 { private ulong _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169

/// <summary>
/// <c>struct kvm_tdx_capabilities</c> without its CPUID entries, 2056 bytes (arch/x86/include/uapi/asm/kvm.h): the
/// KVM_TDX_CAPABILITIES argument. <see cref="cpuid"/>.nent entries of <see cref="kvm_cpuid_entry2"/> follow directly
/// (the configurable CPUID bits).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_tdx_capabilities
{
    public ulong supported_attrs;
    public ulong supported_xfam;
    public ulong kernel_tdvmcallinfo_1_r11;
    public ulong user_tdvmcallinfo_1_r11;
    public ulong kernel_tdvmcallinfo_1_r12;
    public ulong user_tdvmcallinfo_1_r12;
    public U64x250 reserved;
    public kvm_cpuid2 cpuid;
}

/// <summary>
/// <c>struct kvm_tdx_init_vm</c> without its CPUID entries, 264 bytes: the KVM_TDX_INIT_VM argument. The TD's CPUID
/// configuration (<see cref="cpuid"/>.nent entries) follows directly.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_tdx_init_vm
{
    public ulong attributes;
    public ulong xfam;
    public U64x6 mrconfigid;
    public U64x6 mrowner;
    public U64x6 mrownerconfig;
    public U64x12 reserved;
    public kvm_cpuid2 cpuid;
}
