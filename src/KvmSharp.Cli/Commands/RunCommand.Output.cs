// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using System.Text.Json;
using KvmSharp.Kernel;
using KvmSharp.Vmm;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// What a run prints: the guest's console as it arrives (<see cref="TextWriterStream"/>), the outcome line
/// (<see cref="Describe"/>), the instruction trace, the --stats counters, and the --json object with all of them.
/// </summary>
public static partial class RunCommand
{
    /// <summary>
    /// The text form after the console: the run's outcome line and trace, a lazy restore's page count, and with --stats
    /// the vCPU's non-zero statistics.
    /// </summary>
    private static void WriteText(TextWriter output, CallResult result, string? restore, long lazyPages, List<(string Name, ulong Value)>? vcpuStats)
    {
        if (result.Console.Length > 0 && !result.Console.EndsWith('\n')) output.WriteLine();
        output.WriteLine(Describe(result));
        WriteTrace(output, result.Trace);
        if (restore == "lazy") output.WriteLine($"restore: lazy, {lazyPages} page{(lazyPages == 1 ? "" : "s")} written on first touch");
        if (vcpuStats is not null)
        {
            output.WriteLine("vcpu stats:" + (vcpuStats.Count == 0 ? " all 0" : ""));
            foreach (var (name, value) in vcpuStats) output.WriteLine($"  {name} {value}");
        }
    }

    /// <summary>
    /// The micro-VM vCPU's statistics whose first value is not 0 (histograms by their first bucket alone), in file order;
    /// a kernel without KVM_CAP_BINARY_STATS_FD is an UnavailableException naming it.
    /// </summary>
    private static List<(string Name, ulong Value)> ReadVcpuStats(MicroVm vm)
    {
        try
        {
            using var stats = vm.OpenVcpuStatistics();
            var snapshot = stats.Read();
            return [.. stats.Descriptors.Where(d => snapshot[d] != 0).Select(d => (d.Name, snapshot[d]))];
        }
        catch (KvmCapabilityException e)
        {
            throw new UnavailableException($"--stats: {e.Message}");
        }
    }

    /// <summary>The --json name of a backing: "guest_memfd" or "host".</summary>
    public static string MemoryName(GuestMemoryBacking backing) => backing switch
    {
        GuestMemoryBacking.GuestMemfd => "guest_memfd",
        GuestMemoryBacking.HostMemory => "host",
        _ => backing.ToString(),
    };

    /// <summary>"exit status 0, result 5050 (rip 0x6012, 3 exits, 0.21 ms)".</summary>
    public static string Describe(CallResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder(result.Outcome.Name());
        if (result.Outcome == GuestOutcome.Exit) text.Append(CultureInfo.InvariantCulture, $" status {result.Status}");
        if (result.Value is ulong value) text.Append(CultureInfo.InvariantCulture, $", result {value}");
        if (result.Outcome != GuestOutcome.Exit) text.Append(": ").Append(result.Detail);
        text.Append(CultureInfo.InvariantCulture, $" (rip 0x{result.Rip:X}, {result.Exits} exits, {result.Elapsed.TotalMilliseconds:F2} ms)");
        return text.ToString();
    }

