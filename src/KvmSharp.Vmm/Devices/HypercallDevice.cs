// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Devices;

/// <summary>What a guest asked for through the hypercall ports.</summary>
public enum GuestRequest
{
    /// <summary>No request since the last <see cref="HypercallDevice.Clear"/>.</summary>
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
    /// <summary>The request the guest made since the last <see cref="Clear"/> (the last one wins).</summary>
    public GuestRequest Request { get; private set; }

    /// <summary>The status of an <see cref="GuestRequest.Exit"/> (the OUT value, zero-extended to 32 bits).</summary>
    public uint Status { get; private set; }

    /// <summary>An IN from the ports: reads 0.</summary>
    public void Read(ulong offset, Span<byte> data) => data.Clear();

    /// <summary>
    /// An OUT: to <see cref="Ports.Exit"/> records <see cref="GuestRequest.Exit"/> and the status, to
    /// <see cref="Ports.Return"/> records <see cref="GuestRequest.Return"/>.
    /// </summary>
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

    /// <summary>Forgets the request and status (done before every call).</summary>
    public void Clear()
    {
        Request = GuestRequest.None;
        Status = 0;
    }
}
