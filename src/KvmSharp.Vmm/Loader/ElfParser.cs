// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Loader;

/// <summary>
/// Reads a static ELF64 little-endian x86-64 or AArch64 ET_EXEC (System V gABI; field offsets as in include/uapi/linux/elf.h):
/// PT_LOAD segments, e_entry, global/weak STT_FUNC symbols from .symtab as exports, and an AArch64 image's
/// PT_GNU_PROPERTY branch-protection bits (Loader/ElfProperties.cs). Every offset and size read
/// from the file is checked before use, so a malformed image is a <see cref="GuestImageException"/>, never an
/// out-of-range read. The machine (e_machine) becomes <see cref="GuestImage.Architecture"/>; the segment rules are the
/// same for both (the arm64 layout keeps the image area of the x86-64 one: Arch/Arm64/Layout.cs).
/// </summary>
internal static class ElfParser
{
    public const int EhdrSize = 64;
    public const int PhdrSize = 56;
    public const int ShdrSize = 64;
    public const int SymSize = 24;

    public const byte ELFCLASS64 = 2;
    public const byte ELFDATA2LSB = 1;
    public const ushort ET_EXEC = 2;
    public const ushort ET_DYN = 3;
    public const ushort EM_X86_64 = 62;
    public const ushort EM_AARCH64 = 183;
    public const uint PT_LOAD = 1;
    public const uint SHT_SYMTAB = 2;
    public const byte STT_FUNC = 2;
    public const byte STB_GLOBAL = 1;
    public const byte STB_WEAK = 2;
    public const ushort SHN_UNDEF = 0;
    public const ushort SHN_LORESERVE = 0xFF00;

    public static bool HasMagic(ReadOnlySpan<byte> bytes) =>
        bytes.Length >= 4 && bytes[0] == 0x7F && bytes[1] == (byte)'E' && bytes[2] == (byte)'L' && bytes[3] == (byte)'F';

    public static GuestImage Parse(ReadOnlyMemory<byte> image)
    {
        ReadOnlySpan<byte> file = image.Span;
        if (!HasMagic(file)) throw Fail(GuestImageError.BadMagic, "not an ELF file (no \\x7FELF magic)");
        if (file.Length < EhdrSize) throw Fail(GuestImageError.Truncated, $"the ELF header needs {EhdrSize} bytes; the file has {file.Length}");
        if (file[4] != ELFCLASS64) throw Fail(GuestImageError.Unsupported, $"EI_CLASS {file[4]} is not ELFCLASS64");
        if (file[5] != ELFDATA2LSB) throw Fail(GuestImageError.Unsupported, $"EI_DATA {file[5]} is not ELFDATA2LSB (little-endian)");
        ushort type = U16(file, 16);
        if (type == ET_DYN) throw Fail(GuestImageError.Unsupported, "ET_DYN (position-independent) images are not supported: link with -static -no-pie");
        if (type != ET_EXEC) throw Fail(GuestImageError.Unsupported, $"e_type {type} is not ET_EXEC");
        ushort machine = U16(file, 18);
        // include/uapi/linux/elf-em.h: EM_X86_64 62, EM_AARCH64 183.
        GuestArchitecture architecture = machine switch
        {
            EM_X86_64 => GuestArchitecture.X86_64,
            EM_AARCH64 => GuestArchitecture.Arm64,
            _ => throw Fail(GuestImageError.Unsupported, $"e_machine {machine} is neither EM_X86_64 (62) nor EM_AARCH64 (183)"),
        };

        ulong entry = U64(file, 24);
        ulong phoff = U64(file, 32);
        ulong shoff = U64(file, 40);
        ushort phentsize = U16(file, 54), phnum = U16(file, 56);
        ushort shentsize = U16(file, 58), shnum = U16(file, 60);

        var segments = ReadSegments(image, phoff, phentsize, phnum);
        if (!segments.Any(s => entry >= s.Address && entry < s.End))
            throw Fail(GuestImageError.BadEntry, $"e_entry 0x{entry:X} is not inside a PT_LOAD segment");
        var exports = ReadExports(file, shoff, shentsize, shnum, segments);
        var protection = architecture == GuestArchitecture.Arm64 ? ReadBranchProtection(file, phoff, phentsize, phnum) : BranchProtection.None;
        return new GuestImage(GuestImageKind.Elf, segments, entry, exports, architecture, protection);
    }

