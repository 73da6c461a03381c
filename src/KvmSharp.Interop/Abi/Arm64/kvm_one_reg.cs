// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi.Arm64;

/// <summary>
/// include/uapi/linux/kvm.h <c>struct kvm_one_reg { __u64 id; __u64 addr; }</c>, 16 bytes (KVM_GET/SET_ONE_REG).
/// <c>addr</c> is a user pointer to a buffer of KVM_REG_SIZE(id) bytes: the kernel copies the value through it.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_one_reg
{
    public ulong id;
    public ulong addr;
}
