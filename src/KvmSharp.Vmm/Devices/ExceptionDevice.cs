// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Devices;

/// <summary>
/// The exception port (<see cref="Ports.Exception"/>): the VMM's guest-side exception handler OUTs here after it filled
/// the <see cref="ExceptionBlock"/>. The device reads the block into <see cref="Raised"/>, which the run loop turns into
/// <see cref="GuestOutcome.Exception"/>. Reads return 0.
/// </summary>
public sealed class ExceptionDevice : IBusDevice
{
    private readonly GuestMemory _memory;
    private readonly GuestArchitecture _architecture;

    /// <summary>
    /// A device that reads the <see cref="ExceptionBlock"/> from <paramref name="memory"/> when the port is written.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public ExceptionDevice(GuestMemory memory)
        : this(memory, GuestArchitecture.X86_64)
    {
    }

    /// <summary>
    /// A device that reads the <see cref="ExceptionBlock"/> as the handlers of <paramref name="architecture"/> fill it
    /// (arm64: <see cref="Arch.Arm64.Arm64Exceptions"/>).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public ExceptionDevice(GuestMemory memory, GuestArchitecture architecture)
    {
        ArgumentNullException.ThrowIfNull(memory);
        _memory = memory;
        _architecture = architecture;
    }

    /// <summary>The exception reported since the last <see cref="Clear"/>, or null.</summary>
    public GuestException? Raised { get; private set; }

    /// <summary>An IN from the port: reads 0.</summary>
    public void Read(ulong offset, Span<byte> data) => data.Clear();

    /// <summary>
    /// The handler's report: reads the exception block into <see cref="Raised"/>, unless a report is already pending.
    /// </summary>
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        // The first report of a call is the one that stopped it (a string OUT repeats the same block).
        if (Raised is not null) return;
        ReadOnlySpan<byte> block = _memory.GetSpan(ExceptionBlock.Base, ExceptionBlock.Size);
        Raised = _architecture == GuestArchitecture.Arm64 ? Arch.Arm64.Arm64Exceptions.FromBlock(block) : GuestException.FromBlock(block);
    }

    /// <summary>Forgets the pending report (done before every call).</summary>
    public void Clear() => Raised = null;
}
