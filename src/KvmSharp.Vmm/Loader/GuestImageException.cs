// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Loader;

/// <summary>Why an image cannot be loaded. <see cref="Error"/> is the machine-readable reason; the message has the values.</summary>
public sealed class GuestImageException : MicroVmException
{
    public GuestImageException(GuestImageError error, string message)
        : base(message)
    {
        Error = error;
    }

    public GuestImageException()
    {
    }

    public GuestImageException(string message)
        : base(message)
    {
    }

    public GuestImageException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public GuestImageError Error { get; }
}

public enum GuestImageError
{
    None,
    /// <summary>Not an ELF file where one was required, or an empty image.</summary>
    BadMagic,
    /// <summary>ELF, but not ELF64 little-endian x86-64 ET_EXEC (e.g. 32-bit, big-endian, ET_DYN, another machine).</summary>
    Unsupported,
    /// <summary>A header, table or segment points outside the file, or sizes are inconsistent.</summary>
    Truncated,
    /// <summary>A segment (or a flat image) does not fit in [ImageBase, memory size).</summary>
    OutsideMemory,
    /// <summary>Two PT_LOAD segments overlap.</summary>
    Overlap,
    /// <summary>The entry point or an export is not inside a loaded segment.</summary>
    BadEntry,
    /// <summary>No PT_LOAD segment.</summary>
    NoSegments,
}
