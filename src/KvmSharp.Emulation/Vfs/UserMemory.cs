// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Vfs;

/// <summary>
/// copy_from_user/copy_to_user at a raw user address carried inside an ioctl struct (u64_to_user_ptr(cmd->data),
/// a source buffer): the address is this process's own memory, read and written with process_vm_readv/writev, so an
/// unmapped or unwritable address is EFAULT, never a crash. access_ok() rejects ranges beyond TASK_SIZE_MAX first.
/// </summary>
internal static class UserMemory
{
    /// <summary>access_ok(addr, size): the whole range lies below TASK_SIZE_MAX, without wrapping.</summary>
    public static bool AccessOk(EmulatorConfig config, ulong address, ulong size) =>
        size <= config.TaskSizeMax && address <= config.TaskSizeMax - size;

    /// <summary>copy_from_user into a byte buffer: false (→ EFAULT) when any byte is not readable.</summary>
    public static bool CopyFromUser(EmulatorConfig config, ulong address, Span<byte> destination)
    {
        if (destination.IsEmpty) return true;
        if (!AccessOk(config, address, (ulong)destination.Length)) return false;
        return HostMemory.ReadProcessMemory(address, destination) == destination.Length;
    }

    public static bool CopyFromUser<T>(EmulatorConfig config, ulong address, out T value) where T : unmanaged
    {
        value = default;
        return CopyFromUser(config, address, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1)));
    }

    /// <summary>copy_to_user of a byte buffer: false (→ EFAULT) when any byte is not writable.</summary>
    public static bool CopyToUser(EmulatorConfig config, ulong address, ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return true;
        if (!AccessOk(config, address, (ulong)bytes.Length)) return false;
        return HostMemory.WriteProcessMemory(address, bytes) == bytes.Length;
    }

    /// <summary>copy_to_user of a whole struct: false (→ EFAULT) when the range is not writable.</summary>
    public static bool CopyToUser<T>(EmulatorConfig config, ulong address, in T value) where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        if (!AccessOk(config, address, (ulong)size)) return false;
        T copy = value;
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref copy, 1));
        return HostMemory.WriteProcessMemory(address, bytes) == size;
    }
}
