// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_ioeventfd</c>, 64 bytes (KVM_IOEVENTFD, VM ioctl): <c>__u64 datamatch; __u64 addr; __u32 len;
/// __s32 fd; __u32 flags; __u8 pad[36]</c>. A guest write of <see cref="len"/> bytes (0: any length, MMIO or PIO) at
/// <see cref="addr"/> (a port with KVM_IOEVENTFD_FLAG_PIO) signals the eventfd <see cref="fd"/> instead of exiting,
/// when the value equals <see cref="datamatch"/> (KVM_IOEVENTFD_FLAG_DATAMATCH) or always. pad is never checked.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_ioeventfd
{
    public ulong datamatch;
    public ulong addr;
    public uint len;
    public int fd;
    public uint flags;
    public U8x36 pad;
}

/// <summary>36 bytes (kvm_ioeventfd.pad).</summary>
[InlineArray(36)]
public struct U8x36
{
    private byte _e0;
}
