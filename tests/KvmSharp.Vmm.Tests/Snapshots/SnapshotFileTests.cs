// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests.Snapshots;

/// <summary>WriteTo / ReadFrom: a round trip keeps everything, and each kind of bad input gets its error and offset.</summary>
public sealed class SnapshotFileTests
{
    /// <summary>What another process would do: only the bytes cross, the image comes from them.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void A_snapshot_read_back_from_bytes_creates_and_restores_micro_vms(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, backing));
        MicroVmSnapshot original = vm.Snapshot();
        byte[] bytes = SnapshotSamples.Bytes(original);
        MicroVmSnapshot read = SnapshotSamples.Read(bytes);

        Assert.NotSame(original.Image, read.Image);
        Assert.Equal((original.MemorySize, original.VmType, original.Features, original.PageCount), (read.MemorySize, read.VmType, read.Features, read.PageCount));
        Assert.Equal(original.Image.Exports, read.Image.Exports);
        Assert.Equal(bytes, SnapshotSamples.Bytes(read));

        using var copy = MicroVm.Create(read, CounterGuest.Options(k, backing));
        Assert.Equal(4UL, CounterGuest.Increment(copy, 1));
        CounterGuest.AssertTableBuilt(copy);
        Assert.Equal(8UL, CounterGuest.Increment(vm, 5));
        vm.Restore(read); // the image is the same by content
        Assert.Equal(4UL, CounterGuest.Increment(vm, 1));
    }

    [Fact]
    public void Snapshots_follow_each_other_in_one_stream()
    {
        byte[] one = SnapshotSamples.Counter;
        using var stream = new MemoryStream();
        stream.Write(one);
        stream.Write(one);
        stream.Position = 0;
        Assert.Equal(one, SnapshotSamples.Bytes(MicroVmSnapshot.ReadFrom(stream)));
        Assert.Equal(one, SnapshotSamples.Bytes(MicroVmSnapshot.ReadFrom(stream)));
        Assert.Equal(SnapshotFormatError.Truncated, Assert.Throws<MicroVmSnapshotFormatException>(() => MicroVmSnapshot.ReadFrom(stream)).Error);
    }

    [Fact]
    public void Foreign_input_is_not_a_snapshot()
    {
        var e = Read("\u007FELF and so on"u8.ToArray());
        Assert.Equal((SnapshotFormatError.BadMagic, 0L), (e.Error, e.Offset));
        e = Read([]);
        Assert.Equal((SnapshotFormatError.Truncated, 0L), (e.Error, e.Offset));
    }

    [Fact]
    public void Another_version_is_refused_by_number()
    {
        byte[] bytes = SnapshotSamples.Counter;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 8);
        var e = Read(bytes);
        Assert.Equal((SnapshotFormatError.UnsupportedVersion, 8L), (e.Error, e.Offset));
        Assert.Contains("format version 8; this library reads versions 4 to 7", e.Message, StringComparison.Ordinal);
        // Version 1 did not record the GUEST-ABI version: it is refused the same way.
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 1);
        Assert.Equal(SnapshotFormatError.UnsupportedVersion, Read(bytes).Error);
    }

    [Fact]
    public void A_snapshot_records_its_guest_abi_version_a_v4_one_restores_and_other_versions_are_refused_by_create_and_restore()
    {
        byte[] bytes = SnapshotSamples.Counter;
        Assert.Equal(GuestAbi.CallRegion.VersionValue, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(28)));
        Assert.Equal(GuestAbi.CallRegion.VersionValue, SnapshotSamples.Read(bytes).AbiVersion);
        using var k = TestKernel.Emulated();
        var options = CounterGuest.Options(k, GuestMemoryBacking.HostMemory);

        // The same memory claimed by GUEST-ABI v3 (before the exception handlers' pages): readable, but no VMM of v4
        // or later may run it, since the pages it lacks are the VMM's own; and by a VMM newer than this one.
        foreach (uint version in new[] { 3u, GuestAbi.CallRegion.VersionValue + 1 })
        {
            MicroVmSnapshot other = WithAbiVersion(bytes, version);
            Assert.Equal(version, other.AbiVersion);
            var create = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(other, options));
            Assert.Equal(SnapshotRefusal.AbiMismatch, create.Reason);
            Assert.Contains($"GUEST-ABI v{version}, this VMM speaks v{GuestAbi.CallRegion.VersionValue}", create.Message, StringComparison.Ordinal);
            using var vm = CounterGuest.CreateCountedToThree(options);
            Assert.Equal(SnapshotRefusal.AbiMismatch, Assert.Throws<MicroVmSnapshotException>(() => vm.Restore(other)).Reason);
            Assert.Equal(4UL, CounterGuest.Increment(vm, 1)); // nothing changed
        }

        // v4's pages are v5's (v5 added only the console-write port and two call-region fields): it runs.
        MicroVmSnapshot v4 = WithAbiVersion(bytes, 4);
        using (var fromV4 = MicroVm.Create(v4, options))
        {
            Assert.Equal(4UL, CounterGuest.Increment(fromV4, 1));
        }
        using (var restored = CounterGuest.CreateCountedToThree(options))
        {
            Assert.Equal(4UL, CounterGuest.Increment(restored, 1));
            restored.Restore(v4);
            Assert.Equal(4UL, CounterGuest.Increment(restored, 1));
        }

        static MicroVmSnapshot WithAbiVersion(byte[] sample, uint version)
        {
            byte[] copy = (byte[])sample.Clone();
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(28), version);
            SnapshotSamples.FixChecksum(copy);
            MicroVmSnapshot snapshot = SnapshotSamples.Read(copy);
            Assert.Equal(copy, SnapshotSamples.Bytes(snapshot));
            return snapshot;
        }
    }

    /// <summary>Every cut inside the header and image section, and a spread of cuts through the pages and checksum.</summary>
    [Fact]
    public void A_truncated_snapshot_says_where_the_input_ended()
    {
        byte[] bytes = SnapshotSamples.Counter;
        int structure = 48 + SnapshotSamples.ImageLength(bytes) + 8;
        IEnumerable<int> cuts = Enumerable.Range(0, structure).Concat(Enumerable.Range(0, 200).Select(i => structure + (int)((long)i * (bytes.Length - structure) / 200)));
        foreach (int length in cuts)
        {
            var e = Read(bytes[..length]);
            Assert.True(e.Error == SnapshotFormatError.Truncated && e.Offset == length, $"cut at {length}: {e.Message}");
        }
    }

    [Fact]
    public void A_changed_page_byte_is_caught_by_the_checksum()
    {
        byte[] bytes = SnapshotSamples.Counter;
        bytes[^100] ^= 0x01;
        var e = Read(bytes);
        Assert.Equal((SnapshotFormatError.ChecksumMismatch, (long)bytes.Length - 32), (e.Error, e.Offset));
    }

    /// <summary>Fields a writer never produces, with a valid checksum: the parser itself names the field.</summary>
    [Theory]
    [InlineData(12, 8192UL, 4, "page size")]                 // page size
    [InlineData(16, 3UL << 20, 8, "memory size")]            // not a multiple of 2 MiB
    [InlineData(24, 99UL, 4, "VM type")]
    [InlineData(28, 0UL, 4, "GUEST-ABI version 0")]
    [InlineData(32, 4UL, 8, "features")]
    [InlineData(44, 513UL, 4, "pages")]                      // more than 2 MiB has
    public void An_invalid_header_field_is_named_with_its_offset(int offset, ulong value, int size, string what)
    {
        byte[] bytes = SnapshotSamples.Counter;
        if (size == 4) BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), (uint)value);
        else BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(offset), value);
        SnapshotSamples.FixChecksum(bytes);
        var e = Read(bytes);
        Assert.Equal((SnapshotFormatError.InvalidField, (long)offset), (e.Error, e.Offset));
        Assert.Contains(what, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pages_out_of_order_are_refused_at_the_page_number()
    {
        byte[] bytes = SnapshotSamples.Counter;
        int first = 48 + SnapshotSamples.ImageLength(bytes);
        int second = first + 8 + 4096;
        ulong page = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(first));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(second), page); // the same page twice
        SnapshotSamples.FixChecksum(bytes);
        var e = Read(bytes);
        Assert.Equal((SnapshotFormatError.InvalidField, (long)second), (e.Error, e.Offset));
    }

    private static MicroVmSnapshotFormatException Read(byte[] bytes) =>
        Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(bytes));
}
