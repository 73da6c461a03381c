// SPDX-License-Identifier: MIT
using System.Net.Sockets;
using System.Text;

namespace KvmSharp.Vmm.Debugging;

/// <summary>What <see cref="RspConnection.Receive"/> got.</summary>
internal enum RspReceive
{
    /// <summary>A packet with a good checksum (<see cref="RspConnection.Packet"/>).</summary>
    Packet,
    /// <summary>The debugger's interrupt byte (0x03, Ctrl-C) outside a packet.</summary>
    Interrupt,
    /// <summary>The peer closed the connection, or it failed.</summary>
    Closed,
    /// <summary>The wait was given up: the abort check said so (a kick of the call).</summary>
    Aborted,
}

/// <summary>
/// The packet layer of the GDB remote serial protocol (gdb/doc: "Overview", "Packet Acknowledgment", "Binary Data"):
/// <c>$payload#cs</c> framing with a modulo-256 checksum as two lowercase hex digits, <c>}</c>-escaping (byte XOR
/// 0x20) of <c>$ # } *</c> both ways, <c>+</c>/<c>-</c> acknowledgments until <see cref="NoAck"/> (after
/// QStartNoAckMode), and the out-of-band 0x03 interrupt. A packet with a bad checksum or broken framing is nacked
/// (<c>-</c>, in ack mode) and skipped; it never ends the connection.
/// </summary>
internal sealed class RspConnection : IDisposable
{
    /// <summary>The largest payload accepted and announced (qSupported PacketSize, in hex).</summary>
    public const int MaxPacket = 0x4000;

    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[4096];
    private int _start, _end;
    private readonly List<byte> _packet = new(256);
    private readonly Func<bool> _abort;

    /// <param name="socket">The accepted connection (owned: disposed with this).</param>
    /// <param name="abort">Asked about every 50 ms while waiting for bytes; true gives the wait up.</param>
    public RspConnection(Socket socket, Func<bool> abort)
    {
        _socket = socket;
        _socket.NoDelay = true;
        _abort = abort;
    }

    /// <summary>The payload of the last packet received (unescaped).</summary>
    public byte[] Packet { get; private set; } = [];

    /// <summary>True after QStartNoAckMode: no acknowledgments sent or expected.</summary>
    public bool NoAck { get; set; }

    /// <summary>Waits for the next packet (or interrupt byte), acking it in ack mode.</summary>
    public RspReceive Receive()
    {
        while (true)
        {
            int b = NextByte();
            if (b < 0) return b == -2 ? RspReceive.Aborted : RspReceive.Closed;
            if (b == 0x03) return RspReceive.Interrupt;
            if (b != '$') continue; // '+', '-' (ours needs no resend: we only send after a packet) and noise between packets
            _packet.Clear();
            byte sum = 0;
            bool escaped = false, broken = false;
            while (true)
            {
                b = NextByte();
                if (b < 0) return b == -2 ? RspReceive.Aborted : RspReceive.Closed;
                if (b == '#' && !escaped) break;
                if (b == '$')
                {
                    // A new packet started inside this one: the first was broken.
                    broken = true;
                    break;
                }
                sum += (byte)b;
                if (_packet.Count > MaxPacket) broken = true;
                if (escaped)
                {
                    _packet.Add((byte)(b ^ 0x20));
                    escaped = false;
                }
                else if (b == '}') escaped = true;
                else _packet.Add((byte)b);
            }
            if (broken)
            {
                Nack();
                if (b == '$') _start--; // read the new packet next
                continue;
            }
            int hi = NextByte(), lo = hi < 0 ? hi : NextByte();
            if (lo < 0) return lo == -2 ? RspReceive.Aborted : RspReceive.Closed;
            if (Hex.Digit((char)hi) is not int h || Hex.Digit((char)lo) is not int l || (byte)(h << 4 | l) != sum)
            {
                Nack();
                continue;
            }
            if (!NoAck) SendRaw("+"u8);
            Packet = [.. _packet];
            return RspReceive.Packet;
        }
    }

    private void Nack()
    {
        if (!NoAck) SendRaw("-"u8);
    }

