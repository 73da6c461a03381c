// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>eventfd2(2) flags an <see cref="EventFd"/> is created with (EFD_CLOEXEC is always added).</summary>
[Flags]
public enum EventFdOptions
{
    /// <summary>A blocking counter: a read takes the whole count and waits while it is 0.</summary>
    None = 0,

    /// <summary>EFD_SEMAPHORE: a read takes 1 (and returns 1) instead of the whole count.</summary>
    Semaphore = LinuxConstants.EFD_SEMAPHORE,

    /// <summary>EFD_NONBLOCK: a read of 0, or an add that would reach 2^64 - 1, fails with EAGAIN instead of waiting.</summary>
    NonBlocking = LinuxConstants.EFD_NONBLOCK,
}
