// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>
/// A host-side misuse or setup failure of the micro-VM layer (bad options, unknown function name, calling a faulted
/// VM). Guest misbehaviour is never an exception: it is a <see cref="CallResult"/> outcome. Kernel refusals stay
/// <see cref="KvmSharp.Kernel.KvmException"/>.
/// </summary>
public class MicroVmException : Exception
{
    /// <summary>Creates the exception with the default message.</summary>
    public MicroVmException()
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public MicroVmException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/> and its cause <paramref name="inner"/>.</summary>
    public MicroVmException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
