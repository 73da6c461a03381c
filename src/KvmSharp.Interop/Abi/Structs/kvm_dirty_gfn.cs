// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_dirty_gfn</c>, 16 bytes: one entry of a vCPU's dirty ring (KVM_CAP_DIRTY_LOG_RING), mmap'ed at
/// KVM_DIRTY_LOG_PAGE_OFFSET of the vCPU fd: <c>__u32 flags; __u32 slot; __u64 offset</c>. <see cref="slot"/> is
/// <c>as_id &lt;&lt; 16 | id</c>, <see cref="offset"/> the page's index in that slot; <see cref="flags"/> holds
/// KVM_DIRTY_GFN_F_DIRTY (published by KVM) and KVM_DIRTY_GFN_F_RESET (set by userspace once collected).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_dirty_gfn
{
    public uint flags;
    public uint slot;
    public ulong offset;
}
