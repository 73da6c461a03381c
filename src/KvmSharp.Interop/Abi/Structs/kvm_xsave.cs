// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer
/// <summary><c>__u32 region[1024]</c> of <see cref="kvm_xsave"/>.</summary>
[InlineArray(1024)] public struct U32x1024 { private uint _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169

/// <summary>
/// <c>struct kvm_xsave</c>, 4096 bytes (arch/x86/include/uapi/asm/kvm.h; KVM_GET_XSAVE / KVM_SET_XSAVE with
/// KVM_CAP_XSAVE, KVM_GET_XSAVE2 with KVM_CAP_XSAVE2): <c>__u32 region[1024]; __u32 extra[]</c>. The region is an
/// XSAVE image in the standard (non-compacted) format: the legacy fxsave area (bytes 0..511), the XSAVE header
/// (xstate_bv at 512, xcomp_bv at 520, reserved to 575) and the extended components at the offsets of the host's
/// CPUID leaf 0xD. The flexible <c>extra[]</c> is not part of the struct: KVM_GET_XSAVE2 and KVM_SET_XSAVE use as
/// many bytes as KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on the VM answers (at least 4096).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_xsave
{
    public U32x1024 region;
}
