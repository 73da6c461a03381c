// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_enable_cap</c>, 104 bytes (KVM_ENABLE_CAP): <c>__u32 cap; __u32 flags; __u64 args[4]; __u8 pad[64]</c>.
/// Only <see cref="args"/>[0] means anything to KVM_CAP_EXIT_HYPERCALL; pad is not checked by the kernel.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_enable_cap
{
    public uint cap;
    public uint flags;
    public U64x4 args;
    public U8x64 pad;
}
