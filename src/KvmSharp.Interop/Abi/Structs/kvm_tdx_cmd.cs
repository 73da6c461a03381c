// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_tdx_cmd</c>, 24 bytes (arch/x86/include/uapi/asm/kvm.h): the KVM_MEMORY_ENCRYPT_OP argument on a
/// TDX VM or vCPU. <c>data</c> is an immediate or a user pointer to the sub-command's struct.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_tdx_cmd
{
    /// <summary>enum kvm_tdx_cmd_id (KvmMemoryEncrypt.KVM_TDX_*).</summary>
    public uint id;
    public uint flags;
    public ulong data;
    /// <summary>Output only: userspace must pass 0 (else EINVAL).</summary>
    public ulong hw_error;
}
