// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_dirty_log</c>, 16 bytes (KVM_GET_DIRTY_LOG): <c>__u32 slot; __u32 padding1; union { void __user
/// *dirty_bitmap; __u64 padding2; }</c>. <see cref="slot"/> is <c>as_id &lt;&lt; 16 | id</c>; the bitmap holds one
/// bit per page of the slot, rounded up to whole 64-bit words.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_dirty_log
{
    public uint slot;
    public uint padding1;
    public ulong dirty_bitmap;
}

/// <summary>
/// <c>struct kvm_clear_dirty_log</c>, 24 bytes (KVM_CLEAR_DIRTY_LOG): <c>__u32 slot; __u32 num_pages; __u64
/// first_page; union { void __user *dirty_bitmap; __u64 padding2; }</c>. Bit i of the bitmap clears page
/// first_page + i.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_clear_dirty_log
{
    public uint slot;
    public uint num_pages;
    public ulong first_page;
    public ulong dirty_bitmap;
}
