// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_sev_cmd</c>, 24 bytes (arch/x86/include/uapi/asm/kvm.h): the KVM_MEMORY_ENCRYPT_OP argument on a
/// SEV/SEV-ES/SNP VM fd. <c>error</c> receives the firmware status.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sev_cmd
{
    /// <summary>enum sev_cmd_id (KvmMemoryEncrypt.KVM_SEV_*).</summary>
    public uint id;
    public uint pad0;
    public ulong data;
    public uint error;
    public uint sev_fd;
}
