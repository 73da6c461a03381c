// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>
/// A host-side misuse or setup failure of the micro-VM layer (bad options, unknown function name, calling a faulted
/// VM). Guest misbehaviour is never an exception: it is a <see cref="CallResult"/> outcome. Kernel refusals stay
/// <see cref="KvmSharp.Kernel.KvmException"/>.
/// </summary>
public class MicroVmException : Exception
{
    public MicroVmException()
    {
    }

    public MicroVmException(string message)
        : base(message)
    {
    }

    public MicroVmException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
