// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Vmm.Loader;

/// <summary>
/// The PT_GNU_PROPERTY segment of an AArch64 ELF image, read as fs/binfmt_elf.c parse_elf_properties /
/// parse_elf_property and arch/arm64/kernel/process.c arch_parse_elf_property read it: one NT_GNU_PROPERTY_TYPE_0 note
/// named "GNU" of at most 1 KiB, its properties 8-byte aligned, unique and sorted by type, and
/// GNU_PROPERTY_AARCH64_FEATURE_1_AND exactly 4 bytes. Where the kernel refuses the executable (ENOEXEC, EIO) the image
/// is refused with the kernel's reason.
/// </summary>
internal static class ElfProperties
{
    public const uint PT_GNU_PROPERTY = 0x6474_E553;
    public const uint NT_GNU_PROPERTY_TYPE_0 = 5;
    public const uint GNU_PROPERTY_AARCH64_FEATURE_1_AND = 0xC000_0000;

    /// <summary>fs/binfmt_elf.c NOTE_DATA_SZ: "If the properties are crazy large, that's too bad (for now)".</summary>
    private const int NoteDataSize = 1024;

    /// <summary>struct elf_note (n_namesz, n_descsz, n_type) and NOTE_NAME_SZ (sizeof "GNU").</summary>
    private const int NoteHeaderSize = 12, NoteNameSize = 4;

    /// <summary>ELF_GNU_PROPERTY_ALIGN for ELFCLASS64.</summary>
    private const int Align = 8;

    /// <summary>The AArch64 feature bits of the segment <paramref name="note"/> (its p_filesz bytes).</summary>
    public static BranchProtection ReadAarch64Features(ReadOnlySpan<byte> note)
    {
        if (note.Length > NoteDataSize) throw Fail($"the PT_GNU_PROPERTY segment has {note.Length} bytes; the kernel reads at most {NoteDataSize}");
        if (note.Length < NoteHeaderSize + NoteNameSize) throw Fail($"the PT_GNU_PROPERTY segment has {note.Length} bytes, less than a note header and its name");
        uint nameSize = U32(note, 0), descSize = U32(note, 4), type = U32(note, 8);
        if (type != NT_GNU_PROPERTY_TYPE_0 || nameSize != NoteNameSize || !note.Slice(NoteHeaderSize, NoteNameSize).SequenceEqual("GNU\0"u8))
            throw Fail($"the PT_GNU_PROPERTY note is type {type} named {nameSize} bytes; the kernel takes only NT_GNU_PROPERTY_TYPE_0 named \"GNU\"");
        int offset = RoundUp(NoteHeaderSize + NoteNameSize);
        if (descSize > (uint)(note.Length - offset)) throw Fail($"the note's n_descsz {descSize} runs past its {note.Length}-byte segment");
        int end = offset + (int)descSize;

        var features = BranchProtection.None;
        uint? previous = null;
        while (offset != end)
        {
            if (end - offset < 8) throw Fail($"a property header at note offset {offset} is cut short");
            uint prType = U32(note, offset), prDataSize = U32(note, offset + 4);
            offset += 8;
            if (prDataSize > (uint)(end - offset)) throw Fail($"property 0x{prType:X}'s pr_datasz {prDataSize} runs past the note");
            int step = RoundUp((int)prDataSize);
            if (step > end - offset) throw Fail($"property 0x{prType:X}'s padded size {step} runs past the note");
            // "Properties are supposed to be unique and sorted on pr_type".
            if (previous is uint p && prType <= p) throw Fail($"property 0x{prType:X} follows 0x{p:X}: properties must be unique and sorted by type");
            previous = prType;
            if (prType == GNU_PROPERTY_AARCH64_FEATURE_1_AND)
            {
                if (prDataSize != 4) throw Fail($"GNU_PROPERTY_AARCH64_FEATURE_1_AND has {prDataSize} data bytes; it must have 4");
                features = (BranchProtection)(U32(note, offset) & (uint)(BranchProtection.Bti | BranchProtection.Pac));
            }
            offset += step;
        }
        return features;
    }

    private static int RoundUp(int value) => (value + Align - 1) & ~(Align - 1);

    private static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);

    private static GuestImageException Fail(string message) =>
        new(GuestImageError.BadProperty, "ELF image: " + message + " (fs/binfmt_elf.c parse_elf_properties refuses it)");
}
