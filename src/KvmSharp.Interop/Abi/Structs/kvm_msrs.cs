// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_msr_entry</c>, 16 bytes (arch/x86/include/uapi/asm/kvm.h): <c>__u32 index; __u32 reserved; __u64
/// data</c>. One element of <see cref="kvm_msrs"/>'s flexible array; reserved is not checked by the kernel.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_msr_entry
{
    public uint index;
    public uint reserved;
    public ulong data;
}

/// <summary>
/// The 8-byte header of <c>struct kvm_msrs</c> (KVM_GET_MSRS / KVM_SET_MSRS): <c>__u32 nmsrs; __u32 pad; struct
/// kvm_msr_entry entries[]</c>. The ioctl size covers the header only; <see cref="nmsrs"/> entries follow it.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_msrs
{
    public uint nmsrs;
    public uint pad;
}

/// <summary>
/// The 4-byte header of <c>struct kvm_msr_list</c> (KVM_GET_MSR_INDEX_LIST, KVM_GET_MSR_FEATURE_INDEX_LIST):
/// <c>__u32 nmsrs; __u32 indices[]</c>. In: the room for indices; out: how many the kernel has.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_msr_list
{
    public uint nmsrs;
}