    /// <summary>
    /// Sends one packet with <paramref name="payload"/> (escaped as needed); in ack mode waits for the <c>+</c> and
    /// resends on a <c>-</c> (at most 8 times). False when the connection is gone.
    /// </summary>
    public bool Send(ReadOnlySpan<byte> payload)
    {
        var frame = new List<byte>(payload.Length + 8) { (byte)'$' };
        byte sum = 0;
        foreach (byte c in payload)
        {
            if (c is (byte)'$' or (byte)'#' or (byte)'}' or (byte)'*')
            {
                frame.Add((byte)'}');
                frame.Add((byte)(c ^ 0x20));
                sum += (byte)'}';
                sum += (byte)(c ^ 0x20);
            }
            else
            {
                frame.Add(c);
                sum += c;
            }
        }
        frame.Add((byte)'#');
        frame.Add((byte)Hex.Lower[sum >> 4]);
        frame.Add((byte)Hex.Lower[sum & 0xF]);
        byte[] bytes = [.. frame];
        for (int attempt = 0; attempt < 8; attempt++)
        {
            if (!SendRaw(bytes)) return false;
            if (NoAck) return true;
            while (true)
            {
                int b = NextByte();
                if (b < 0) return false;
                if (b == '+') return true;
                if (b == '-') break; // resend
                if (b == '$')
                {
                    // The peer did not wait for our ack (it sent a packet): take it as acked, read that packet next.
                    _start--;
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary><see cref="Send(ReadOnlySpan{byte})"/> of an ASCII string.</summary>
    public bool Send(string payload) => Send(Encoding.Latin1.GetBytes(payload));

    private bool SendRaw(ReadOnlySpan<byte> bytes)
    {
        try
        {
            while (!bytes.IsEmpty)
            {
                int n = _socket.Send(bytes);
                if (n <= 0) return false;
                bytes = bytes[n..];
            }
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// While the guest runs (no packet exchange in progress; one reader at a time): true when gdb sent its interrupt
    /// byte (0x03), consumed; false after <paramref name="microseconds"/> without one. Other bytes stay buffered for
    /// <see cref="Receive"/>.
    /// </summary>
    public bool PollInterrupt(int microseconds)
    {
        if (_start >= _end)
        {
            try
            {
                if (!_socket.Poll(microseconds, SelectMode.SelectRead)) return false;
                int n = _socket.Receive(_buffer);
                if (n <= 0)
                {
                    Thread.Sleep(microseconds / 1000); // closed: Receive says so once the guest stops
                    return false;
                }
                _start = 0;
                _end = n;
            }
            catch (SocketException)
            {
                return false;
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
        }
        if (_buffer[_start] == 0x03)
        {
            _start++;
            return true;
        }
        Thread.Sleep(microseconds / 1000); // something else came early: left for Receive
        return false;
    }

    /// <summary>The next byte; -1 when the connection closed or failed, -2 when the abort check gave the wait up.</summary>
    private int NextByte()
    {
        if (_start < _end) return _buffer[_start++];
        try
        {
            while (!_socket.Poll(50_000, SelectMode.SelectRead))
            {
                if (_abort()) return -2;
            }
            int n = _socket.Receive(_buffer);
            if (n <= 0) return -1;
            _start = 0;
            _end = n;
            return _buffer[_start++];
        }
        catch (SocketException)
        {
            return -1;
        }
        catch (ObjectDisposedException)
        {
            return -1;
        }
    }

    public void Dispose()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Already reset by the peer: closing is all that is left.
        }
        catch (ObjectDisposedException)
        {
            // Closed already.
        }
        _socket.Dispose();
    }
}

/// <summary>Hex digits of the protocol: lowercase out, either case in; multi-byte values in target (little-endian) order.</summary>
internal static class Hex
{
    public const string Lower = "0123456789abcdef";

    public static int? Digit(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => null,
    };

    /// <summary>Bytes as hex pairs.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length * 2);
        foreach (byte b in bytes) sb.Append(Lower[b >> 4]).Append(Lower[b & 0xF]);
        return sb.ToString();
    }

    /// <summary>Hex pairs as bytes, or null when <paramref name="text"/> is not an even run of hex digits.</summary>
    public static byte[]? Decode(ReadOnlySpan<char> text)
    {
        if (text.Length % 2 != 0) return null;
        var bytes = new byte[text.Length / 2];
        for (int i = 0; i < bytes.Length; i++)
        {
            if (Digit(text[2 * i]) is not int h || Digit(text[2 * i + 1]) is not int l) return null;
            bytes[i] = (byte)(h << 4 | l);
        }
        return bytes;
    }

    /// <summary>A big-endian hex number (addresses, lengths, register numbers), or null when empty, too long or not hex.</summary>
    public static ulong? Number(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty || text.Length > 16) return null;
        ulong value = 0;
        foreach (char c in text)
        {
            if (Digit(c) is not int d) return null;
            value = value << 4 | (uint)d;
        }
        return value;
    }
}
