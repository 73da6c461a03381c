// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_enc_region</c>, 16 bytes (include/uapi/linux/kvm.h): the argument of KVM_MEMORY_ENCRYPT_REG_REGION /
/// KVM_MEMORY_ENCRYPT_UNREG_REGION — a range of this process's memory (a user address, not a guest address) that an
/// SEV guest's memory lives in.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_enc_region
{
    public ulong addr;
    public ulong size;
}
