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
    /// <summary>Creates the exception without a specific error or offset.</summary>
    public MicroVmSnapshotFormatException()
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/> and no specific error or offset.</summary>
    public MicroVmSnapshotFormatException(string message)
        : base(message)
    {
    }

    /// <summary>
    /// Creates the exception with <paramref name="message"/>, its cause <paramref name="inner"/> and no specific error
    /// or offset.
    /// </summary>
    public MicroVmSnapshotFormatException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>
    /// Creates the exception for <paramref name="error"/> at byte <paramref name="offset"/>; the message is prefixed
    /// with both.
    /// </summary>
    public MicroVmSnapshotFormatException(SnapshotFormatError error, long offset, string message)
        : base($"snapshot {error} at offset {offset} (0x{offset:X}): {message}")
    {
        Error = error;
        Offset = offset;
    }

    /// <summary>What was wrong with the bytes.</summary>
    public SnapshotFormatError Error { get; }

    /// <summary>
    /// Where: the byte offset, from the start of the snapshot, of the bad field (or of the end of input when
    /// truncated).
    /// </summary>
    public long Offset { get; }
}
