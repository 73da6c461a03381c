// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>The ELF64 and flat loaders: valid images load, every malformation is a typed GuestImageException.</summary>
public sealed class ElfLoaderTests
{
    // Offsets into the image ElfWriter produces (one PT_LOAD right after the 64-byte header).
    private const int Ph = 64;

    private static byte[] Valid() => ElfWriter.Write([0x90, 0xC3, 0xF4], Layout.ImageBase, Layout.ImageBase,
        new Dictionary<string, ulong> { ["f"] = Layout.ImageBase + 1 }, bssSize: 0x2000);

    [Fact]
    public void A_valid_image_has_its_segment_entry_and_exports()
    {
        var image = GuestImage.Load(Valid());
        Assert.Equal(GuestImageKind.Elf, image.Kind);
        var segment = Assert.Single(image.Segments);
        Assert.Equal(Layout.ImageBase, segment.Address);
        Assert.Equal(3, segment.Data.Length);
        Assert.Equal(0x2003UL, segment.MemorySize);
        Assert.Equal(Layout.ImageBase, image.Entry);
        Assert.Equal(Layout.ImageBase + 1, image.Exports["f"]);
    }

    [Fact]
    public void A_segment_without_file_bytes_may_have_its_offset_past_the_end_of_the_file()
    {
        // ld writes a .bss-only PT_LOAD with p_filesz 0 and p_offset at the end of the file; fs/binfmt_elf.c maps it
        // without reading the file. p_filesz 0 with the offset far beyond the file is still only memory.
        byte[] elf = Valid();
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(Ph + 32), 0);
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(Ph + 8), (ulong)elf.Length + 0x1000);
        var segment = Assert.Single(GuestImage.FromElf(elf).Segments);
        Assert.Equal(0, segment.Data.Length);
        Assert.Equal(0x2003UL, segment.MemorySize);
    }

    public static TheoryData<string, GuestImageError> Malformations => new()
    {
        { "magic", GuestImageError.BadMagic },
        { "short-header", GuestImageError.Truncated },
        { "class32", GuestImageError.Unsupported },
        { "big-endian", GuestImageError.Unsupported },
        { "et-dyn", GuestImageError.Unsupported },
        { "machine", GuestImageError.Unsupported },
        { "no-phdrs", GuestImageError.NoSegments },
        { "phdrs-past-eof", GuestImageError.Truncated },
        { "segment-bytes-past-eof", GuestImageError.Truncated },
        { "filesz-over-memsz", GuestImageError.Truncated },
        { "below-image-base", GuestImageError.OutsideMemory },
        { "address-overflow", GuestImageError.OutsideMemory },
        { "entry-outside", GuestImageError.BadEntry },
        { "symtab-past-eof", GuestImageError.Truncated },
        { "not-pt-load", GuestImageError.NoSegments },
    };

    [Theory]
    [MemberData(nameof(Malformations))]
    public void A_malformed_image_is_rejected_with_the_reason(string how, GuestImageError expected)
    {
        byte[] elf = Valid();
        Span<byte> f = elf;
        switch (how)
        {
            case "magic": f[1] = (byte)'X'; break;
            case "short-header": elf = elf[..40]; break;
            case "class32": f[4] = 1; break;
            case "big-endian": f[5] = 2; break;
            case "et-dyn": BinaryPrimitives.WriteUInt16LittleEndian(f[16..], 3); break;
            case "machine": BinaryPrimitives.WriteUInt16LittleEndian(f[18..], 3); break;
            case "no-phdrs": BinaryPrimitives.WriteUInt16LittleEndian(f[56..], 0); break;
            case "phdrs-past-eof": BinaryPrimitives.WriteUInt64LittleEndian(f[32..], (ulong)elf.Length - 8); break;
            case "segment-bytes-past-eof": BinaryPrimitives.WriteUInt64LittleEndian(f[(Ph + 8)..], (ulong)elf.Length); break;
            case "filesz-over-memsz": BinaryPrimitives.WriteUInt64LittleEndian(f[(Ph + 40)..], 1); break;
            case "below-image-base": BinaryPrimitives.WriteUInt64LittleEndian(f[(Ph + 16)..], Layout.Pml4); break;
            case "address-overflow": BinaryPrimitives.WriteUInt64LittleEndian(f[(Ph + 16)..], ulong.MaxValue - 1); break;
            case "entry-outside": BinaryPrimitives.WriteUInt64LittleEndian(f[24..], 0x1234_5678); break;
            case "symtab-past-eof":
                {
                    ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(f[40..]);
                    BinaryPrimitives.WriteUInt64LittleEndian(f[(int)(shoff + 2 * 64 + 32)..], 0x10_0000); // .symtab sh_size
                    break;
                }
            case "not-pt-load": BinaryPrimitives.WriteUInt32LittleEndian(f[Ph..], 4); break;
        }
        var e = Assert.Throws<GuestImageException>(() => GuestImage.FromElf(elf));
        Assert.Equal(expected, e.Error);
    }

    [Fact]
    public void Overlapping_segments_are_rejected()
    {
        byte[] elf = Valid();
        // Duplicate the program header: phnum = 2 with the second header overwriting the (unused) bytes after it.
        var bigger = new byte[elf.Length];
        elf.CopyTo(bigger, 0);
        elf.AsSpan(Ph, 56).CopyTo(bigger.AsSpan(Ph + 56));
        BinaryPrimitives.WriteUInt16LittleEndian(bigger.AsSpan(56), 2);
        Assert.Equal(GuestImageError.Overlap, Assert.Throws<GuestImageException>(() => GuestImage.FromElf(bigger)).Error);
    }

    [KvmFact]
    public void A_segment_beyond_guest_memory_is_refused_by_create()
    {
        byte[] elf = Valid();
        // 4 MiB of BSS: fits the layout (below 1 GiB) but not a 2 MiB micro-VM.
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(Ph + 40), 4 * 1024 * 1024);
        var image = GuestImage.FromElf(elf);
        var e = Assert.Throws<GuestImageException>(() => MicroVm.Create(image, GuestRun.Default));
        Assert.Equal(GuestImageError.OutsideMemory, e.Error);
        using var big = MicroVm.Create(image, GuestRun.Default with { MemorySize = 8 * 1024 * 1024 });
        // nop; ret: the entry returns through the trampoline.
        Assert.Equal(GuestOutcome.Exit, big.Run().Outcome);
    }

    [Fact]
    public void Every_truncation_of_a_real_image_fails_cleanly()
    {
        byte[] elf = new GuestProgramProbe().Elf;
        for (int length = 0; length < elf.Length; length++)
        {
            try
            {
                GuestImage.FromElf(elf.AsMemory(0, length));
            }
            catch (GuestImageException)
            {
                // expected: anything else (IndexOutOfRange, ArgumentOutOfRange …) fails the test
            }
        }
    }

    [Fact]
    public void Random_byte_flips_never_escape_as_anything_but_GuestImageException()
    {
        byte[] original = new GuestProgramProbe().Elf;
        var random = new Random(11);
        for (int i = 0; i < 2000; i++)
        {
            byte[] elf = (byte[])original.Clone();
            for (int j = 0; j < 4; j++) elf[random.Next(0, 256)] = (byte)random.Next(256);
            try
            {
                GuestImage.FromElf(elf);
            }
            catch (GuestImageException)
            {
            }
        }
    }

    [Fact]
    public void Flat_images_load_at_image_base_with_named_offsets()
    {
        var image = GuestImage.Load(new byte[] { 0x90, 0xF4 });
        Assert.Equal(GuestImageKind.Flat, image.Kind);
        Assert.Equal(Layout.ImageBase, image.Entry);
        var named = GuestImage.FromFlat(new byte[16], entryOffset: 4, new Dictionary<string, ulong> { ["g"] = 8 });
        Assert.Equal(Layout.ImageBase + 8, named.Resolve("g"));
        Assert.Equal(GuestImageError.BadMagic, Assert.Throws<GuestImageException>(() => GuestImage.FromFlat(Array.Empty<byte>())).Error);
        Assert.Equal(GuestImageError.BadEntry, Assert.Throws<GuestImageException>(() => GuestImage.FromFlat(new byte[4], entryOffset: 4)).Error);
        Assert.Equal(GuestImageError.BadEntry, Assert.Throws<GuestImageException>(() =>
            GuestImage.FromFlat(new byte[4], 0, new Dictionary<string, ulong> { ["x"] = 9 })).Error);
    }

    [KvmFact]
    public void A_flat_image_runs()
    {
        // mov eax, 7 ; mov dx, 0x500 ; out dx, eax — assembled, not typed.
        var a = new Iced.Intel.Assembler(64);
        a.mov(Iced.Intel.AssemblerRegisters.eax, 7);
        a.mov(Iced.Intel.AssemblerRegisters.dx, GuestAbi.Ports.Exit);
        a.@out(Iced.Intel.AssemblerRegisters.dx, Iced.Intel.AssemblerRegisters.eax);
        using var stream = new MemoryStream();
        a.Assemble(new Iced.Intel.StreamCodeWriter(stream), Layout.ImageBase);
        var r = GuestRun.Run(GuestImage.FromFlat(stream.ToArray()));
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(7, r.Status);
    }

    /// <summary>The ELF bytes of the sum guest (several exports), for the fuzz-style tests.</summary>
    private sealed class GuestProgramProbe
    {
        public byte[] Elf { get; } = Build();

        private static byte[] Build()
        {
            var p = new GuestProgram();
            var start = p.Export("_start");
            var other = p.Export("other");
            p.Place(ref start);
            p.Asm.nop();
            p.Place(ref other);
            p.Asm.ret();
            return p.BuildElf(start);
        }
    }
}
