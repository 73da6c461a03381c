// SPDX-License-Identifier: MIT
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace KvmSharp.Disassembly;

/// <summary>The instruction sets a <see cref="Capstone"/> engine is opened for (capstone.h's <c>cs_arch</c>).</summary>
public enum CapstoneArchitecture
{
    /// <summary><c>CS_ARCH_ARM64</c>: A64 (capstone 4 decodes ARMv8.0 with FP/SIMD, CRC32 and crypto; not the ARMv8.1 atomics, FP16 or SVE).</summary>
    Arm64 = CapstoneNative.CS_ARCH_ARM64,
}

/// <summary>The engine mode (capstone.h's <c>cs_mode</c>).</summary>
public enum CapstoneMode
{
    /// <summary><c>CS_MODE_LITTLE_ENDIAN</c>.</summary>
    LittleEndian = CapstoneNative.CS_MODE_LITTLE_ENDIAN,
}

/// <summary>One decoded instruction: capstone's <c>cs_insn</c> without its detail.</summary>
/// <param name="Id">The instruction id (arm64.h's <c>arm64_insn</c>).</param>
/// <param name="Address">The address it was decoded at.</param>
/// <param name="Size">Its length in bytes.</param>
/// <param name="Mnemonic">The mnemonic ("add", "b.eq").</param>
/// <param name="Operands">The operands as capstone prints them ("x0, x0, x1"; a PC-relative target as "#0x1040"); empty when none.</param>
public readonly record struct CapstoneInstruction(uint Id, ulong Address, int Size, string Mnemonic, string Operands)
{
    /// <summary>"add x0, x0, x1": the mnemonic, then the operands after a space when there are any.</summary>
    public override string ToString() => Operands.Length == 0 ? Mnemonic : $"{Mnemonic} {Operands}";
}

/// <summary>
/// A capstone 4 disassembler engine (libcapstone.so.4, Debian package libcapstone4), opened with
/// <see cref="TryOpen"/>, which returns false — never a DllNotFoundException — on a machine without the library.
/// A csh is not thread-safe (capstone's documentation): this object serialises its calls with a lock, so one engine
/// may be shared between threads. Dispose closes the engine (cs_close).
/// </summary>
public sealed class Capstone : IDisposable
{
    /// <summary>The library the binding loads by default: capstone 4's soname.</summary>
    public const string DefaultLibraryName = CapstoneNative.LibraryName;

    private static readonly Lock LoadGate = new();

    /// <summary>The library the binding is bound to (0 until the first successful load).</summary>
    private static nint s_library;

    private readonly CapstoneHandle _handle;
    private readonly Lock _gate = new();

    private Capstone(CapstoneHandle handle, CapstoneArchitecture architecture)
    {
        _handle = handle;
        Architecture = architecture;
    }

    /// <summary>The instruction set this engine decodes.</summary>
    public CapstoneArchitecture Architecture { get; }

    /// <summary>The engine's handle; closed after <see cref="Dispose"/>.</summary>
    public CapstoneHandle Handle => _handle;

    /// <summary>
    /// True when <paramref name="libraryName"/> (a soname the dynamic loader searches for, or a path) loads and exports
    /// every entry point the binding calls, with API major version 4. The first library that loads is the one the
    /// binding uses for the life of the process; another one afterwards is refused.
    /// </summary>
    public static bool IsAvailable(string libraryName = DefaultLibraryName) => TryLoad(libraryName);

    /// <summary>The library's (major, minor) API version (cs_version), or null when it is not available.</summary>
    public static unsafe (int Major, int Minor)? LibraryVersion(string libraryName = DefaultLibraryName)
    {
        if (!TryLoad(libraryName)) return null;
        int major, minor;
        // SAFETY: the library is loaded with every export checked; cs_version writes two ints on this stack.
        CapstoneNative.cs_version(&major, &minor);
        return (major, minor);
    }

    /// <summary>
    /// Opens an engine for <paramref name="architecture"/> (cs_open, detail off) from <paramref name="libraryName"/>;
    /// false when the library is missing, is not capstone 4, or refuses the architecture.
    /// </summary>
    public static unsafe bool TryOpen(CapstoneArchitecture architecture, CapstoneMode mode, [NotNullWhen(true)] out Capstone? engine,
        string libraryName = DefaultLibraryName)
    {
        engine = null;
        if (!TryLoad(libraryName)) return false;
        var handle = new CapstoneHandle();
        nuint value = 0;
        int error;
        // SAFETY: the library is loaded with every export checked; cs_open writes the csh into the local on this stack.
        error = CapstoneNative.cs_open((int)architecture, (int)mode, &value);
        if (error != 0 || value == 0)
        {
            handle.Dispose();
            return false;
        }
        handle.Set(value);
        engine = new Capstone(handle, architecture);
        return true;
    }