    private static List<ImageSegment> ReadSegments(ReadOnlyMemory<byte> image, ulong phoff, ushort phentsize, ushort phnum)
    {
        ReadOnlySpan<byte> file = image.Span;
        if (phnum == 0) throw Fail(GuestImageError.NoSegments, "the ELF file has no program headers");
        if (phentsize < PhdrSize) throw Fail(GuestImageError.Truncated, $"e_phentsize {phentsize} is smaller than {PhdrSize}");
        CheckTable(file, phoff, phentsize, phnum, "program header table");

        var segments = new List<ImageSegment>();
        for (int i = 0; i < phnum; i++)
        {
            int at = (int)phoff + i * phentsize;
            if (U32(file, at) != PT_LOAD) continue;
            ulong offset = U64(file, at + 8), vaddr = U64(file, at + 16), filesz = U64(file, at + 32), memsz = U64(file, at + 40);
            if (memsz == 0) continue;
            if (filesz > memsz) throw Fail(GuestImageError.Truncated, $"PT_LOAD {i}: p_filesz 0x{filesz:X} exceeds p_memsz 0x{memsz:X}");
            // A .bss-only segment has no file bytes, and ld may give it an offset at or past the end of the file:
            // fs/binfmt_elf.c elf_map returns early for a zero p_filesz and never reads the file there.
            if (filesz == 0) offset = 0;
            else if (offset > (ulong)file.Length || filesz > (ulong)file.Length - offset)
                throw Fail(GuestImageError.Truncated, $"PT_LOAD {i}: file bytes [0x{offset:X}, +0x{filesz:X}) lie outside the 0x{file.Length:X}-byte file");
            if (vaddr < Layout.ImageBase || memsz > Layout.MaxMemorySize || vaddr > Layout.MaxMemorySize - memsz)
                throw Fail(GuestImageError.OutsideMemory,
                    $"PT_LOAD {i}: [0x{vaddr:X}, +0x{memsz:X}) is outside the image area [0x{Layout.ImageBase:X}, 0x{Layout.MaxMemorySize:X})");
            var segment = new ImageSegment(vaddr, image.Slice((int)offset, (int)filesz), memsz);
            foreach (var other in segments)
            {
                if (segment.Address < other.End && other.Address < segment.End)
                    throw Fail(GuestImageError.Overlap, $"PT_LOAD {i} [0x{segment.Address:X}, 0x{segment.End:X}) overlaps [0x{other.Address:X}, 0x{other.End:X})");
            }
            segments.Add(segment);
        }
        if (segments.Count == 0) throw Fail(GuestImageError.NoSegments, "the ELF file has no PT_LOAD segment");
        return segments;
    }

    /// <summary>
    /// The AArch64 feature bits of the image's PT_GNU_PROPERTY segment (fs/binfmt_elf.c load_elf_binary takes the last
    /// such program header), or none without one. The table was checked by <see cref="ReadSegments"/>.
    /// </summary>
    private static BranchProtection ReadBranchProtection(ReadOnlySpan<byte> file, ulong phoff, ushort phentsize, ushort phnum)
    {
        int found = -1;
        for (int i = 0; i < phnum; i++)
        {
            if (U32(file, (int)phoff + i * phentsize) == ElfProperties.PT_GNU_PROPERTY) found = i;
        }
        if (found < 0) return BranchProtection.None;
        int at = (int)phoff + found * phentsize;
        ulong offset = U64(file, at + 8), filesz = U64(file, at + 32);
        CheckRange(file, offset, filesz, $"PT_GNU_PROPERTY segment (program header {found})");
        return ElfProperties.ReadAarch64Features(file.Slice((int)offset, (int)filesz));
    }

