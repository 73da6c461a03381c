// SPDX-License-Identifier: MIT
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// A VM's or vCPU's binary statistics file (KVM_GET_STATS_FD, KVM_CAP_BINARY_STATS_FD): the header, id string and
/// descriptors are read once when it is opened; the values are read on demand with pread, into a
/// <see cref="KvmStatisticsSnapshot"/> that can be reused so periodic reads allocate nothing. Owns the descriptor;
/// Dispose closes it. The file keeps its VM alive in the kernel until then.
/// </summary>
public sealed class KvmStatistics : IDisposable
{
    private const string ReadOperation = "pread(kvm stats)";
    private readonly Dictionary<string, KvmStatisticDescriptor> _byName;

    private KvmStatistics(IKernel kernel, KernelFd handle, kvm_stats_header header, string id, KvmStatisticDescriptor[] descriptors, int valueCount)
    {
        Kernel = kernel;
        Handle = handle;
        Header = header;
        Id = id;
        Descriptors = descriptors;
        ValueCount = valueCount;
        _byName = new Dictionary<string, KvmStatisticDescriptor>(StringComparer.Ordinal);
        foreach (var d in descriptors) _byName.TryAdd(d.Name, d);
    }

    /// <summary>The kernel the descriptor belongs to.</summary>
    public IKernel Kernel { get; }

    /// <summary>The stats descriptor (O_RDONLY); pass it to raw kernel calls.</summary>
    public KernelFd Handle { get; }

    /// <summary>The file's header as read at open.</summary>
    public kvm_stats_header Header { get; }

    /// <summary>The id string: "kvm-&lt;tid&gt;" for a VM, "kvm-&lt;tid&gt;/vcpu-&lt;id&gt;" for a vCPU (tid: the creating thread).</summary>
    public string Id { get; }

    /// <summary>The statistics in file order.</summary>
    public IReadOnlyList<KvmStatisticDescriptor> Descriptors { get; }

    /// <summary>How many 64-bit values the data block holds.</summary>
    public int ValueCount { get; }

    /// <summary>The descriptor called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No statistic of that name (kernels and architectures differ).</exception>
    public KvmStatisticDescriptor GetDescriptor(string name) =>
        TryGetDescriptor(name, out var d) ? d : throw new KeyNotFoundException($"no statistic '{name}' in {Id}");

    /// <summary>The descriptor called <paramref name="name"/>, or false.</summary>
    public bool TryGetDescriptor(string name, [NotNullWhen(true)] out KvmStatisticDescriptor? descriptor) =>
        _byName.TryGetValue(name, out descriptor);

    /// <summary>Reads every value now into a new snapshot.</summary>
    /// <exception cref="KvmException">pread failed or returned fewer bytes than the data block holds.</exception>
    public KvmStatisticsSnapshot Read()
    {
        var snapshot = new KvmStatisticsSnapshot(this);
        ReadInto(snapshot);
        return snapshot;
    }

