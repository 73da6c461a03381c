// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>Why the kernel would answer a host access to a guest_memfd mapping with SIGBUS.</summary>
public enum GuestMemoryFault
{
    /// <summary>The page lies at or beyond the file size (kvm_gmem_fault_user_mapping: pgoff >= i_size).</summary>
    BeyondEndOfFile,
    /// <summary>The page is private: the file lacks INIT_SHARED, or it was converted to private.</summary>
    PrivatePage,
}

/// <summary>
/// A host access the kernel would kill with SIGBUS was refused before memory was touched. A .NET process cannot
/// survive SIGBUS (it becomes a fatal AccessViolationException), so the SDK checks first and throws this instead.
/// </summary>
public sealed class GuestMemoryFaultException : KvmException
{
    /// <summary>
    /// Creates the exception for an access of <paramref name="length"/> bytes at <paramref name="fileOffset"/> of a
    /// <paramref name="fileSize"/>-byte guest_memfd; its errno is EFAULT.
    /// </summary>
    public GuestMemoryFaultException(GuestMemoryFault fault, ulong fileOffset, ulong length, ulong fileSize)
        : base("host access", (int)Errno.EFAULT, $"file offset=0x{fileOffset:X} length={length}",
            fault == GuestMemoryFault.BeyondEndOfFile
                ? $"Host access at guest_memfd offset 0x{fileOffset:X} (+{length}) is beyond the file size 0x{fileSize:X}: the kernel would raise SIGBUS"
                : $"Host access at guest_memfd offset 0x{fileOffset:X} (+{length}) touches a private page: the kernel would raise SIGBUS")
    {
        Fault = fault;
        FileOffset = fileOffset;
        Length = length;
    }

    /// <summary>Why the kernel would raise SIGBUS: the page is beyond the file size or private.</summary>
    public GuestMemoryFault Fault { get; }

    /// <summary>The first faulting byte's offset in the guest_memfd file.</summary>
    public ulong FileOffset { get; }

    /// <summary>The length in bytes of the refused access.</summary>
    public ulong Length { get; }
}

/// <summary>KVM_SET_MEMORY_ATTRIBUTES2 failed; <see cref="ErrorOffset"/> is the kernel's error_offset.</summary>
public sealed class MemoryAttributesException : KvmException
{
    /// <summary>
    /// Creates the exception from the kernel's errno, the request text and the error_offset it wrote back.
    /// </summary>
    public MemoryAttributesException(int errno, string request, ulong errorOffset)
        : base("KVM_SET_MEMORY_ATTRIBUTES2", errno, request,
            $"KVM_SET_MEMORY_ATTRIBUTES2 failed with {ErrnoInfo.NameOf(errno)} ({ErrnoInfo.Describe(errno)}) at offset 0x{errorOffset:X}: {request}")
    {
        ErrorOffset = errorOffset;
    }

    /// <summary>The file offset of the page that could not be converted (written back by the kernel).</summary>
    public ulong ErrorOffset { get; }
}
