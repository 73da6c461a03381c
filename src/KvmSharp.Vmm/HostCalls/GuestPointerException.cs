// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.HostCalls;

/// <summary>
/// A host function asked for guest memory at a guest-supplied pointer that is outside guest memory or on a page the
/// guest cannot map (the null and stack guard pages). Left uncaught in a host function, it does not end the call: the
/// guest gets <see cref="HostCallStatus.BadPointer"/> and runs on.
/// </summary>
public sealed class GuestPointerException : MicroVmException
{
    public GuestPointerException()
    {
    }

    public GuestPointerException(string message)
        : base(message)
    {
    }

    public GuestPointerException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public GuestPointerException(ulong address, ulong length, string why)
        : base($"guest range [0x{address:X}, +0x{length:X}) {why}")
    {
        Address = address;
        Length = length;
    }

    public ulong Address { get; }

    public ulong Length { get; }
}
