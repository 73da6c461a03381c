// SPDX-License-Identifier: MIT
using System.Globalization;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// The option values <c>run</c> parses itself: --gdb's HOST:PORT, --mem's size with a binary suffix and --timeout's
/// duration; a value that is not one is a UsageException naming the option.
/// </summary>
public static partial class RunCommand
{
    /// <summary>
    /// --gdb's HOST:PORT: an IP address (IPv6 in brackets) or a host name, and a port (0: any free one).
    /// </summary>
    public static System.Net.IPEndPoint ParseEndpoint(string text)
    {
        if (System.Net.IPEndPoint.TryParse(text, out System.Net.IPEndPoint? endpoint) && text.Contains(':', StringComparison.Ordinal))
            return endpoint;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ushort port))
            throw new UsageException($"--gdb: '{text}' is not HOST:PORT (e.g. 127.0.0.1:1234)");
        string host = text[..colon];
        System.Net.IPAddress[] addresses;
        try
        {
            addresses = System.Net.Dns.GetHostAddresses(host);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new UsageException($"--gdb: cannot resolve '{host}': {e.Message}");
        }
        System.Net.IPAddress address = addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            ?? addresses.FirstOrDefault() ?? throw new UsageException($"--gdb: '{host}' has no address");
        return new System.Net.IPEndPoint(address, port);
    }

    /// <summary>Bytes with an optional K/M/G suffix (binary units; "2M", "2MiB", "4096K", "2097152").</summary>
    public static ulong ParseSize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().ToUpperInvariant();
        if (t.EndsWith("IB", StringComparison.Ordinal)) t = t[..^2];
        else if (t.EndsWith('B')) t = t[..^1];
        ulong unit = t.Length > 0 ? t[^1] switch { 'K' => 1UL << 10, 'M' => 1UL << 20, 'G' => 1UL << 30, _ => 1 } : 1;
        if (unit != 1) t = t[..^1];
        if (!ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n > ulong.MaxValue / unit)
            throw new UsageException($"--mem: '{text}' is not a size (e.g. 2M, 64M, 1G)");
        return n * unit;
    }

    /// <summary>"500ms", "1s", "2m", "1.5s", or "none" for no limit.</summary>
    public static TimeSpan ParseDuration(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().ToLowerInvariant();
        if (t is "none" or "infinite") return Timeout.InfiniteTimeSpan;
        (string number, double scale) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 1e-3)
            : t.EndsWith('s') ? (t[..^1], 1) : t.EndsWith('m') ? (t[..^1], 60) : (t, 1);
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) || value <= 0 || value * scale > 86_400)
            throw new UsageException($"--timeout: '{text}' is not a positive duration (e.g. 500ms, 1s, 2m, none)");
        return TimeSpan.FromSeconds(value * scale);
    }
}
