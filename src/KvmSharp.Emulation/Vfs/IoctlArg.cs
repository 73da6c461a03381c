// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Emulation.Vfs;

/// <summary>
/// The third ioctl argument (<c>unsigned long arg</c>): either a user pointer to <see cref="Buffer"/> or a plain
/// integer. copy_from_user/copy_to_user live here: a buffer shorter than the struct, or an integer used as a
/// pointer, faults (EFAULT) exactly where the kernel's copy would.
/// </summary>
internal readonly ref struct IoctlArg
{
    /// <summary>
    /// What an integer-typed request (_IO: KVM_CHECK_EXTENSION, KVM_CREATE_VM …) sees when the caller passed a
    /// buffer: the buffer's address. A managed span has no stable address to report, so a non-empty buffer reads
    /// as a typical user address (far above every cap number and VM type) and an empty one as NULL.
    /// </summary>
    public const ulong SomeUserAddress = 0x7f00_0000_0000;

    private IoctlArg(Span<byte> buffer, ulong value, bool isPointer)
    {
        Buffer = buffer;
        Value = value;
        IsPointer = isPointer;
    }

    public Span<byte> Buffer { get; }

    /// <summary>The argument as an integer (the raw value, or the pseudo address of the buffer).</summary>
    public ulong Value { get; }

    public bool IsPointer { get; }

    public static IoctlArg FromBuffer(Span<byte> buffer) =>
        new(buffer, buffer.IsEmpty ? 0 : SomeUserAddress, isPointer: true);

    public static IoctlArg FromValue(ulong value) => new(default, value, isPointer: false);

    /// <summary>copy_from_user of a whole struct: false (→ EFAULT) when the user memory is not there.</summary>
    public bool CopyFromUser<T>(out T value) where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        if (!IsPointer || Buffer.Length < size)
        {
            value = default;
            return false;
        }
        value = MemoryMarshal.Read<T>(Buffer);
        return true;
    }

    /// <summary>copy_from_user of the first <paramref name="size"/> bytes into a zeroed struct (memset + partial copy).</summary>
    public bool CopyFromUserPrefix<T>(int size, out T value) where T : unmanaged
    {
        value = default;
        if (!IsPointer || Buffer.Length < size) return false;
        Buffer[..size].CopyTo(MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1)));
        return true;
    }

    /// <summary>copy_to_user of a whole struct.</summary>
    public bool CopyToUser<T>(in T value) where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        if (!IsPointer || Buffer.Length < size) return false;
        MemoryMarshal.Write(Buffer, in value);
        return true;
    }

    /// <summary>put_user of an int (4 bytes).</summary>
    public bool PutUser(int value) => CopyToUser(value);

    /// <summary>get_user of an int (4 bytes).</summary>
    public bool GetUser(out int value) => CopyFromUser(out value);
}