    /// <summary>Reads every value now into <paramref name="snapshot"/> (one of this file's), allocating nothing.</summary>
    /// <exception cref="ArgumentException">The snapshot belongs to another stats file.</exception>
    /// <exception cref="ObjectDisposedException">The stats file was disposed.</exception>
    /// <exception cref="KvmException">pread failed or returned fewer bytes than the data block holds.</exception>
    public void ReadInto(KvmStatisticsSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Source != this) throw new ArgumentException("the snapshot was made for another stats file", nameof(snapshot));
        ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
        ReadExactly(MemoryMarshal.AsBytes(snapshot.Writable), Header.data_offset, "values");
    }

    /// <summary>Reads the current first value of statistic <paramref name="name"/> alone (one pread of 8 bytes).</summary>
    /// <exception cref="KeyNotFoundException">No statistic of that name.</exception>
    /// <exception cref="ObjectDisposedException">The stats file was disposed.</exception>
    /// <exception cref="KvmException">pread failed.</exception>
    public ulong ReadValue(string name)
    {
        var d = GetDescriptor(name);
        ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
        ulong value = 0;
        ReadExactly(MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1)), Header.data_offset + d.Offset, name);
        return value;
    }

    /// <summary>Closes the descriptor.</summary>
    public void Dispose() => Handle.Dispose();

    /// <summary>
    /// KVM_GET_STATS_FD on <paramref name="owner"/> (a VM or vCPU fd), then the header, id and descriptors.
    /// </summary>
    internal static KvmStatistics Open(IKernel kernel, KernelFd owner, string what)
    {
        long rc = kernel.Ioctl(owner, KvmIoctls.KVM_GET_STATS_FD, 0UL);
        if (KvmCall.IsError(rc))
        {
            // Kernels before 5.14 do not know the request (ENOTTY on a vCPU, EINVAL on a VM): name the capability.
            long reported = kernel.Ioctl(owner, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)KvmCaps.KVM_CAP_BINARY_STATS_FD);
            if (reported <= 0)
                throw new KvmCapabilityException("KVM_GET_STATS_FD", (int)-rc, what, nameof(KvmCaps.KVM_CAP_BINARY_STATS_FD), Math.Max(reported, 0));
            KvmCall.ThrowKvm(rc, "KVM_GET_STATS_FD", what);
        }
        var fd = kernel.Adopt((int)rc);
        try
        {
            return ReadLayout(kernel, fd, what);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    private static KvmStatistics ReadLayout(IKernel kernel, KernelFd fd, string what)
    {
        kvm_stats_header header = default;
        ReadExactly(kernel, fd, KvmCall.Bytes(ref header), 0, "header");
        int descSize = Marshal.SizeOf<kvm_stats_desc>();
        // Sanity limits so a corrupt header is an exception, not a huge allocation.
        if (header.name_size is 0 or > 4096 || header.num_desc > 65536)
            throw Malformed(what, $"name_size={header.name_size} num_desc={header.num_desc}");
        var idBytes = new byte[header.name_size];
        ReadExactly(kernel, fd, idBytes, header.id_offset, "id");
        string id = CString(idBytes);
        int stride = descSize + (int)header.name_size;
        var raw = new byte[(long)stride * header.num_desc];
        ReadExactly(kernel, fd, raw, header.desc_offset, "descriptors");
        var descriptors = new KvmStatisticDescriptor[header.num_desc];
        long values = 0;
        for (int i = 0; i < descriptors.Length; i++)
        {
            var span = raw.AsSpan(i * stride, stride);
            var desc = MemoryMarshal.Read<kvm_stats_desc>(span);
            string name = CString(span[descSize..]);
            if (desc.offset % sizeof(ulong) != 0)
                throw Malformed(what, $"{name}: offset={desc.offset} is not a multiple of 8");
            int index = (int)(desc.offset / sizeof(ulong));
            descriptors[i] = new KvmStatisticDescriptor(name, desc, index);
            values = Math.Max(values, (long)index + desc.size);
        }
        if (values > 1 << 24) throw Malformed(what, $"{values} values");
        return new KvmStatistics(kernel, fd, header, id, descriptors, (int)values);
    }

    private void ReadExactly(Span<byte> buffer, long offset, string part) => ReadExactly(Kernel, Handle, buffer, offset, part);

    /// <summary>pread until <paramref name="buffer"/> is full: an error or an early end of file is a KvmException.</summary>
    private static void ReadExactly(IKernel kernel, KernelFd fd, Span<byte> buffer, long offset, string part)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            long rc = kernel.Pread(fd, buffer[done..], offset + done);
            KvmCall.Check(rc, ReadOperation, $"{part}: {buffer.Length - done} bytes at {offset + done}");
            if (rc == 0)
                throw new KvmException(ReadOperation, (int)Errno.EIO, $"{part}: end of file at {offset + done}, {buffer.Length - done} bytes short");
            done += (int)rc;
        }
    }

    private static KvmException Malformed(string what, string detail) =>
        new(ReadOperation, (int)Errno.EIO, $"{what}: malformed stats header ({detail})");

    private static string CString(ReadOnlySpan<byte> bytes)
    {
        int end = bytes.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? bytes : bytes[..end]);
    }
}