    /// <summary>
    /// The instruction trace of a call, one line per instruction ("0x100000  mov eax,1"), and a last line when the limit
    /// cut it short; nothing without a trace.
    /// </summary>
    public static void WriteTrace(TextWriter output, GuestTrace? trace)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (trace is null) return;
        foreach (TracedInstruction instruction in trace.Instructions)
        {
            output.Write(instruction.ToString());
            output.WriteLine(instruction.RaisedException ? "  ; raised an exception" : "");
        }
        if (trace.Truncated)
            output.WriteLine($"(trace limit {trace.Limit} reached: single-stepping switched off, the rest of the call ran untraced)");
    }

    /// <summary>
    /// The run's JSON object; <paramref name="noDirectMap"/>: the guest_memfd left the kernel's direct map
    /// (<c>"direct_map":"removed"</c>, a proposal only the emulated kernel has; else <c>"kept"</c>). A run from a snapshot
    /// adds <paramref name="restore"/> (<c>"restore":"eager"</c> or <c>"lazy"</c>) and <paramref name="lazyPagesPopulated"/>.
    /// An arm64 micro-VM adds <paramref name="branchProtection"/>: <c>"bti_guarded"</c> (MicroVm.BranchTargetsGuarded)
    /// and <c>"return_addresses_signed"</c> (MicroVm.ReturnAddressesSigned).
    /// </summary>
    public static void WriteJson(TextWriter output, CallResult result, GuestMemoryBacking memory, bool noDirectMap = false,
        IReadOnlyList<(string Name, ulong Value)>? vcpuStats = null, string? restore = null, long lazyPagesPopulated = 0,
        (bool BtiGuarded, bool PacSigned)? branchProtection = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(result);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("outcome", result.Outcome.Name());
            w.WriteNumber("status", result.Status);
            if (result.Value is ulong value) w.WriteNumber("result", value);
            else w.WriteNull("result");
            w.WriteString("console", result.Console);
            w.WriteNumber("rip", result.Rip);
            w.WriteNumber("exits", result.Exits);
            w.WriteNumber("elapsed_us", Math.Round(result.Elapsed.TotalMicroseconds, 1));
            w.WriteString("detail", result.Detail);
            if (result.Port is ushort port) w.WriteNumber("port", port);
            if (result.Exception is { } exception)
            {
                // Only what the exception has: no error code for #DE or #UD, CR2 for #PF alone.
                w.WriteNumber("vector", exception.Vector);
                if (exception.ErrorCode is ulong errorCode) w.WriteNumber("error_code", errorCode);
                if (exception.Cr2 is ulong cr2) w.WriteNumber("cr2", cr2);
            }
            w.WriteNumber("host_calls", result.HostCalls);
            w.WriteNumber("conversions", result.Conversions);
            w.WriteString("memory", MemoryName(memory));
            w.WriteString("direct_map", noDirectMap ? "removed" : "kept");
            if (branchProtection is var (guarded, signed))
            {
                w.WriteBoolean("bti_guarded", guarded);
                w.WriteBoolean("return_addresses_signed", signed);
            }
            if (restore is not null)
            {
                // A run from a snapshot: how it was restored, and the pages a lazy restore wrote on first touch.
                w.WriteString("restore", restore);
                w.WriteNumber("lazy_pages_populated", lazyPagesPopulated);
            }
            if (result.Trace is { } trace)
            {
                w.WriteStartArray("trace");
                foreach (TracedInstruction instruction in trace.Instructions)
                {
                    w.WriteStartObject();
                    w.WriteNumber("rip", instruction.Rip);
                    w.WriteString("bytes", Convert.ToHexStringLower(instruction.Bytes.Span));
                    w.WriteString("text", instruction.Disassembly);
                    if (instruction.RaisedException) w.WriteBoolean("raised_exception", true);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteBoolean("trace_truncated", trace.Truncated);
            }
            if (vcpuStats is not null)
            {
                // --stats: the non-zero first values of the vCPU's statistics, by name.
                w.WriteStartObject("vcpu_stats");
                foreach (var (name, count) in vcpuStats) w.WriteNumber(name, count);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        output.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    /// <summary>Console bytes from the guest, decoded as UTF-8 and written to a TextWriter as they arrive.</summary>
    private sealed class TextWriterStream(TextWriter writer) : Stream
    {
        private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
        private readonly char[] _chars = new char[8];

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            foreach (byte b in buffer)
            {
                int n = _decoder.GetChars([b], _chars, flush: false);
                if (n > 0) writer.Write(_chars, 0, n);
                if (b == (byte)'\n') writer.Flush();
            }
        }

        public override void WriteByte(byte value) => Write([value]);

        public override void Flush() => writer.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
