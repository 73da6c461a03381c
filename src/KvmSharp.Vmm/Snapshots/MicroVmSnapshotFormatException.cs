// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Snapshots;

/// <summary>What was wrong with bytes given to <see cref="MicroVmSnapshot.ReadFrom"/>.</summary>
public enum SnapshotFormatError
{
    /// <summary>Not a snapshot: the first bytes are not the magic.</summary>
    BadMagic,

    /// <summary>A snapshot of a format version this library does not read.</summary>
    UnsupportedVersion,

    /// <summary>The input ended before the snapshot did.</summary>
    Truncated,

    /// <summary>A field holds a value no writer produces (out of range, overlapping, out of order, not UTF-8 …).</summary>
    InvalidField,

    /// <summary>Every field parsed, but the SHA-256 at the end does not match the bytes before it.</summary>
    ChecksumMismatch,
}

/// <summary>
/// Bytes that are not a valid micro-VM snapshot: <see cref="Error"/> says what was wrong and <see cref="Offset"/>
/// where (the byte offset from the start of the snapshot of the field, or of the end of input when truncated).
/// </summary>
public sealed class MicroVmSnapshotFormatException : MicroVmException
{
    public MicroVmSnapshotFormatException()
    {
    }

    public MicroVmSnapshotFormatException(string message)
        : base(message)
    {
    }

    public MicroVmSnapshotFormatException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public MicroVmSnapshotFormatException(SnapshotFormatError error, long offset, string message)
        : base($"snapshot {error} at offset {offset} (0x{offset:X}): {message}")
    {
        Error = error;
        Offset = offset;
    }

    public SnapshotFormatError Error { get; }

    public long Offset { get; }
}
