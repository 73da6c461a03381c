// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Cli.Preload;

/// <summary>
/// The program's memory seen from the bridge, as copy_from_user/copy_to_user see it: checked copies through
/// process_vm_readv/writev, EFAULT where a byte is not there.
/// </summary>
internal static class UserBuffers
{
    /// <summary>One read(2)/write(2) moves at most this much (a short count, as the kernel may return).</summary>
    private const int MaxTransfer = 16 << 20;

    private const int Page = 4096;

    /// <summary>Copies the readable start of [address, +buffer.Length) into <paramref name="buffer"/>; returns its length.</summary>
    public static int ReadPrefix(nuint address, Span<byte> buffer)
    {
        if (buffer.IsEmpty || address == 0) return 0;
        if (HostMemory.ReadProcessMemory(address, buffer) == buffer.Length) return buffer.Length;
        // Page by page up to the first hole.
        int done = 0;
        while (done < buffer.Length)
        {
            ulong at = address + (nuint)done;
            int chunk = Math.Min(buffer.Length - done, Page - (int)(at % Page));
            if (HostMemory.ReadProcessMemory(at, buffer.Slice(done, chunk)) != chunk) break;
            done += chunk;
        }
        return done;
    }

    /// <summary>copy_to_user of all of <paramref name="bytes"/>: false when a byte could not be written.</summary>
    public static bool Write(nuint address, ReadOnlySpan<byte> bytes) =>
        bytes.IsEmpty || HostMemory.WriteProcessMemory(address, bytes) == bytes.Length;

    /// <summary>
    /// Writes back the bytes of <paramref name="after"/> that differ from <paramref name="before"/>; false when one of
    /// them could not be written (the program's memory there is read-only or gone).
    /// </summary>
    public static bool WriteChanged(nuint address, ReadOnlySpan<byte> before, ReadOnlySpan<byte> after)
    {
        bool written = true;
        int i = 0;
        while (i < after.Length)
        {
            if (before[i] == after[i])
            {
                i++;
                continue;
            }
            int start = i;
            while (i < after.Length && before[i] != after[i]) i++;
            written &= Write(address + (nuint)start, after[start..i]);
        }
        return written;
    }

    /// <summary>read(2) into the program's buffer: the kernel fills a copy, which is then written out.</summary>
    public static long Read(nuint address, nuint count, Func<Span<byte>, long> read)
    {
        byte[] buffer = new byte[(int)Math.Min(count, (nuint)MaxTransfer)];
        long rc = read(buffer);
        if (rc <= 0) return rc;
        return HostMemory.WriteProcessMemory(address, buffer.AsSpan(0, (int)rc)) < 0 ? -(long)Errno.EFAULT : rc;
    }

    /// <summary>write(2) from the program's buffer: EFAULT when it cannot be read.</summary>
    public static long Write(nuint address, nuint count, Func<ReadOnlySpan<byte>, long> write)
    {
        byte[] buffer = new byte[(int)Math.Min(count, (nuint)MaxTransfer)];
        if (buffer.Length > 0 && HostMemory.ReadProcessMemory(address, buffer) < 0) return -(long)Errno.EFAULT;
        return write(buffer);
    }

    /// <summary>Fills the program's <c>struct stat</c> (this architecture's layout) with what the kernel reported.</summary>
    public static long PutStat(nuint address, KernelStat stat)
    {
        bool arm64 = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;
        // arch/x86/include/uapi/asm/stat.h (144 bytes) or include/uapi/asm-generic/stat.h (128 bytes).
        Span<byte> b = stackalloc byte[arm64 ? 128 : 144];
        b.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(b, stat.Device);
        BinaryPrimitives.WriteUInt64LittleEndian(b[8..], stat.Inode);
        if (arm64)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b[16..], stat.Mode);
            BinaryPrimitives.WriteUInt32LittleEndian(b[20..], (uint)stat.Links);
            BinaryPrimitives.WriteUInt32LittleEndian(b[24..], stat.Uid);
            BinaryPrimitives.WriteUInt32LittleEndian(b[28..], stat.Gid);
            BinaryPrimitives.WriteUInt64LittleEndian(b[32..], stat.RDevice);
            BinaryPrimitives.WriteInt32LittleEndian(b[56..], (int)stat.BlockSize);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b[16..], stat.Links);
            BinaryPrimitives.WriteUInt32LittleEndian(b[24..], stat.Mode);
            BinaryPrimitives.WriteUInt32LittleEndian(b[28..], stat.Uid);
            BinaryPrimitives.WriteUInt32LittleEndian(b[32..], stat.Gid);
            BinaryPrimitives.WriteUInt64LittleEndian(b[40..], stat.RDevice);
            BinaryPrimitives.WriteInt64LittleEndian(b[56..], stat.BlockSize);
        }
        BinaryPrimitives.WriteInt64LittleEndian(b[48..], stat.Size);
        BinaryPrimitives.WriteInt64LittleEndian(b[64..], stat.Blocks);
        return HostMemory.WriteProcessMemory(address, b) < 0 ? -(long)Errno.EFAULT : 0;
    }
}
