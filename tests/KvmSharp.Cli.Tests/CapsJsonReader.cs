// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace KvmSharp.Cli.Tests;

/// <summary>Reads a <c>caps --json</c> document the way a script would.</summary>
public sealed class CapsJsonReader : IDisposable
{
    private readonly JsonDocument _doc;

    /// <summary>Parses the whole of stdout: that fails if anything but the JSON object was printed.</summary>
    public CapsJsonReader(CliRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        Assert.True(run.ExitCode == ExitCodes.Ok, $"exit code {run.ExitCode}: {run.Stderr}");
        Assert.Equal("", run.Stderr);
        _doc = JsonDocument.Parse(run.Stdout);
    }

    public JsonElement Root => _doc.RootElement;

    public string Module => Root.GetProperty("module").GetString()!;

    public string[] VmTypes => [.. Root.GetProperty("vmTypes").EnumerateArray().Select(e => e.GetString()!)];

    public string[] Devices => [.. Root.GetProperty("devices").EnumerateArray().Select(e => e.GetString()!)];

    public JsonElement Capability(string name) =>
        Assert.Single(Root.GetProperty("capabilities").EnumerateArray(), c => c.GetProperty("name").GetString() == name);

    public long System(string name) => Capability(name).GetProperty("system").GetInt64();

    public long Vm(string name) => Capability(name).GetProperty("vm").GetInt64();

    /// <summary>Every capability as "NAME number system vm", for comparing two kernels.</summary>
    public string[] Answers() =>
        [.. Root.GetProperty("capabilities").EnumerateArray().Select(c =>
            $"{c.GetProperty("name").GetString()} {c.GetProperty("number").GetInt32()} {c.GetProperty("system").GetInt64()} {c.GetProperty("vm").GetInt64()}")];

    public void Dispose() => _doc.Dispose();
}
