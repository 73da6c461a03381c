// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;

namespace KvmSharp.Vmm.Loader;

/// <summary>
/// Writes a minimal static ELF64 x86-64 ET_EXEC: one RWX PT_LOAD holding <c>code</c> at <c>address</c>, and a
/// .symtab of global STT_FUNC symbols (the exports). The Iced-assembled guests are packaged this way so that they go
/// through the same loader as a compiler's output.
/// </summary>
public static class ElfWriter
{
    private const int CodeOffset = 0x1000;
    private const uint PF_X = 1, PF_W = 2, PF_R = 4;
    private const uint SHT_PROGBITS = 1, SHT_SYMTAB = 2, SHT_STRTAB = 3;
    private const ulong SHF_WRITE = 1, SHF_ALLOC = 2, SHF_EXECINSTR = 4;

    /// <param name="code">The segment bytes.</param>
    /// <param name="address">Where the segment goes (and its first byte's symbol value base).</param>
    /// <param name="entry">e_entry.</param>
    /// <param name="functions">Export name → absolute address.</param>
    /// <param name="bssSize">Zero bytes after the code (p_memsz - p_filesz).</param>
    public static byte[] Write(ReadOnlySpan<byte> code, ulong address, ulong entry, IReadOnlyDictionary<string, ulong> functions, ulong bssSize = 0)
    {
        ArgumentNullException.ThrowIfNull(functions);
        // .strtab: "\0name\0name\0…"; .shstrtab: section names.
        var strtab = new List<byte> { 0 };
        var symbols = new List<(uint Name, ulong Value)>();
        foreach (var (name, value) in functions.OrderBy(f => f.Value))
        {
            symbols.Add(((uint)strtab.Count, value));
            strtab.AddRange(Encoding.UTF8.GetBytes(name));
            strtab.Add(0);
        }
        byte[] shstrtab = Encoding.ASCII.GetBytes("\0.text\0.symtab\0.strtab\0.shstrtab\0");
        const uint TextName = 1, SymtabName = 7, StrtabName = 15, ShstrtabName = 23;

        int symtabOffset = Align(CodeOffset + code.Length, 8);
        int symtabSize = (symbols.Count + 1) * ElfParser.SymSize;
        int strtabOffset = symtabOffset + symtabSize;
        int shstrtabOffset = strtabOffset + strtab.Count;
        int shoff = Align(shstrtabOffset + shstrtab.Length, 8);
        const int SectionCount = 5;
        var file = new byte[shoff + SectionCount * ElfParser.ShdrSize];
        Span<byte> f = file;

        // ELF header
        f[0] = 0x7F; f[1] = (byte)'E'; f[2] = (byte)'L'; f[3] = (byte)'F';
        f[4] = ElfParser.ELFCLASS64; f[5] = ElfParser.ELFDATA2LSB; f[6] = 1;
        U16(f, 16, ElfParser.ET_EXEC);
        U16(f, 18, ElfParser.EM_X86_64);
        U32(f, 20, 1);
        U64(f, 24, entry);
        U64(f, 32, ElfParser.EhdrSize);
        U64(f, 40, (ulong)shoff);
        U16(f, 52, ElfParser.EhdrSize);
        U16(f, 54, ElfParser.PhdrSize);
        U16(f, 56, 1);
        U16(f, 58, ElfParser.ShdrSize);
        U16(f, 60, SectionCount);
        U16(f, 62, SectionCount - 1);

        // The one PT_LOAD
        int ph = ElfParser.EhdrSize;
        U32(f, ph, ElfParser.PT_LOAD);
        U32(f, ph + 4, PF_R | PF_W | PF_X);
        U64(f, ph + 8, CodeOffset);
        U64(f, ph + 16, address);
        U64(f, ph + 24, address);
        U64(f, ph + 32, (ulong)code.Length);
        U64(f, ph + 40, (ulong)code.Length + bssSize);
        U64(f, ph + 48, 0x1000);

        code.CopyTo(f[CodeOffset..]);
        for (int i = 0; i < symbols.Count; i++)
        {
            int sym = symtabOffset + (i + 1) * ElfParser.SymSize;
            U32(f, sym, symbols[i].Name);
            f[sym + 4] = (byte)((ElfParser.STB_GLOBAL << 4) | ElfParser.STT_FUNC);
            U16(f, sym + 6, 1);
            U64(f, sym + 8, symbols[i].Value);
        }
        strtab.ToArray().CopyTo(f[strtabOffset..]);
        shstrtab.CopyTo(f[shstrtabOffset..]);

        Section(f, shoff, 1, TextName, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR, address, CodeOffset, (ulong)code.Length, 0, 0);
        Section(f, shoff, 2, SymtabName, SHT_SYMTAB, 0, 0, (ulong)symtabOffset, (ulong)symtabSize, 3, ElfParser.SymSize);
        Section(f, shoff, 3, StrtabName, SHT_STRTAB, 0, 0, (ulong)strtabOffset, (ulong)strtab.Count, 0, 0);
        Section(f, shoff, 4, ShstrtabName, SHT_STRTAB, 0, 0, (ulong)shstrtabOffset, (ulong)shstrtab.Length, 0, 0);
        return file;
    }

    private static void Section(Span<byte> f, int shoff, int index, uint name, uint type, ulong flags, ulong addr, ulong offset, ulong size, uint link, ulong entsize)
    {
        int sh = shoff + index * ElfParser.ShdrSize;
        U32(f, sh, name);
        U32(f, sh + 4, type);
        U64(f, sh + 8, flags);
        U64(f, sh + 16, addr);
        U64(f, sh + 24, offset);
        U64(f, sh + 32, size);
        U32(f, sh + 40, link);
        // sh_info of .symtab: index of the first non-local symbol (all but the null symbol are global).
        U32(f, sh + 44, type == SHT_SYMTAB ? 1u : 0u);
        U64(f, sh + 48, 8);
        U64(f, sh + 56, entsize);
    }

    private static int Align(int value, int alignment) => (value + alignment - 1) / alignment * alignment;

    private static void U16(Span<byte> f, int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(f[at..], v);

    private static void U32(Span<byte> f, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(f[at..], v);

    private static void U64(Span<byte> f, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(f[at..], v);
}