    private static Dictionary<string, ulong> ReadExports(ReadOnlySpan<byte> file, ulong shoff, ushort shentsize, ushort shnum, List<ImageSegment> segments)
    {
        var exports = new Dictionary<string, ulong>(StringComparer.Ordinal);
        // Section headers are optional at run time (a stripped image simply exports nothing).
        if (shoff == 0 || shnum == 0) return exports;
        if (shentsize < ShdrSize) throw Fail(GuestImageError.Truncated, $"e_shentsize {shentsize} is smaller than {ShdrSize}");
        CheckTable(file, shoff, shentsize, shnum, "section header table");

        for (int i = 0; i < shnum; i++)
        {
            int sh = (int)shoff + i * shentsize;
            if (U32(file, sh + 4) != SHT_SYMTAB) continue;
            ulong symOffset = U64(file, sh + 24), symSize = U64(file, sh + 32);
            uint link = U32(file, sh + 40);
            if (link >= shnum) throw Fail(GuestImageError.Truncated, $"section {i}: sh_link {link} names no section");
            int str = (int)shoff + (int)link * shentsize;
            ulong strOffset = U64(file, str + 24), strSize = U64(file, str + 32);
            CheckRange(file, symOffset, symSize, $"section {i} (.symtab)");
            CheckRange(file, strOffset, strSize, $"section {link} (.strtab)");
            ReadOnlySpan<byte> strings = file.Slice((int)strOffset, (int)strSize);

            for (ulong s = 0; s + SymSize <= symSize; s += SymSize)
            {
                int sym = (int)(symOffset + s);
                byte info = file[sym + 4];
                ushort shndx = U16(file, sym + 6);
                int bind = info >> 4, kind = info & 0xF;
                if (kind != STT_FUNC || (bind != STB_GLOBAL && bind != STB_WEAK) || shndx == SHN_UNDEF || shndx >= SHN_LORESERVE) continue;
                uint nameOffset = U32(file, sym);
                ulong value = U64(file, sym + 8);
                string name = ReadString(strings, nameOffset, i);
                if (!segments.Any(seg => value >= seg.Address && value < seg.End))
                    throw Fail(GuestImageError.BadEntry, $"function '{name}' at 0x{value:X} is not inside a PT_LOAD segment");
                exports[name] = value;
            }
        }
        return exports;
    }

    private static string ReadString(ReadOnlySpan<byte> strings, uint offset, int section)
    {
        if (offset >= (uint)strings.Length) throw Fail(GuestImageError.Truncated, $"section {section}: a symbol name offset 0x{offset:X} is outside .strtab");
        ReadOnlySpan<byte> rest = strings[(int)offset..];
        int end = rest.IndexOf((byte)0);
        if (end < 0) throw Fail(GuestImageError.Truncated, $"section {section}: a symbol name at 0x{offset:X} is not NUL-terminated");
        return Encoding.UTF8.GetString(rest[..end]);
    }

    private static void CheckTable(ReadOnlySpan<byte> file, ulong offset, ushort entrySize, ushort count, string what) =>
        CheckRange(file, offset, (ulong)entrySize * count, what);

    private static void CheckRange(ReadOnlySpan<byte> file, ulong offset, ulong size, string what)
    {
        if (offset > (ulong)file.Length || size > (ulong)file.Length - offset)
            throw Fail(GuestImageError.Truncated, $"the {what} [0x{offset:X}, +0x{size:X}) lies outside the 0x{file.Length:X}-byte file");
    }

    private static ushort U16(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b[at..]);

    private static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);

    private static ulong U64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b[at..]);

    private static GuestImageException Fail(GuestImageError error, string message) => new(error, "ELF image: " + message);
}
