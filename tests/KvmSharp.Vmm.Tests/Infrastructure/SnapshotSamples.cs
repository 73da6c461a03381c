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
}
