// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_signal_mask</c> (KVM_SET_SIGNAL_MASK): 4 bytes, then <c>len</c> bytes of the signal set
/// (<c>__u8 sigset[0]</c>). The kernel takes only <c>len</c> = sizeof(sigset_t) = <see cref="KernelSigsetSize"/>.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_signal_mask
{
    public uint len;

    /// <summary>The kernel's sigset_t: _NSIG (64) bits on x86_64 and arm64.</summary>
    public const int KernelSigsetSize = 8;
}
