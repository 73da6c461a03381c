// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using KvmSharp.Vmm.Snapshots;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>A valid snapshot file to take apart, made once on the emulator (so on every host), and byte helpers.</summary>
public static class SnapshotSamples
{
    private static readonly Lazy<byte[]> s_counter = new(() =>
    {
        using var k = TestKernel.Emulated();
        using var vm = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, GuestMemoryBacking.HostMemory));
        return Bytes(vm.Snapshot());
    });

    /// <summary>The counter guest after init and three increments, as written by <see cref="MicroVmSnapshot.WriteTo"/>.</summary>
    public static byte[] Counter => (byte[])s_counter.Value.Clone();

    public static byte[] Bytes(MicroVmSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        using var stream = new MemoryStream();
        snapshot.WriteTo(stream);
        return stream.ToArray();
    }

    public static MicroVmSnapshot Read(byte[] bytes)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        return MicroVmSnapshot.ReadFrom(stream);
    }

    /// <summary>Rewrites the trailing SHA-256 so that only the parser, not the checksum, judges the other bytes.</summary>
    public static void FixChecksum(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length < 32) return;
        SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32), bytes.AsSpan(bytes.Length - 32));
    }

    /// <summary>The image section's length (header offset 40): the structure before the pages is 48 + this.</summary>
    public static int ImageLength(byte[] bytes) => BitConverter.ToInt32(bytes, 40);

    /// <summary>The offset of the architecture field (format version 7): after the header, image and pages.</summary>
    public static int ArchitectureOffset(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        int pageSize = BitConverter.ToInt32(bytes, 12), pages = BitConverter.ToInt32(bytes, 44);
        return 48 + ImageLength(bytes) + (pages * (8 + pageSize));
    }

    /// <summary>
    /// The offset of an x86-64 vCPU section's MSR count in a file: after the header, image, pages, the architecture
    /// (version 7) and sregs.
    /// </summary>
    public static int MsrCountOffset(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        int architecture = BitConverter.ToInt32(bytes, 8) >= 7 ? 4 : 0;
        return ArchitectureOffset(bytes) + architecture + VcpuState.SregsSize;
    }

    /// <summary>A version 6 file with its TSC rate (the u32 before the checksum) set to <paramref name="khz"/>.</summary>
    public static byte[] WithTscKhz(byte[] v6, uint khz)
    {
        ArgumentNullException.ThrowIfNull(v6);
        byte[] bytes = (byte[])v6.Clone();
        BitConverter.TryWriteBytes(bytes.AsSpan(bytes.Length - 32 - 4), khz);
        FixChecksum(bytes);
        return bytes;
    }

    /// <summary>
    /// A version 6 file rewritten as <paramref name="version"/> 5 (no TSC rate; TSC_AUX left out of the MSRs unless
    /// <paramref name="keepTscAux"/>, which makes a file version 5 cannot be) or 4 (no TSC either).
    /// </summary>
    public static byte[] Downgrade(byte[] v6, uint version, bool keepTscAux = false)
    {
        ArgumentNullException.ThrowIfNull(v6);
        int countAt = MsrCountOffset(v6);
        int count = BitConverter.ToInt32(v6, countAt);
        var msrs = new List<byte[]>();
        for (int i = 0; i < count; i++)
        {
            byte[] entry = v6.AsSpan(countAt + 4 + (i * 16), 16).ToArray();
            if (keepTscAux || BitConverter.ToUInt32(entry, 0) != X86Msr.TscAux) msrs.Add(entry);
        }
        int afterMsrs = countAt + 4 + (count * 16);
        int end = v6.Length - 32 - 4 - (version == 4 ? 8 : 0);
        using var result = new MemoryStream();
        // A version 7 file: its architecture field (x86-64) left out, which versions before 7 do not have.
        int architectureAt = ArchitectureOffset(v6);
        int skip = BitConverter.ToInt32(v6, 8) >= 7 ? 4 : 0;
        result.Write(v6.AsSpan(0, architectureAt));
        result.Write(v6.AsSpan(architectureAt + skip, countAt - architectureAt - skip));
        result.Write(BitConverter.GetBytes(msrs.Count));
        foreach (byte[] entry in msrs) result.Write(entry);
        result.Write(v6.AsSpan(afterMsrs, end - afterMsrs));
        result.Write(new byte[32]);
        byte[] bytes = result.ToArray();
        BitConverter.TryWriteBytes(bytes.AsSpan(8), version);
        FixChecksum(bytes);
        return bytes;
    }
}
