// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Cli.Preload;

/// <summary>
/// Whether a program can be reached by LD_PRELOAD: an ELF executable without a PT_INTERP program header is linked
/// statically, so the dynamic loader never runs and the preload library is never loaded — such a program would talk
/// to the real /dev/kvm unawares.
/// </summary>
internal static class ProgramLinkage
{
    private const uint PT_INTERP = 3; // include/uapi/linux/elf.h

    /// <summary>The path the program name resolves to (a name without '/' is looked up in PATH), or null.</summary>
    public static string? Resolve(string program)
    {
        if (program.Contains('/', StringComparison.Ordinal)) return File.Exists(program) ? program : null;
        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
    }

    /// <summary>True for a 64-bit little-endian ELF file with no PT_INTERP; false for anything else (a script too).</summary>
    public static bool IsStaticElf(string path)
    {
        try
        {
            using var file = File.OpenRead(path);
            Span<byte> header = stackalloc byte[64];
            if (file.Read(header) < header.Length) return false;
            // e_ident: "\x7fELF", ELFCLASS64 (2), ELFDATA2LSB (1).
            if (header[0] != 0x7f || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F' || header[4] != 2 || header[5] != 1) return false;
            long phoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(header[0x20..]);
            int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[0x36..]);
            int phnum = BinaryPrimitives.ReadUInt16LittleEndian(header[0x38..]);
            if (phentsize < 4 || phnum == 0) return false;
            byte[] headers = new byte[phentsize * phnum];
            file.Position = phoff;
            if (file.Read(headers) < headers.Length) return false;
            for (int i = 0; i < phnum; i++)
                if (BinaryPrimitives.ReadUInt32LittleEndian(headers.AsSpan(i * phentsize)) == PT_INTERP) return false;
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
