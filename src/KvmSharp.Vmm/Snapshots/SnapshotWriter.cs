// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Security.Cryptography;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Snapshots;

/// <summary>Writes a snapshot in the format of <see cref="SnapshotFormat"/>, hashing as it goes.</summary>
internal static class SnapshotWriter
{
    public static void Write(MicroVmSnapshot snapshot, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(stream);
        byte[] image = ImageEncoding.Encode(snapshot.Image);
        PageSet pages = snapshot.Pages;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        Span<byte> header = stackalloc byte[SnapshotFormat.HeaderSize];
        header.Clear();
        SnapshotFormat.Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[SnapshotFormat.VersionOffset..], SnapshotFormat.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header[SnapshotFormat.AbiVersionOffset..], snapshot.AbiVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(header[SnapshotFormat.PageSizeOffset..], (uint)pages.PageSize);
        BinaryPrimitives.WriteUInt64LittleEndian(header[SnapshotFormat.MemorySizeOffset..], snapshot.MemorySize);
        BinaryPrimitives.WriteUInt32LittleEndian(header[SnapshotFormat.VmTypeOffset..], (uint)snapshot.VmType);
        BinaryPrimitives.WriteUInt64LittleEndian(header[SnapshotFormat.FeaturesOffset..], snapshot.Features);
        BinaryPrimitives.WriteUInt32LittleEndian(header[SnapshotFormat.ImageLengthOffset..], checked((uint)image.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(header[SnapshotFormat.PageCountOffset..], (uint)pages.Count);
        Emit(header);
        Emit(image);

        Span<byte> number = stackalloc byte[sizeof(ulong)];
        for (int i = 0; i < pages.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(number, pages.Pages[i]);
            Emit(number);
            Emit(pages.Page(i));
        }
        // Version 7: the vCPU section starts with the architecture; an x86-64 section goes on as in version 6.
        BinaryPrimitives.WriteUInt32LittleEndian(number, snapshot.Arm64Vcpu is null ? SnapshotFormat.ArchitectureX86_64 : SnapshotFormat.ArchitectureArm64);
        Emit(number[..4]);
        if (snapshot.Arm64Vcpu is { } arm64) WriteArm64Vcpu(arm64, Emit);
        else WriteVcpu(snapshot.Vcpu, Emit);
        Span<byte> checksum = stackalloc byte[SnapshotFormat.ChecksumSize];
        hash.GetHashAndReset(checksum);
        stream.Write(checksum);

        void Emit(ReadOnlySpan<byte> bytes)
        {
            hash.AppendData(bytes);
            stream.Write(bytes);
        }
    }

    private delegate void Emitter(ReadOnlySpan<byte> bytes);

    private static void WriteArm64Vcpu(Arm64VcpuState vcpu, Emitter emit)
    {
        Span<byte> field = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt32LittleEndian(field, (uint)vcpu.Ids.Count);
        emit(field[..4]);
        for (int i = 0; i < vcpu.Ids.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(field, vcpu.Ids[i]);
            emit(field);
            emit(vcpu.Value(i));
        }
    }

    private static void WriteVcpu(VcpuState vcpu, Emitter emit)
    {
        Span<byte> sregs = stackalloc byte[VcpuState.SregsSize];
        VcpuState.WriteStruct(vcpu.Sregs, sregs);
        emit(sregs);
        Span<byte> field = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(field, (uint)vcpu.Msrs.Length);
        emit(field[..4]);
        foreach (MsrEntry msr in vcpu.Msrs)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(field, msr.Index);
            BinaryPrimitives.WriteUInt32LittleEndian(field[4..], 0);
            BinaryPrimitives.WriteUInt64LittleEndian(field[8..], msr.Value);
            emit(field);
        }
        ExtendedVcpuState x = vcpu.Extended;
        BinaryPrimitives.WriteUInt32LittleEndian(field, (uint)x.Fpu.Length);
        emit(field[..4]);
        emit(x.Fpu);
        BinaryPrimitives.WriteUInt32LittleEndian(field, x.Xcr0.HasValue ? SnapshotFormat.HasXcr0 : 0);
        BinaryPrimitives.WriteUInt64LittleEndian(field[4..], x.Xcr0 ?? 0);
        emit(field[..12]);
        Span<byte> debugRegs = stackalloc byte[VcpuState.DebugRegsSize];
        VcpuState.WriteStruct(x.DebugRegs, debugRegs);
        emit(debugRegs);
        Span<byte> events = stackalloc byte[VcpuState.EventsSize];
        VcpuState.WriteStruct(x.Events, events);
        emit(events);
        BinaryPrimitives.WriteUInt64LittleEndian(field, vcpu.Tsc);
        emit(field[..8]);
        BinaryPrimitives.WriteUInt32LittleEndian(field, vcpu.TscKhz);
        emit(field[..4]);
    }
}
