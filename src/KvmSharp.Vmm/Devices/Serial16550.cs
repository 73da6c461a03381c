// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Devices;

/// <summary>
/// The guest console: just enough of a 16550 UART (Firecracker devices/legacy/serial.rs, kvmtool hw/serial.c) for a
/// guest's putchar. A write to THR (offset 0) is a byte of output; LSR (offset 5) always reads "transmitter empty",
/// so a guest that polls it before writing never waits. Other registers read 0 and ignore writes. Output is kept
/// (up to <see cref="Capacity"/> bytes per call; more is counted but dropped) and, when a sink is given, streamed to it.
/// </summary>
public sealed class Serial16550 : IBusDevice
{
    /// <summary>Offset of the transmitter holding register: a byte written here is console output.</summary>
    public const ulong Thr = 0;
    /// <summary>Offset of the line status register: always reads <see cref="LsrIdle"/>.</summary>
    public const ulong Lsr = 5;

    /// <summary>LSR: THR empty (bit 5) and transmitter empty (bit 6).</summary>
    public const byte LsrIdle = 0x60;

    private readonly Stream? _sink;
    private readonly MemoryStream _captured = new();

    /// <summary>
    /// A console that keeps up to <paramref name="capacity"/> bytes per call and streams every byte to
    /// <paramref name="sink"/> when given.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is negative.</exception>
    public Serial16550(int capacity, Stream? sink = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        Capacity = capacity;
        _sink = sink;
    }

    /// <summary>The first port of the UART, <see cref="Ports.Com1"/> (0x3F8).</summary>
    public static ulong Base => Ports.Com1;

    /// <summary>
    /// How many output bytes are kept until <see cref="Clear"/>; later ones are counted and streamed but dropped.
    /// </summary>
    public int Capacity { get; }

    /// <summary>Bytes written since the last <see cref="Clear"/> (including dropped ones).</summary>
    public long Written { get; private set; }

    /// <summary>True when more bytes were written than <see cref="Capacity"/> kept.</summary>
    public bool Truncated => Written > _captured.Length;

    /// <summary>An IN: LSR reads <see cref="LsrIdle"/>, every other register 0.</summary>
    public void Read(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (offset == Lsr && data.Length > 0) data[0] = LsrIdle;
    }

    /// <summary>An OUT: to THR, its low byte is output; writes to other registers are ignored.</summary>
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        // Only THR carries output, and only its low byte (a wider OUT to 0x3F8 still writes one character).
        if (offset != Thr || data.IsEmpty) return;
        // Written, not _captured.Length: a field of this object, no call into the stream once the capture is full.
        if (Written++ < Capacity) _captured.WriteByte(data[0]);
        _sink?.WriteByte(data[0]);
    }

    /// <summary>
    /// Bytes printed in one piece (the console-write port, <see cref="ConsoleWriteDevice"/>): kept and streamed as if
    /// written to THR one by one.
    /// </summary>
    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        long room = Math.Max(0, Capacity - Written);
        if (room > 0) _captured.Write(bytes[..(int)Math.Min(room, bytes.Length)]);
        Written += bytes.Length;
        _sink?.Write(bytes);
    }

    /// <summary>The captured output, decoded as UTF-8.</summary>
    public string Text => System.Text.Encoding.UTF8.GetString(_captured.GetBuffer(), 0, (int)_captured.Length);

    /// <summary>Drops the kept output and resets <see cref="Written"/> (done before every call).</summary>
    public void Clear()
    {
        _captured.SetLength(0);
        Written = 0;
    }
}
