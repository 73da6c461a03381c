// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Disassembly;

/// <summary>
/// The entry points of capstone 4 (Debian's libcapstone4, 4.0.2) that <see cref="Capstone"/> uses, and the layout of
/// its <c>cs_insn</c>; every type and number is read from capstone 4.0.2's include/capstone/capstone.h. Called only
/// after <see cref="Capstone"/> loaded the library and checked its exports: the binding resolves
/// <see cref="LibraryName"/> through <see cref="Capstone"/>'s DllImport resolver to the handle it loaded.
/// </summary>
internal static unsafe partial class CapstoneNative
{
    /// <summary>The soname of capstone 4 (package libcapstone4); capstone 5 is libcapstone.so.5, with another cs_insn.</summary>
    internal const string LibraryName = "libcapstone.so.4";

    // capstone.h: enum cs_arch { CS_ARCH_ARM = 0, CS_ARCH_ARM64, ... }.
    internal const int CS_ARCH_ARM64 = 1;

    // capstone.h: enum cs_mode { CS_MODE_LITTLE_ENDIAN = 0, ... }.
    internal const int CS_MODE_LITTLE_ENDIAN = 0;

    // capstone.h: enum cs_opt_type { CS_OPT_INVALID = 0, CS_OPT_SYNTAX, CS_OPT_DETAIL, ... }; enum cs_opt_value { CS_OPT_OFF = 0, ... }.
    internal const int CS_OPT_DETAIL = 2;
    internal const nuint CS_OPT_OFF = 0;

    // capstone.h: #define CS_MNEMONIC_SIZE 32; char op_str[160]; uint8_t bytes[16].
    internal const int CS_MNEMONIC_SIZE = 32;
    internal const int OpStrSize = 160;
    internal const int BytesSize = 16;

    /// <summary>The entry points the binding needs, checked with <see cref="NativeLibrary.TryGetExport"/> before use.</summary>
    internal static readonly string[] Exports = ["cs_version", "cs_open", "cs_option", "cs_disasm", "cs_free", "cs_close", "cs_errno"];

    /// <summary><c>unsigned int cs_version(int *major, int *minor)</c>: (major &lt;&lt; 8) + minor.</summary>
    [LibraryImport(LibraryName, EntryPoint = "cs_version")]
    internal static partial uint cs_version(int* major, int* minor);

    /// <summary><c>cs_err cs_open(cs_arch arch, cs_mode mode, csh *handle)</c>; csh is <c>size_t</c>.</summary>
    [LibraryImport(LibraryName, EntryPoint = "cs_open")]
    internal static partial int cs_open(int arch, int mode, nuint* handle);

    /// <summary><c>cs_err cs_option(csh handle, cs_opt_type type, size_t value)</c>.</summary>
    [LibraryImport(LibraryName, EntryPoint = "cs_option")]
    internal static partial int cs_option(nuint handle, int type, nuint value);

    /// <summary>
    /// <c>size_t cs_disasm(csh handle, const uint8_t *code, size_t code_size, uint64_t address, size_t count, cs_insn **insn)</c>:
    /// the number of instructions decoded into a buffer the library allocated (free it with <see cref="cs_free"/>), 0 on error.
    /// </summary>
    [LibraryImport(LibraryName, EntryPoint = "cs_disasm")]
    internal static partial nuint cs_disasm(nuint handle, byte* code, nuint codeSize, ulong address, nuint count, CsInsn** insn);

    /// <summary><c>void cs_free(cs_insn *insn, size_t count)</c>.</summary>
    [LibraryImport(LibraryName, EntryPoint = "cs_free")]
    internal static partial void cs_free(CsInsn* insn, nuint count);

    /// <summary><c>cs_err cs_close(csh *handle)</c>: frees the handle and sets *handle to 0.</summary>
    [LibraryImport(LibraryName, EntryPoint = "cs_close")]
    internal static partial int cs_close(nuint* handle);

    /// <summary><c>cs_err cs_errno(csh handle)</c>: the last error of the handle's last call.</summary>
    [LibraryImport(LibraryName, EntryPoint = "cs_errno")]
    internal static partial int cs_errno(nuint handle);
}

/// <summary>
/// capstone 4.0.2's <c>typedef struct cs_insn</c> (capstone.h), natural alignment as the C compiler lays it out:
/// id at 0, address at 8, size at 16, bytes[16] at 18, mnemonic[32] at 34, op_str[160] at 66, detail at 232; 240 bytes.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CsInsn
{
    /// <summary><c>unsigned int id</c>: the instruction's id (arm64.h's arm64_insn).</summary>
    public uint id;

    /// <summary><c>uint64_t address</c>: the address given to cs_disasm plus the offset of the instruction.</summary>
    public ulong address;

    /// <summary><c>uint16_t size</c>: the instruction's length in bytes.</summary>
    public ushort size;

    /// <summary><c>uint8_t bytes[16]</c>: its encoding.</summary>
    public fixed byte bytes[CapstoneNative.BytesSize];

    /// <summary><c>char mnemonic[CS_MNEMONIC_SIZE]</c>: NUL-terminated ASCII.</summary>
    public fixed byte mnemonic[CapstoneNative.CS_MNEMONIC_SIZE];

    /// <summary><c>char op_str[160]</c>: the operands, NUL-terminated ASCII.</summary>
    public fixed byte op_str[CapstoneNative.OpStrSize];

    /// <summary><c>cs_detail *detail</c>: null with CS_OPT_DETAIL off (the default, and what <see cref="Capstone"/> keeps).</summary>
    public void* detail;
}
