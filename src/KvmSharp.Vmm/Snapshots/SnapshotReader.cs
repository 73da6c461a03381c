// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Vmm.Snapshots;

/// <summary>
/// Reads the format of <see cref="SnapshotFormat"/> from a stream that need not be seekable. Every count and length
/// is checked against what contains it before it is used, and no buffer is sized by a length the input has not yet
/// backed with bytes (a flipped bit in a count must not allocate a gigabyte): a corrupt input is a
/// <see cref="MicroVmSnapshotFormatException"/> with the offset of the field, never an exception of the parser.
/// </summary>
internal sealed class SnapshotReader
{
    // Buffers grow by doubling from here as bytes actually arrive.
    private const int InitialChunk = 64 * 1024;

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Stream _stream;
    private readonly IncrementalHash _hash;
    private long _offset;

    private SnapshotReader(Stream stream, IncrementalHash hash)
    {
        _stream = stream;
        _hash = hash;
    }

    public static MicroVmSnapshot Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        return new SnapshotReader(stream, hash).ReadSnapshot();
    }

    /// <summary>Version 5 and later: the vCPU section holds the TSC.</summary>
    private bool _withTsc;

    /// <summary>Version 6 and later: TSC_AUX may be among the MSRs, and the TSC rate follows the TSC.</summary>
    private bool _withTscRate;

    /// <summary>Version 7: the vCPU section starts with the architecture (before: x86-64).</summary>
    private bool _withArchitecture;

    private MicroVmSnapshot ReadSnapshot()
    {
        Span<byte> header = stackalloc byte[SnapshotFormat.HeaderSize];
        Fill(header[..SnapshotFormat.Magic.Length], "the magic");
        if (!header[..SnapshotFormat.Magic.Length].SequenceEqual(SnapshotFormat.Magic))
        {
            throw Fail(SnapshotFormatError.BadMagic, 0,
                $"the input starts with {Convert.ToHexString(header[..SnapshotFormat.Magic.Length])}, not \"KVMSNAP\\0\": not a micro-VM snapshot");
        }
        Fill(header[SnapshotFormat.VersionOffset..SnapshotFormat.PageSizeOffset], "the version");
        uint version = U32(header, SnapshotFormat.VersionOffset);
        if (version is 1 or 2)
        {
            throw Fail(SnapshotFormatError.UnsupportedVersion, SnapshotFormat.VersionOffset,
                $"format version {version} holds guest memory but not the vCPU state (special registers, MSRs such as FS base, KERNEL_GS_BASE, STAR) that version {SnapshotFormat.Version} restores; loading it with the boot registers could run the guest differently from the micro-VM that was snapshotted, so it is refused: take the snapshot again");
        }
        if (version == 3)
        {
            throw Fail(SnapshotFormatError.UnsupportedVersion, SnapshotFormat.VersionOffset,
                $"format version 3 holds the special registers and MSRs but not the FPU/SSE/AVX registers, MXCSR, XCR0 and debug registers that version {SnapshotFormat.Version} restores; loading it with their reset values could run the guest differently from the micro-VM that was snapshotted, so it is refused: take the snapshot again");
        }
        if (version is not (SnapshotFormat.Version or SnapshotFormat.VersionWithoutArchitecture or SnapshotFormat.VersionWithoutTscRate or SnapshotFormat.VersionWithoutTsc))
        {
            throw Fail(SnapshotFormatError.UnsupportedVersion, SnapshotFormat.VersionOffset,
                $"format version {version}; this library reads versions {SnapshotFormat.VersionWithoutTsc} to {SnapshotFormat.Version}");
        }
        _withTsc = version >= SnapshotFormat.VersionWithoutTscRate;
        _withTscRate = version >= SnapshotFormat.VersionWithoutArchitecture;
        _withArchitecture = version >= SnapshotFormat.Version;
        Fill(header[SnapshotFormat.PageSizeOffset..], "the header");

        uint pageSize = U32(header, SnapshotFormat.PageSizeOffset);
        if (pageSize != Layout.PageSize)
            throw Invalid(SnapshotFormat.PageSizeOffset, $"page size {pageSize}; snapshots store the guest's {Layout.PageSize}-byte pages");
        ulong memorySize = U64(header, SnapshotFormat.MemorySizeOffset);
        if (Layout.CheckMemorySize(memorySize) is string problem)
            throw Invalid(SnapshotFormat.MemorySizeOffset, $"memory size 0x{memorySize:X}: {problem}");
        uint vmType = U32(header, SnapshotFormat.VmTypeOffset);
        if (!Enum.IsDefined((VmType)vmType))
            throw Invalid(SnapshotFormat.VmTypeOffset, $"VM type {vmType} is not one of {string.Join(", ", Enum.GetValues<VmType>())}");
        uint abiVersion = U32(header, SnapshotFormat.AbiVersionOffset);
        if (abiVersion == 0) throw Invalid(SnapshotFormat.AbiVersionOffset, "GUEST-ABI version 0 (no such version)");
        ulong features = U64(header, SnapshotFormat.FeaturesOffset);
        if ((features & ~SnapshotFormat.KnownFeatures) != 0)
            throw Invalid(SnapshotFormat.FeaturesOffset, $"features 0x{features:X} has bits this library never offers (known: 0x{SnapshotFormat.KnownFeatures:X})");
        uint imageLength = U32(header, SnapshotFormat.ImageLengthOffset);
        uint pageCount = U32(header, SnapshotFormat.PageCountOffset);
        ulong memoryPages = memorySize / pageSize;
        if (pageCount > memoryPages)
            throw Invalid(SnapshotFormat.PageCountOffset, $"{pageCount} pages, but 0x{memorySize:X} bytes of memory have only {memoryPages}");

        GuestImage image = ReadImage(memorySize, _offset + imageLength);
        PageSet pages = ReadPages(pageCount, (int)pageSize, memoryPages);
        // Version 7: the architecture, then its vCPU section; before, always x86-64.
        uint architecture = SnapshotFormat.ArchitectureX86_64;
        if (_withArchitecture)
        {
            Span<byte> field = stackalloc byte[4];
            Fill(field, "the architecture");
            architecture = U32(field, 0);
            if (architecture is not (SnapshotFormat.ArchitectureX86_64 or SnapshotFormat.ArchitectureArm64))
            {
                throw Invalid(_offset - 4,
                    $"architecture {architecture}; {SnapshotFormat.ArchitectureX86_64} (x86-64) or {SnapshotFormat.ArchitectureArm64} (arm64)");
            }
            if (architecture == SnapshotFormat.ArchitectureArm64 && (vmType != (uint)VmType.Default || features != 0))
            {
                throw Invalid(SnapshotFormat.VmTypeOffset,
                    $"an arm64 snapshot with VM type {vmType} and features 0x{features:X}: arm64 micro-VMs have only the default type and no features");
            }
        }
        VcpuState? vcpu = null;
        Arm64VcpuState? arm64 = null;
        if (architecture == SnapshotFormat.ArchitectureArm64) arm64 = ReadArm64Vcpu();
        else vcpu = ReadVcpu();

        Span<byte> expected = stackalloc byte[SnapshotFormat.ChecksumSize];
        _hash.GetHashAndReset(expected);
        long checksumOffset = _offset;
        Span<byte> actual = stackalloc byte[SnapshotFormat.ChecksumSize];
        Fill(actual, "the SHA-256 checksum");
        if (!actual.SequenceEqual(expected))
        {
            throw Fail(SnapshotFormatError.ChecksumMismatch, checksumOffset,
                $"the file says {Convert.ToHexStringLower(actual)}, its bytes hash to {Convert.ToHexStringLower(expected)}");
        }
        return arm64 is not null
            ? new MicroVmSnapshot(image, memorySize, (VmType)vmType, features, pages, arm64, abiVersion)
            : new MicroVmSnapshot(image, memorySize, (VmType)vmType, features, pages, vcpu!, abiVersion);
    }

    /// <summary>
    /// The arm64 vCPU section: a register count (1 to <see cref="Arm64VcpuState.MaxRegisters"/>), then per register
    /// its id (an arm64 KVM_GET/SET_ONE_REG id of at most 256 bytes, none twice) and KVM_REG_SIZE(id) bytes.
    /// </summary>
    private Arm64VcpuState ReadArm64Vcpu()
    {
        Span<byte> field = stackalloc byte[sizeof(ulong)];
        Fill(field[..4], "the register count");
        uint count = U32(field, 0);
        if (count is 0 or > Arm64VcpuState.MaxRegisters)
            throw Invalid(_offset - 4, $"{count} registers; an arm64 vCPU section holds 1 to {Arm64VcpuState.MaxRegisters}");
        var ids = new List<ulong>();
        var values = new List<byte[]>();
        var seen = new HashSet<ulong>();
        for (int i = 0; i < count; i++)
        {
            Fill(field, $"register {i}'s id");
            long at = _offset - 8;
            ulong id = U64(field, 0);
            if ((id & KvmArm64Regs.KVM_REG_ARCH_MASK) != KvmArm64Regs.KVM_REG_ARM64)
                throw Invalid(at, $"register {i}'s id 0x{id:X} is not an arm64 register id (KVM_REG_ARM64 0x{KvmArm64Regs.KVM_REG_ARM64:X})");
            int size = KvmArm64Regs.KVM_REG_SIZE(id);
            if (size > Arm64VcpuState.MaxRegisterSize)
                throw Invalid(at, $"register {i}'s id 0x{id:X} says {size} bytes; the largest register is {Arm64VcpuState.MaxRegisterSize}");
            if (!seen.Add(id)) throw Invalid(at, $"register {i}'s id 0x{id:X} came before (each register once)");
            ids.Add(id);
            values.Add(ReadBytes(size, $"register {i}'s value"));
        }
        return new Arm64VcpuState([.. ids], [.. values]);
    }

    private GuestImage ReadImage(ulong memorySize, long end)
    {
        Span<byte> field = stackalloc byte[24];
        Need(end, 1 + 8 + 4, "the image's kind, entry and segment count");
        Fill(field[..13], "the image's kind, entry and segment count");
        long at = _offset - 13;
        GuestImageKind kind = field[0] switch
        {
            0 => GuestImageKind.Elf,
            1 => GuestImageKind.Flat,
            _ => throw Invalid(at, $"image kind {field[0]}; 0 (ELF) or 1 (flat)"),
        };
        ulong entry = U64(field, 1);
        long entryAt = at + 1;
        uint segmentCount = U32(field, 9);
        if (segmentCount == 0) throw Invalid(at + 9, "the image has no segments");

        var segments = new List<ImageSegment>();
        ulong previousEnd = 0;
        for (uint i = 0; i < segmentCount; i++)
        {
            Need(end, 24, $"segment {i}");
            Fill(field, $"segment {i}");
            at = _offset - 24;
            ulong address = U64(field, 0), size = U64(field, 8), length = U64(field, 16);
            if (address < Layout.ImageBase || address >= memorySize || size == 0 || size > memorySize - address)
            {
                throw Invalid(at, $"segment {i} [0x{address:X}, +0x{size:X}) is empty or outside the image area [0x{Layout.ImageBase:X}, 0x{memorySize:X})");
            }
            if (address < previousEnd)
                throw Invalid(at, $"segment {i} at 0x{address:X} overlaps or precedes the one before it (which ends at 0x{previousEnd:X})");
            if (length > size) throw Invalid(at + 16, $"segment {i} has 0x{length:X} data bytes but occupies only 0x{size:X}");
            Need(end, length, $"segment {i}'s data");
            byte[] data = ReadBytes(checked((int)length), $"segment {i}'s data");
            segments.Add(new ImageSegment(address, data, size));
            previousEnd = address + size;
        }

        Need(end, 4, "the export count");
        Fill(field[..4], "the export count");
        uint exportCount = U32(field, 0);
        var exports = new Dictionary<string, ulong>(StringComparer.Ordinal);
        string? previous = null;
        for (uint i = 0; i < exportCount; i++)
        {
            Need(end, 2, $"export {i}'s name length");
            Fill(field[..2], $"export {i}'s name length");
            at = _offset;
            ushort nameLength = BinaryPrimitives.ReadUInt16LittleEndian(field);
            Need(end, nameLength + 8UL, $"export {i}");
            byte[] utf8 = ReadBytes(nameLength, $"export {i}'s name");
            string name;
            try
            {
                name = s_strictUtf8.GetString(utf8);
            }
            catch (DecoderFallbackException e)
            {
                throw Invalid(at + e.Index, $"export {i}'s name is not UTF-8");
            }
            if (previous is not null && string.CompareOrdinal(previous, name) >= 0)
                throw Invalid(at, $"export '{name}' is not after '{previous}' (exports are unique, in ordinal order)");
            Fill(field[..8], $"export {i}'s address");
            ulong address = U64(field, 0);
            if (!segments.Any(s => address >= s.Address && address < s.End))
                throw Invalid(_offset - 8, $"export '{name}' at 0x{address:X} is not inside a segment");
            exports.Add(name, address);
            previous = name;
        }
        if (!segments.Any(s => entry >= s.Address && entry < s.End)) throw Invalid(entryAt, $"entry 0x{entry:X} is not inside a segment");
        // ImageEncoding: an arm64 ELF's branch-protection bits follow, only when not 0.
        var protection = BranchProtection.None;
        if (end - _offset == 4)
        {
            Fill(field[..4], "the image's branch protection");
            uint bits = U32(field, 0);
            if (bits == 0 || (bits & ~(uint)(BranchProtection.Bti | BranchProtection.Pac)) != 0)
                throw Invalid(_offset - 4, $"branch protection 0x{bits:X}; written only when not 0, with the bits BTI (1) and PAC (2)");
            protection = (BranchProtection)bits;
        }
        if (_offset != end) throw Invalid(_offset, $"the image section has {end - _offset} bytes after its last export");
        return new GuestImage(kind, segments, entry, exports, branchProtection: protection);
    }

    private PageSet ReadPages(uint count, int pageSize, ulong memoryPages)
    {
        var pages = new ulong[count];
        long total = (long)count * pageSize;
        byte[] contents = new byte[Math.Min(total, InitialChunk)];
        Span<byte> number = stackalloc byte[sizeof(ulong)];
        for (int i = 0; i < count; i++)
        {
            Fill(number, $"page {i}'s number");
            ulong page = BinaryPrimitives.ReadUInt64LittleEndian(number);
            if (page >= memoryPages) throw Invalid(_offset - 8, $"page {i} is page number {page}; memory has {memoryPages} pages");
            if (i > 0 && page <= pages[i - 1])
                throw Invalid(_offset - 8, $"page {i} is page number {page}, not above the one before it ({pages[i - 1]})");
            pages[i] = page;
            int start = i * pageSize;
            if (start + pageSize > contents.Length) Array.Resize(ref contents, (int)Math.Min(total, (long)contents.Length * 2));
            Fill(contents.AsSpan(start, pageSize), $"page {i}'s bytes");
        }
        return new PageSet(pageSize, pages, contents);
    }

    private VcpuState ReadVcpu()
    {
        Span<byte> sregs = stackalloc byte[VcpuState.SregsSize];
        Fill(sregs, "the vCPU's special registers");
        Span<byte> field = stackalloc byte[16];
        Fill(field[..4], "the MSR count");
        uint count = U32(field, 0);
        uint[] candidates = _withTscRate ? VcpuState.Candidates : VcpuState.CandidatesBeforeTscAux;
        if (count > candidates.Length)
            throw Invalid(_offset - 4, $"{count} MSRs; a snapshot carries at most the {candidates.Length} a guest may set" + (_withTscRate ? "" : " (TSC_AUX only from format version 6)"));
        var msrs = new MsrEntry[count];
        for (int i = 0; i < count; i++)
        {
            Fill(field, $"MSR {i}");
            long at = _offset - 16;
            uint index = U32(field, 0);
            if (Array.IndexOf(candidates, index) < 0)
            {
                throw Invalid(at, $"MSR {i} is {X86Msr.NameOf(index)}, not one a snapshot carries ({string.Join(", ", candidates.Select(X86Msr.NameOf))})" + (_withTscRate ? "" : "; TSC_AUX only from format version 6"));
            }
            if (i > 0 && index <= msrs[i - 1].Index)
                throw Invalid(at, $"MSR {i} ({X86Msr.NameOf(index)}) is not after {X86Msr.NameOf(msrs[i - 1].Index)} (indices strictly ascending)");
            if (U32(field, 4) != 0) throw Invalid(at + 4, $"MSR {i}'s reserved field is 0x{U32(field, 4):X}, not 0");
            msrs[i] = new MsrEntry(index, U64(field, 8));
        }
        ExtendedVcpuState extended = ReadExtended();
        ulong tsc = 0;
        if (_withTsc)
        {
            Fill(field[..8], "the TSC");
            tsc = U64(field, 0);
        }
        uint tscKhz = 0;
        if (_withTscRate)
        {
            Fill(field[..4], "the TSC rate");
            tscKhz = U32(field, 0);
        }
        return new VcpuState(VcpuState.ReadStruct<kvm_sregs>(sregs), msrs, extended, tsc, tscKhz);
    }

    private ExtendedVcpuState ReadExtended()
    {
        Span<byte> field = stackalloc byte[12];
        Fill(field[..4], "the FPU image's length");
        uint length = U32(field, 0);
        if (length != ExtendedVcpuState.LegacyFpuSize && (length < 4096 || length > VcpuState.MaxXsaveSize || length % 4 != 0))
        {
            throw Invalid(_offset - 4,
                $"an FPU image of {length} bytes: a snapshot holds a struct kvm_fpu ({ExtendedVcpuState.LegacyFpuSize}) or an XSAVE area (4096 to {VcpuState.MaxXsaveSize}, a multiple of 4)");
        }
        byte[] fpu = ReadBytes((int)length, "the FPU image");
        Fill(field, "XCR0");
        uint flags = U32(field, 0);
        ulong xcr0 = U64(field, 4);
        if ((flags & ~SnapshotFormat.HasXcr0) != 0) throw Invalid(_offset - 12, $"XCR0 flags 0x{flags:X}; only 0x{SnapshotFormat.HasXcr0:X} is defined");
        if ((flags & SnapshotFormat.HasXcr0) == 0 && xcr0 != 0) throw Invalid(_offset - 8, $"XCR0 0x{xcr0:X} with the flag that says it is absent");
        Span<byte> debugRegs = stackalloc byte[VcpuState.DebugRegsSize];
        Fill(debugRegs, "the debug registers");
        Span<byte> events = stackalloc byte[VcpuState.EventsSize];
        Fill(events, "the event state");
        return new ExtendedVcpuState(fpu, (flags & SnapshotFormat.HasXcr0) != 0 ? xcr0 : null,
            VcpuState.ReadStruct<kvm_debugregs>(debugRegs), VcpuState.ReadStruct<kvm_vcpu_events>(events));
    }

    /// <summary>Reads <paramref name="length"/> bytes into a buffer that grows only as they arrive.</summary>
    private byte[] ReadBytes(int length, string what)
    {
        byte[] buffer = new byte[Math.Min(length, InitialChunk)];
        int done = 0;
        while (done < length)
        {
            if (done == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(length, (long)buffer.Length * 2));
            int chunk = buffer.Length - done;
            Fill(buffer.AsSpan(done, chunk), what);
            done += chunk;
        }
        return buffer;
    }

    /// <summary>Throws when <paramref name="count"/> more bytes would run past <paramref name="end"/> (the image section's end).</summary>
    private void Need(long end, ulong count, string what)
    {
        if (count > (ulong)Math.Max(0, end - _offset))
            throw Invalid(_offset, $"{what} ({count} bytes) runs past the end of the image section at offset {end}");
    }

    private void Fill(Span<byte> destination, string what)
    {
        int done = 0;
        while (done < destination.Length)
        {
            int read = _stream.Read(destination[done..]);
            if (read == 0)
            {
                throw Fail(SnapshotFormatError.Truncated, _offset + done,
                    $"the input ends {done} of {destination.Length} bytes into {what}");
            }
            done += read;
        }
        _hash.AppendData(destination);
        _offset += destination.Length;
    }

    private static uint U32(ReadOnlySpan<byte> bytes, int at) => BinaryPrimitives.ReadUInt32LittleEndian(bytes[at..]);

    private static ulong U64(ReadOnlySpan<byte> bytes, int at) => BinaryPrimitives.ReadUInt64LittleEndian(bytes[at..]);

    private static MicroVmSnapshotFormatException Invalid(long offset, string message) => Fail(SnapshotFormatError.InvalidField, offset, message);

    private static MicroVmSnapshotFormatException Fail(SnapshotFormatError error, long offset, string message) => new(error, offset, message);
}
