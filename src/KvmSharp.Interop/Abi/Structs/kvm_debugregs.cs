// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer
/// <summary><c>__u64 reserved[9]</c> of <see cref="kvm_debugregs"/>.</summary>
[InlineArray(9)] public struct U64x9 { private ulong _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169

/// <summary>
/// <c>struct kvm_debugregs</c>, 128 bytes (KVM_GET_DEBUGREGS / KVM_SET_DEBUGREGS, KVM_CAP_DEBUGREGS): DR0..DR3, DR6,
/// DR7. SET: flags must be 0 and DR6/DR7 bits 63:32 clear (EINVAL); reserved is not checked.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_debugregs
{
    public U64x4 db;
    public ulong dr6;
    public ulong dr7;
    public ulong flags;
    public U64x9 reserved;
}
