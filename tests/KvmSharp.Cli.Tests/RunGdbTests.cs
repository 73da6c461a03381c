// SPDX-License-Identifier: MIT
using System.Net.Sockets;
using System.Text;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp run … --gdb HOST:PORT</c>: one line "waiting for gdb on HOST:PORT" on stderr (the port resolved when 0
/// was asked for), the run waits for gdb before the guest's first instruction, and ends as usual once gdb continues it.
/// </summary>
public sealed class RunGdbTests
{
    /// <summary>A stderr that hands over the "waiting for gdb" line as soon as it is written.</summary>
    private sealed class WatchedWriter : StringWriter
    {
        public TaskCompletionSource<string> Waiting { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void WriteLine(string? value)
        {
            lock (this) base.WriteLine(value);
            if (value?.StartsWith("waiting for gdb on ", StringComparison.Ordinal) == true) Waiting.TrySetResult(value);
        }

        public override string ToString()
        {
            lock (this) return base.ToString();
        }
    }

    [SkippableTheory]
    [InlineData("emulated")]
    [InlineData("linux")]
    public void Run_with_gdb_waits_for_gdb_and_ends_when_it_continues(string kernel)
    {
        if (kernel == "linux") Skip.If(KvmHost.UnavailableReason is not null, KvmHost.UnavailableReason);
        string[] args = kernel == "emulated"
            ? ["run", "hello", "--gdb", "127.0.0.1:0", "--kernel", "emulated", "--arch", "x86_64", "--timeout", "20s"]
            : ["run", "hello", "--gdb", "127.0.0.1:0", "--memory", "host"];
        using var stdout = new StringWriter();
        using var stderr = new WatchedWriter();
        Task<int> run = Task.Run(() => CliApp.Run(args, stdout, stderr));
        Assert.True(stderr.Waiting.Task.Wait(TimeSpan.FromSeconds(60)), "no 'waiting for gdb' line: " + stderr);
        string line = stderr.Waiting.Task.Result;
        string endpoint = line["waiting for gdb on ".Length..];
        Assert.StartsWith("127.0.0.1:", endpoint, StringComparison.Ordinal);
        int port = int.Parse(endpoint["127.0.0.1:".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.NotEqual(0, port);
        // Nothing of the guest ran yet: its console is empty until gdb continues it.
        Assert.False(run.IsCompleted);
        Assert.Equal("", stdout.ToString());

        using (var tcp = new TcpClient("127.0.0.1", port))
        {
            NetworkStream stream = tcp.GetStream();
            stream.ReadTimeout = 30_000;
            Assert.StartsWith("T05", Exchange(stream, "?"), StringComparison.Ordinal);
            Assert.Equal("W00", Exchange(stream, "c"));
        }
        Assert.True(run.Wait(TimeSpan.FromSeconds(60)), "the run did not end");
        Assert.Equal(0, run.Result);
        Assert.Contains("Hello from a KvmSharp micro-VM!", stdout.ToString(), StringComparison.Ordinal);
        Assert.Single(stderr.ToString().Split('\n'), l => l.StartsWith("waiting for gdb on ", StringComparison.Ordinal));
    }

    [Fact]
    public void Run_with_a_gdb_value_that_is_not_host_and_port_is_a_usage_error()
    {
        var run = CliRun.Of("run", "hello", "--gdb", "1234", "--kernel", "emulated", "--arch", "x86_64");
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("--gdb: '1234' is not HOST:PORT", run.Stderr, StringComparison.Ordinal);
    }

    /// <summary>One packet in ack mode and its reply (gdb/doc "Overview": $payload#checksum, '+' acks).</summary>
    private static string Exchange(NetworkStream stream, string payload)
    {
        byte sum = 0;
        foreach (char c in payload) sum += (byte)c;
        stream.Write(Encoding.ASCII.GetBytes($"${payload}#{sum:x2}"));
        Assert.Equal('+', (char)stream.ReadByte());
        int b;
        while ((b = stream.ReadByte()) != '$') Assert.NotEqual(-1, b);
        var reply = new StringBuilder();
        while ((b = stream.ReadByte()) != '#')
        {
            Assert.NotEqual(-1, b);
            reply.Append((char)b);
        }
        stream.ReadByte();
        stream.ReadByte();
        stream.WriteByte((byte)'+');
        return reply.ToString();
    }
}
