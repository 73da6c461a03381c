// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

// U32x8 and U8x16 are shared with the irqchip structs (kvm_irq_routing.cs, kvm_irqfd.cs).
#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer
/// <summary><c>__u8 pad0[6]</c>.</summary>
[InlineArray(6)] public struct U8x6 { private byte _e0; }
/// <summary><c>__u8 host_data[32]</c>.</summary>
[InlineArray(32)] public struct U8x32 { private byte _e0; }
/// <summary><c>__u8 pad0[3]</c>.</summary>
[InlineArray(3)] public struct U8x3 { private byte _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169

/// <summary><c>struct kvm_sev_init</c>, 48 bytes (arch/x86/include/uapi/asm/kvm.h): the KVM_SEV_INIT2 argument.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sev_init
{
    /// <summary>SEV features for the VMSA (a subset of KVM_X86_SEV_VMSA_FEATURES); 0 for plain SEV.</summary>
    public ulong vmsa_features;
    /// <summary>Must be zero.</summary>
    public uint flags;
    /// <summary>GHCB protocol version (0: the default, 2; must be 0 for plain SEV).</summary>
    public ushort ghcb_version;
    public ushort pad1;
    public U32x8 pad2;
}

/// <summary>
/// <c>struct kvm_sev_launch_start</c>, 40 bytes (KVM_SEV_LAUNCH_START): <c>handle</c> is written back with the
/// firmware's guest handle.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sev_launch_start
{
    public uint handle;
    public uint policy;
    public ulong dh_uaddr;
    public uint dh_len;
    public uint pad0;
    public ulong session_uaddr;
    public uint session_len;
    public uint pad1;
}

/// <summary><c>struct kvm_sev_launch_update_data</c>, 16 bytes (KVM_SEV_LAUNCH_UPDATE_DATA).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sev_launch_update_data
{
    public ulong uaddr;
    public uint len;
    public uint pad0;
}

/// <summary>
/// <c>struct kvm_sev_launch_measure</c>, 16 bytes (KVM_SEV_LAUNCH_MEASURE): <c>len</c> 0 asks for the blob's length,
/// which is written back.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sev_launch_measure
{
    public ulong uaddr;
    public uint len;
    public uint pad0;
}

/// <summary><c>struct kvm_sev_guest_status</c>, 12 bytes (KVM_SEV_GUEST_STATUS).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sev_guest_status
{
    public uint handle;
    public uint policy;
    /// <summary>The firmware's guest state (0 UNINIT, 1 LUPDATE, 2 LSECRET, 3 RUNNING …).</summary>
    public uint state;
}

/// <summary><c>struct kvm_sev_snp_launch_start</c>, 64 bytes (KVM_SEV_SNP_LAUNCH_START).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sev_snp_launch_start
{
    public ulong policy;
    public U8x16 gosvw;
    /// <summary>Must be zero.</summary>
    public ushort flags;
    public U8x6 pad0;
    public U64x4 pad1;
}

/// <summary><c>struct kvm_sev_snp_launch_finish</c>, 88 bytes (KVM_SEV_SNP_LAUNCH_FINISH).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sev_snp_launch_finish
{
    public ulong id_block_uaddr;
    public ulong id_auth_uaddr;
    public byte id_block_en;
    public byte auth_key_en;
    public byte vcek_disabled;
    public U8x32 host_data;
    public U8x3 pad0;
    /// <summary>Must be zero.</summary>
    public ushort flags;
    public U64x4 pad1;
}
