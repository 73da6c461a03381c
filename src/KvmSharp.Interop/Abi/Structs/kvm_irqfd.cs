// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_irqfd</c>, 32 bytes (KVM_IRQFD, VM ioctl): <c>__u32 fd; __u32 gsi; __u32 flags; __u32 resamplefd;
/// __u8 pad[16]</c>. Signalling <see cref="fd"/> raises <see cref="gsi"/> on the in-kernel irqchip; without one an
/// assignment is refused (x86: EINVAL, kvm_arch_irqfd_allowed). pad is never checked.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_irqfd
{
    public uint fd;
    public uint gsi;
    public uint flags;
    public uint resamplefd;
    public U8x16 pad;
}

/// <summary>16 bytes (kvm_irqfd.pad).</summary>
[InlineArray(16)]
public struct U8x16
{
    private byte _e0;
}
