// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_sev_snp_launch_update</c>, 64 bytes (KVM_SEV_SNP_LAUNCH_UPDATE): on success updated in place
/// (gfn_start and uaddr advance, len counts down) and copied back.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sev_snp_launch_update
{
    public ulong gfn_start;
    public ulong uaddr;
    public ulong len;
    /// <summary>KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_*.</summary>
    public byte type;
    public byte pad0;
    /// <summary>Must be zero.</summary>
    public ushort flags;
    public uint pad1;
    public U64x4 pad2;
}
