// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_stats_header</c>, 24 bytes: the first bytes of a binary statistics file (KVM_GET_STATS_FD on a VM or
/// vCPU fd). The id string (<see cref="name_size"/> bytes, NUL-padded) lies at <see cref="id_offset"/>,
/// <see cref="num_desc"/> descriptors of <c>sizeof(struct kvm_stats_desc) + name_size</c> bytes each at
/// <see cref="desc_offset"/>, and the values (__u64 each) at <see cref="data_offset"/>.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_stats_header
{
    /// <summary>Reserved, 0.</summary>
    public uint flags;
    /// <summary>Bytes of the id string and of each descriptor's name (KVM_STATS_NAME_SIZE, 48, in every kernel so far).</summary>
    public uint name_size;
    public uint num_desc;
    public uint id_offset;
    public uint desc_offset;
    public uint data_offset;
}
