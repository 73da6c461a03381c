// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.GuestAbi;

/// <summary>The I/O ports of the host–guest ABI (GUEST-ABI.md). Any other port ends the guest as UnknownPort.</summary>
public static class Ports
{
    /// <summary>COM1, 16550-style: OUT to THR (base + 0) prints a byte; IN from LSR (base + 5) says "ready".</summary>
    public const ushort Com1 = 0x3F8;

    /// <summary>The 16550 register block is eight ports wide.</summary>
    public const ushort Com1Length = 8;

    /// <summary>OUT of a 32-bit value: the guest ends with that exit status.</summary>
    public const ushort Exit = 0x500;

    /// <summary>OUT (any size, value ignored): the current call returns; its result is CallRegion.result.</summary>
    public const ushort Return = 0x501;

    /// <summary>OUT (any size, value ignored): call the host function named in the host-call block (GUEST-ABI v2).</summary>
    public const ushort HostCall = 0x502;

    /// <summary>
    /// OUT (any size, value ignored): the VMM's exception handler reports the CPU exception described in the exception
    /// block (GUEST-ABI v4); the call ends with outcome Exception.
    /// </summary>
    public const ushort Exception = 0x503;

    /// <summary>
    /// OUT (any size, value ignored; GUEST-ABI v5): print the console_ptr/console_len buffer of the call region in one
    /// exit; the host writes back in console_len how many bytes it printed.
    /// </summary>
    public const ushort ConsoleWrite = 0x504;

    /// <summary>The first port of the hypercall device's range (<see cref="Exit"/>).</summary>
    public const ushort HypercallBase = Exit;
    /// <summary>The hypercall device's range: two ports, <see cref="Exit"/> and <see cref="Return"/>.</summary>
    public const ushort HypercallLength = 2;
}
