// SPDX-License-Identifier: MIT
using System.Text.Json;
using KvmSharp.Cli.Commands;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Cli.Tests;

/// <summary>The <c>run</c> verb, through the whole command line in process.</summary>
public sealed class RunCommandTests
{
    private static (int Code, string Output) Invoke(params string[] args)
    {
        var run = CliRun.Of(["run", .. args]);
        return (run.ExitCode, run.Stdout);
    }

    [KvmFact]
    public void Run_hello_streams_the_console_then_the_outcome()
    {
        var (code, output) = Invoke("hello");
        Assert.Equal(0, code);
        Assert.StartsWith(Hello.Greeting, output, StringComparison.Ordinal);
        Assert.Contains("exit status 0", output, StringComparison.Ordinal);
    }

    [KvmFact]
    public void Run_sum_json_has_outcome_status_result_console_and_rip()
    {
        var (code, output) = Invoke("sum", "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal("exit", root.GetProperty("outcome").GetString());
        Assert.Equal(0, root.GetProperty("status").GetInt32());
        Assert.Equal(5050UL, root.GetProperty("result").GetUInt64());
        Assert.Equal("", root.GetProperty("console").GetString());
        Assert.True(root.GetProperty("rip").GetUInt64() > 0);
    }

    [KvmFact]
    public void Exit_code_is_the_guest_status_or_125_when_it_did_not_exit()
    {
        Assert.Equal(42, Invoke("exit42").Code);
        var (code, output) = Invoke("loop", "--timeout", "100ms", "--json");
        Assert.Equal(RunCommand.GuestDidNotExit, code);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("timeout", doc.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("result").ValueKind);
        using var port = JsonDocument.Parse(Invoke("badport", "--json").Output);
        Assert.Equal("unknown_port", port.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(0x1234, port.RootElement.GetProperty("port").GetInt32());
    }

    [KvmFact]
    public void An_elf_file_runs_from_disk()
    {
        string path = Path.GetTempFileName();
        try
        {
            var p = new GuestProgram();
            var start = p.Export("_start");
            p.Place(ref start);
            p.ExitWith(3);
            File.WriteAllBytes(path, p.BuildElf(start));
            Assert.Equal(3, Invoke(path, "--mem", "4M").Code);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("2M", 2UL << 20)]
    [InlineData("2MiB", 2UL << 20)]
    [InlineData("4096k", 4UL << 20)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("2097152", 2UL << 20)]
    public void Sizes_parse(string text, ulong bytes) => Assert.Equal(bytes, RunCommand.ParseSize(text));

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("1s", 1000)]
    [InlineData("1.5s", 1500)]
    [InlineData("2m", 120_000)]
    public void Durations_parse(string text, int milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), RunCommand.ParseDuration(text));

    [Theory]
    [InlineData("--mem", "lots")]
    [InlineData("--mem", "3M")]
    [InlineData("--timeout", "-1s")]
    [InlineData("--timeout", "soon")]
    public void Bad_values_are_usage_errors(string option, string value)
    {
        var run = CliRun.Of("run", "hello", option, value);
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Single(run.StderrLines);
        Assert.StartsWith("kvmsharp: ", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_is_a_usage_error()
    {
        var run = CliRun.Of("run", "/nonexistent/guest.elf");
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("/nonexistent/guest.elf", run.Stderr, StringComparison.Ordinal);
    }
}
