// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Loader;

/// <summary>Why an image cannot be loaded. <see cref="Error"/> is the machine-readable reason; the message has the values.</summary>
public sealed class GuestImageException : MicroVmException
{
    /// <summary>
    /// Creates the exception with its reason <paramref name="error"/> and a <paramref name="message"/> with the values.
    /// </summary>
    public GuestImageException(GuestImageError error, string message)
        : base(message)
    {
        Error = error;
    }

    /// <summary>
    /// Creates the exception without a reason (<see cref="Error"/> is <see cref="GuestImageError.None"/>).
    /// </summary>
    public GuestImageException()
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/> and no reason.</summary>
    public GuestImageException(string message)
        : base(message)
    {
    }

    /// <summary>
    /// Creates the exception with <paramref name="message"/>, its cause <paramref name="inner"/> and no reason.
    /// </summary>
    public GuestImageException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>
    /// Why the image was refused; <see cref="GuestImageError.None"/> when the exception was made without a reason.
    /// </summary>
    public GuestImageError Error { get; }
}

/// <summary>Why an image cannot be loaded (<see cref="GuestImageException.Error"/>).</summary>
public enum GuestImageError
{
    /// <summary>No reason given.</summary>
    None,
    /// <summary>Not an ELF file where one was required, or an empty image.</summary>
    BadMagic,
    /// <summary>ELF, but not ELF64 little-endian x86-64 or AArch64 ET_EXEC (e.g. 32-bit, big-endian, ET_DYN, another machine).</summary>
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
    /// <summary>An ELF of the other instruction set than the micro-VM's (x86-64 on arm64 or the reverse).</summary>
    WrongArchitecture,
    /// <summary>An AArch64 ELF whose PT_GNU_PROPERTY note the kernel would refuse (ENOEXEC; Loader/ElfProperties.cs).</summary>
    BadProperty,
}