    /// <summary>
    /// Decodes the first instruction of <paramref name="code"/> as if it stood at <paramref name="address"/> (PC-relative
    /// operands are printed as absolute targets from it); false when the bytes are no instruction this capstone decodes.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public unsafe bool TryDisassembleOne(ReadOnlySpan<byte> code, ulong address, out CapstoneInstruction instruction)
    {
        instruction = default;
        if (code.IsEmpty) return false;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            bool added = false;
            CsInsn* insn = null;
            nuint count = 0;
            try
            {
                _handle.DangerousAddRef(ref added);
                fixed (byte* bytes = code)
                {
                    // SAFETY: bytes is pinned for the call and code.Length long; the handle is open (AddRef) and used
                    // by this thread only (the lock); cs_disasm writes insn, a buffer of count entries freed below.
                    count = CapstoneNative.cs_disasm(_handle.Value, bytes, (nuint)code.Length, address, 1, &insn);
                }
                if (count == 0 || insn is null) return false;
                // SAFETY: insn points at count >= 1 cs_insn of capstone 4's layout (CsInsn), valid until cs_free.
                instruction = new CapstoneInstruction(insn->id, insn->address, insn->size,
                    Text(insn->mnemonic, CapstoneNative.CS_MNEMONIC_SIZE), Text(insn->op_str, CapstoneNative.OpStrSize));
                return true;
            }
            finally
            {
                // SAFETY: insn is the buffer cs_disasm allocated for count instructions (or null, count 0), freed once.
                if (count != 0) CapstoneNative.cs_free(insn, count);
                if (added) _handle.DangerousRelease();
            }
        }
    }

    /// <summary>The engine's last error (cs_errno): 0 (CS_ERR_OK) after a call that did not fail.</summary>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public int LastError
    {
        get
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
                bool added = false;
                try
                {
                    _handle.DangerousAddRef(ref added);
                    return CapstoneNative.cs_errno(_handle.Value);
                }
                finally
                {
                    if (added) _handle.DangerousRelease();
                }
            }
        }
    }

    /// <summary>Closes the engine (cs_close).</summary>
    public void Dispose()
    {
        lock (_gate) _handle.Dispose();
    }

    /// <summary>The NUL-terminated ASCII text in the first <paramref name="size"/> bytes at <paramref name="text"/>, trimmed.</summary>
    private static unsafe string Text(byte* text, int size)
    {
        // SAFETY: text is a char[size] field of a live cs_insn; the span stays inside it.
        var span = new ReadOnlySpan<byte>(text, size);
        int end = span.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? span : span[..end]).Trim();
    }

    /// <summary>Loads <paramref name="libraryName"/> and binds the LibraryImports to it (once per process).</summary>
    private static unsafe bool TryLoad(string libraryName)
    {
        ArgumentException.ThrowIfNullOrEmpty(libraryName);
        lock (LoadGate)
        {
            if (!NativeLibrary.TryLoad(libraryName, out nint library)) return false;
            if (s_library != 0)
            {
                // dlopen returns the same handle for the same library; another library cannot be bound any more.
                if (library == s_library) return true;
                NativeLibrary.Free(library);
                return false;
            }
            foreach (string export in CapstoneNative.Exports)
            {
                if (!NativeLibrary.TryGetExport(library, export, out _))
                {
                    NativeLibrary.Free(library);
                    return false;
                }
            }
            var version = (delegate* unmanaged<int*, int*, uint>)NativeLibrary.GetExport(library, "cs_version");
            int major, minor;
            // SAFETY: cs_version is the export just found, of the signature capstone.h gives; it writes two stack ints.
            version(&major, &minor);
            if (major != 4)
            {
                // Another cs_insn layout (capstone 5 grew it): this binding reads capstone 4's only.
                NativeLibrary.Free(library);
                return false;
            }
            try
            {
                NativeLibrary.SetDllImportResolver(typeof(CapstoneNative).Assembly, Resolve);
            }
            catch (InvalidOperationException) when (libraryName == CapstoneNative.LibraryName)
            {
                // Another resolver owns this assembly: the binding's own probing finds the same soname.
            }
            catch (InvalidOperationException)
            {
                NativeLibrary.Free(library);
                return false;
            }
            s_library = library;
            return true;
        }
    }

    /// <summary>The binding's library name resolves to the library <see cref="TryLoad"/> loaded; anything else as usual.</summary>
    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        libraryName == CapstoneNative.LibraryName ? s_library : 0;
}
