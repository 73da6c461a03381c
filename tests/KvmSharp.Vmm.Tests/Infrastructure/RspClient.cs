// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>
/// A tiny GDB remote-protocol client for the stub's tests: the framing, checksums and acknowledgments of gdb/doc
/// "Overview", written apart from the stub's own packet layer so a shared mistake cannot hide. Every read has a 30 s
/// limit (a stub that never answers fails the test instead of hanging it).
/// </summary>
public sealed class RspClient : IDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RspClient(TcpClient tcp)
    {
        _tcp = tcp;
        _tcp.NoDelay = true;
        _stream = tcp.GetStream();
        _stream.ReadTimeout = 30_000;
    }

    /// <summary>True after <see cref="StartNoAckMode"/>.</summary>
    public bool NoAck { get; private set; }

    public static RspClient Connect(IPEndPoint endpoint)
    {
        var tcp = new TcpClient();
        tcp.Connect(endpoint);
        return new RspClient(tcp);
    }

    /// <summary>The frame of <paramref name="payload"/>: $payload#checksum (no escaping needed for the tests' packets).</summary>
    public static string Frame(string payload)
    {
        byte sum = 0;
        foreach (char c in payload) sum += (byte)c;
        return $"${payload}#{sum:x2}";
    }

    /// <summary>Sends <paramref name="text"/> as it is (a frame, a bad one, or an ack).</summary>
    public void SendRaw(string text)
    {
        byte[] bytes = Encoding.Latin1.GetBytes(text);
        _stream.Write(bytes);
    }

    /// <summary>The next byte the stub sends.</summary>
    public char ReadByte()
    {
        int b = _stream.ReadByte();
        if (b < 0) throw new IOException("the stub closed the connection");
        return (char)b;
    }

    /// <summary>Sends a packet; in ack mode expects its '+'.</summary>
    public void Send(string payload)
    {
        SendRaw(Frame(payload));
        if (!NoAck) Assert.Equal('+', ReadByte());
    }

    /// <summary>Reads one packet (checking its checksum, unescaping it) and acks it in ack mode.</summary>
    public string Receive()
    {
        char c;
        do c = ReadByte(); while (c != '$');
        var payload = new StringBuilder();
        byte sum = 0;
        bool escaped = false;
        while (true)
        {
            c = ReadByte();
            if (c == '#' && !escaped) break;
            sum += (byte)c;
            if (escaped)
            {
                payload.Append((char)(c ^ 0x20));
                escaped = false;
            }
            else if (c == '}') escaped = true;
            else payload.Append(c);
        }
        string checksum = $"{ReadByte()}{ReadByte()}";
        Assert.Equal(sum, byte.Parse(checksum, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        if (!NoAck) SendRaw("+");
        return payload.ToString();
    }

    /// <summary>A packet and its reply.</summary>
    public string Request(string payload)
    {
        Send(payload);
        return Receive();
    }

    /// <summary>QStartNoAckMode: the OK still acked, none after it.</summary>
    public void StartNoAckMode()
    {
        Assert.Equal("OK", Request("QStartNoAckMode"));
        NoAck = true;
    }

    /// <summary>A little-endian value as the protocol's hex.</summary>
    public static string Le64(ulong value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        return Convert.ToHexStringLower(bytes);
    }

    /// <summary>A little-endian value from the protocol's hex (the first 8 bytes).</summary>
    public static ulong FromLe64(string hex) => BinaryPrimitives.ReadUInt64LittleEndian(Convert.FromHexString(hex[..16]));

    /// <summary>
    /// The PC from a T05 stop reply's expedited register <paramref name="pcRegister"/> (x86-64 RIP 16: "T05" …
    /// "10:xxxxxxxxxxxxxxxx;"; aarch64 pc 32).
    /// </summary>
    public static ulong StopRip(string reply, int pcRegister = 16)
    {
        Assert.StartsWith("T05", reply, StringComparison.Ordinal);
        int at = reply.IndexOf($"{pcRegister:x2}:", StringComparison.Ordinal);
        Assert.True(at > 0, reply);
        return FromLe64(reply.Substring(at + 3, 16));
    }

    /// <summary>Register <paramref name="n"/> read with p.</summary>
    public ulong Register(int n) => FromLe64(Request($"p{n:x}"));

    public void Dispose()
    {
        _stream.Dispose();
        _tcp.Dispose();
    }
}
