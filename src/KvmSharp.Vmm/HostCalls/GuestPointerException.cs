// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.HostCalls;

/// <summary>
/// A host function asked for guest memory at a guest-supplied pointer that is outside guest memory or on a page the
/// guest cannot map (the null and stack guard pages). Left uncaught in a host function, it does not end the call: the
/// guest gets <see cref="HostCallStatus.BadPointer"/> and runs on.
/// </summary>
public sealed class GuestPointerException : MicroVmException
{
    /// <summary>Creates the exception without a range (<see cref="Address"/> and <see cref="Length"/> are 0).</summary>
    public GuestPointerException()
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/> and no range.</summary>
    public GuestPointerException(string message)
        : base(message)
    {
    }

    /// <summary>
    /// Creates the exception with <paramref name="message"/>, its cause <paramref name="inner"/> and no range.
    /// </summary>
    public GuestPointerException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>
    /// Creates the exception for the guest range [<paramref name="address"/>, +<paramref name="length"/>);
    /// <paramref name="why"/> completes the message.
    /// </summary>
    public GuestPointerException(ulong address, ulong length, string why)
        : base($"guest range [0x{address:X}, +0x{length:X}) {why}")
    {
        Address = address;
        Length = length;
    }

    /// <summary>The guest address (guest-virtual = guest-physical) the function asked for.</summary>
    public ulong Address { get; }

    /// <summary>The length in bytes of the range asked for.</summary>
    public ulong Length { get; }
}
