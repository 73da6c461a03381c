// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;

namespace KvmSharp.Emulation.KvmMain.BinaryStats;

/// <summary>
/// A header and descriptor table as the file shows them: <c>kvm_vm_stats_header</c> / <c>kvm_vcpu_stats_header</c>
/// (id at sizeof(header), descriptors after KVM_STATS_NAME_SIZE id bytes, values after the descriptors) and the
/// descriptors encoded as <c>struct _kvm_stats_desc</c> (16 bytes + a 48-byte name).
/// </summary>
internal sealed class StatsTable
{
    /// <summary>include/linux/kvm_host.h KVM_STATS_NAME_SIZE: the id's and every name's bytes.</summary>
    public const int NameSize = 48;

    private readonly Dictionary<string, int> _slots;

    private StatsTable(StatsDesc[] descs, int dataBytes)
    {
        Descriptors = descs;
        DataBytes = dataBytes;
        int descBytes = descs.Length * (Marshal.SizeOf<kvm_stats_desc>() + NameSize);
        int headerBytes = Marshal.SizeOf<kvm_stats_header>();
        Header = new kvm_stats_header
        {
            flags = 0,
            name_size = NameSize,
            num_desc = (uint)descs.Length,
            id_offset = (uint)headerBytes,
            desc_offset = (uint)(headerBytes + NameSize),
            data_offset = (uint)(headerBytes + NameSize + descBytes),
        };
        HeaderBytes = new byte[headerBytes];
        MemoryMarshal.Write(HeaderBytes, Header);
        DescBytes = new byte[descBytes];
        int stride = Marshal.SizeOf<kvm_stats_desc>() + NameSize;
        for (int i = 0; i < descs.Length; i++)
        {
            var d = descs[i];
            var raw = new kvm_stats_desc { flags = d.Flags, exponent = d.Exponent, size = d.Size, offset = d.Offset, bucket_size = d.BucketSize };
            MemoryMarshal.Write(DescBytes.AsSpan(i * stride), raw);
            Encoding.ASCII.GetBytes(d.Name, DescBytes.AsSpan(i * stride + Marshal.SizeOf<kvm_stats_desc>(), NameSize - 1));
        }
        _slots = descs.ToDictionary(d => d.Name, d => (int)(d.Offset / 8), StringComparer.Ordinal);
        Slots = new VcpuStatSlots(this);
    }

    /// <summary>Where the counters the emulator keeps lie (a VM table has none of them).</summary>
    public VcpuStatSlots Slots { get; }

    public kvm_stats_header Header { get; }

    public IReadOnlyList<StatsDesc> Descriptors { get; }

    /// <summary>sizeof(kvm->stat) / sizeof(vcpu->stat): the bytes of the values.</summary>
    public int DataBytes { get; }

    public byte[] HeaderBytes { get; }

    public byte[] DescBytes { get; }

    /// <summary>The u64 index of the statistic called <paramref name="name"/>, or -1 when the table has none.</summary>
    public int Slot(string name) => _slots.GetValueOrDefault(name, -1);

    /// <summary>The arch table, then <paramref name="extras"/> as STATS_DESC_COUNTERs appended to the stat struct.</summary>
    public static StatsTable Build(List<StatsDesc> descs, uint structEnd, IReadOnlyList<string> extras)
    {
        uint offset = structEnd;
        foreach (string name in extras)
        {
            descs.Add(StatsDesc.Counter(name, offset));
            offset += 8;
        }
        return new StatsTable([.. descs], (int)offset);
    }
}
