// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace KvmSharp.Cli.Tests;

/// <summary><c>--trace</c>: every kernel call on stderr, strace-style, without changing what the command prints.</summary>
public sealed class TraceOptionTests
{
    [Fact]
    public void Run_with_trace_prints_the_guest_memfd_calls_and_the_exits_on_stderr_and_the_same_json_on_stdout()
    {
        var traced = CliRun.Of("run", "sum", "--json", "--kernel", "emulated", "--arch", "x86_64", "--trace");
        var plain = CliRun.Of("run", "sum", "--json", "--kernel", "emulated", "--arch", "x86_64");
        Assert.Equal(0, traced.ExitCode);
        using (var a = JsonDocument.Parse(traced.Stdout))
        using (var b = JsonDocument.Parse(plain.Stdout))
        {
            Assert.Equal(b.RootElement.GetProperty("result").GetUInt64(), a.RootElement.GetProperty("result").GetUInt64());
            Assert.Equal(b.RootElement.GetProperty("memory").GetString(), a.RootElement.GetProperty("memory").GetString());
        }
        string[] lines = traced.StderrLines;
        Assert.Contains(lines, l => l.StartsWith("ioctl(vm#1, KVM_CREATE_GUEST_MEMFD, {size=0x200000, flags=GUEST_MEMFD_FLAG_MMAP|GUEST_MEMFD_FLAG_INIT_SHARED}) = ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("ioctl(vm#1, KVM_SET_USER_MEMORY_REGION2, {slot=0, flags=KVM_MEM_GUEST_MEMFD", StringComparison.Ordinal)
            && l.Contains("guest_memfd=gmem#1}", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("ioctl(vcpu#1, KVM_RUN, 0) = 0 KVM_EXIT_IO", StringComparison.Ordinal));
        Assert.Empty(plain.StderrLines);
    }

    [KvmFact]
    public void Caps_with_trace_shows_each_capability_query()
    {
        var run = CliRun.Of("caps", "--json", "--trace");
        Assert.Equal(0, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);   // stdout is still only the JSON object
        Assert.Contains(run.StderrLines, l => l.StartsWith("ioctl(kvm#1, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS) = ", StringComparison.Ordinal));
        Assert.Contains(run.StderrLines, l => l.StartsWith("ioctl(vm#1, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS) = ", StringComparison.Ordinal));
    }
}
