// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Disassembly;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// Text for A64 instruction words, as <see cref="TracedInstruction.Disassembly"/> shows an arm64 micro-VM's trace:
/// capstone 4 (libcapstone.so.4, Debian package libcapstone4) disassembles ARMv8.0 with FP/SIMD, CRC32, the crypto
/// extension and the system instructions; a word it does not decode (SVE, the ARMv8.1 atomics, FP16, UDF, unallocated
/// encodings) and every word on a machine without the library is shown as its word, the way objdump prints one it does
/// not decode (".inst 0xd503201f"). Pointer authentication shows as the HINT it is to an ARMv8.0 decoder. Safe to call
/// from any thread.
/// </summary>
public static class A64Disassembler
{
    /// <summary>The engine of the process (opened on first use, never closed).</summary>
    internal static A64DisassemblerEngine Shared { get; } = new(Capstone.DefaultLibraryName);

    /// <summary>True when capstone 4 is present: <see cref="TryFormat"/> can decode.</summary>
    public static bool IsAvailable => Shared.IsAvailable;

    /// <summary>
    /// "add x0, x0, x1": <paramref name="word"/> disassembled as if at <paramref name="pc"/> (a PC-relative branch or
    /// ADR shows its target address, "bl #0x1040"); false, with <paramref name="text"/> the ".inst 0x…" form, when
    /// capstone is absent or does not decode the word.
    /// </summary>
    public static bool TryFormat(uint word, ulong pc, out string text) => Shared.TryFormat(word, pc, out text);

    /// <summary><see cref="TryFormat"/>'s text: the disassembly, or ".inst 0x…" when there is none.</summary>
    public static string Format(uint word, ulong pc) => Shared.Format(word, pc);

    /// <summary>".inst 0xd503201f": how objdump prints a word it does not decode.</summary>
    public static string Word(uint word) => $".inst 0x{word:x8}";
}

/// <summary>
/// One capstone engine for A64 from a given library (the process's is <see cref="A64Disassembler.Shared"/>; tests name
/// a missing library to see the fallback). The engine opens on first use; <see cref="Capstone"/> serialises its calls.
/// </summary>
internal sealed class A64DisassemblerEngine : IDisposable
{
    private readonly Lazy<Capstone?> _capstone;

    public A64DisassemblerEngine(string libraryName)
    {
        LibraryName = libraryName;
        _capstone = new Lazy<Capstone?>(
            () => Capstone.TryOpen(CapstoneArchitecture.Arm64, CapstoneMode.LittleEndian, out Capstone? engine, libraryName) ? engine : null,
            LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The library this engine loads.</summary>
    public string LibraryName { get; }

    /// <summary>True when the library loaded and cs_open gave an A64 engine.</summary>
    public bool IsAvailable => Capstone is not null;

    /// <summary>The engine (null without the library); opening it on first use.</summary>
    public Capstone? Capstone => _capstone.Value;

    public bool TryFormat(uint word, ulong pc, out string text)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, word);
        // A64 words are little-endian in memory (Arm ARM B2.6.2: instruction fetches are always little-endian).
        if (Capstone is { } capstone && capstone.TryDisassembleOne(bytes, pc, out CapstoneInstruction instruction) && instruction.Size == 4)
        {
            text = instruction.ToString();
            return true;
        }
        text = A64Disassembler.Word(word);
        return false;
    }

    public string Format(uint word, ulong pc)
    {
        TryFormat(word, pc, out string text);
        return text;
    }

    /// <summary>Closes the engine (cs_close) if it was opened.</summary>
    public void Dispose()
    {
        if (_capstone.IsValueCreated) _capstone.Value?.Dispose();
    }
}
