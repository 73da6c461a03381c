// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Devices;

/// <summary>What a guest asked for through the hypercall ports.</summary>
public enum GuestRequest
{
    None,
    /// <summary>OUT to <see cref="Ports.Exit"/>: end with a status.</summary>
    Exit,
    /// <summary>OUT to <see cref="Ports.Return"/> (the return trampoline): the current call returned.</summary>
    Return,
}

/// <summary>
/// The exit and return ports. A write records the request; the run loop checks <see cref="Request"/> after every
/// port-I/O exit and stops the vCPU when one is pending. Reads return 0 (the ports are write-only).
/// </summary>
public sealed class HypercallDevice : IBusDevice
{
    public GuestRequest Request { get; private set; }

    /// <summary>The status of an <see cref="GuestRequest.Exit"/> (the OUT value, zero-extended to 32 bits).</summary>
    public uint Status { get; private set; }

    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        switch (offset + Ports.HypercallBase)
        {
            case Ports.Exit:
                Span<byte> value = stackalloc byte[4];
                value.Clear();
                data[..Math.Min(data.Length, 4)].CopyTo(value);
                Status = BinaryPrimitives.ReadUInt32LittleEndian(value);
                Request = GuestRequest.Exit;
                break;
            case Ports.Return:
                Request = GuestRequest.Return;
                break;
        }
    }

    public void Clear()
    {
        Request = GuestRequest.None;
        Status = 0;
    }
}
