// SPDX-License-Identifier: MIT
namespace KvmSharp.Kernel;

/// <summary>
/// A kernel call failed. Carries the raw errno, its name, the operation (ioctl or syscall name) and what was asked,
/// so a caller can branch on <see cref="Errno"/> without parsing text.
/// </summary>
public class KvmException : IOException
{
    public KvmException(string operation, int errno, string request)
        : this(operation, errno, request, $"{operation} failed with {ErrnoInfo.NameOf(errno)} ({ErrnoInfo.Describe(errno)}): {request}")
    {
    }

    public KvmException(string operation, int errno, string request, string message, Exception? inner = null)
        : base(message, inner)
    {
        Operation = operation;
        ErrnoValue = errno;
        Request = request;
        HResult = errno;
    }

    /// <summary>The syscall or ioctl that failed, by its kernel name (e.g. KVM_CREATE_GUEST_MEMFD).</summary>
    public string Operation { get; }

    /// <summary>The raw errno value.</summary>
    public int ErrnoValue { get; }

    /// <summary>The errno as an enum value.</summary>
    public Errno Errno => (Errno)ErrnoValue;

    /// <summary>The errno's name, e.g. "EINVAL".</summary>
    public string ErrnoName => ErrnoInfo.NameOf(ErrnoValue);

    /// <summary>What was asked, e.g. "size=4097 flags=0x1".</summary>
    public string Request { get; }
}

/// <summary>The operation needs a capability the kernel does not report (the kernel answered with an errno).</summary>
public sealed class KvmCapabilityException : KvmException
{
    public KvmCapabilityException(string operation, int errno, string request, string capability, long reported)
        : base(operation, errno, request,
            $"{operation} is not available: {capability} = 0x{reported:X} on this kernel " +
            $"(the kernel answered {ErrnoInfo.NameOf(errno)}): {request}")
    {
        Capability = capability;
        Reported = reported;
    }

    public string Capability { get; }

    public long Reported { get; }
}
