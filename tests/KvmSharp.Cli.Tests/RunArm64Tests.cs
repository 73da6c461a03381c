// SPDX-License-Identifier: MIT
using System.Text.Json;
using KvmSharp.Cli.Commands;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Cli.Tests;

/// <summary><c>run … --kernel emulated --arch arm64</c>: the arm64 micro-VM and its A64 demos (GUEST-ABI.md, "arm64 micro-VMs").</summary>
public sealed class RunArm64Tests
{
    [Fact]
    public void Hello_prints_the_greeting_and_exits_0()
    {
        var run = CliRun.Of("run", "hello", "--kernel", "emulated", "--arch", "arm64");
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains(Hello.Greeting, run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Sum_json_is_exit_status_0_with_the_sum()
    {
        var run = CliRun.Of("run", "sum", "--json", "--kernel", "emulated", "--arch", "arm64");
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        using var doc = JsonDocument.Parse(run.Stdout);
        Assert.Equal("exit", doc.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(0, doc.RootElement.GetProperty("status").GetInt32());
        Assert.Equal(5050UL, doc.RootElement.GetProperty("result").GetUInt64());
    }

    [Fact]
    public void An_undefined_instruction_is_an_exception_with_the_syndrome()
    {
        var run = CliRun.Of("run", "ud", "--json", "--kernel", "emulated", "--arch", "arm64");
        Assert.Equal(RunCommand.GuestDidNotExit, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        Assert.Equal("exception", doc.RootElement.GetProperty("outcome").GetString());
        Assert.Contains("undefined instruction (EC 0x00)", doc.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Trace_instructions_single_steps_an_arm64_guest()
    {
        // arm64 micro-VMs trace with the arm64 KVM_SET_GUEST_DEBUG (Arch/Arm64/Arm64GuestDebug.cs): the PC and the A64
        // word disassembled by capstone 4 (package libcapstone4), or the word itself without it. The trampoline starts
        // by loading the call block's address into x9 (Arm64GuestCode.Trampoline).
        var run = CliRun.Of("run", "sum", "--kernel", "emulated", "--arch", "arm64", "--trace-instructions", "5");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains(A64Disassembler.IsAvailable ? "0x6000  movz x9, #0x" : "0x6000  .inst 0x", run.Stdout, StringComparison.Ordinal);
        Assert.Contains(A64Disassembler.IsAvailable ? "  ldr x16, [x9, #8]" : "  .inst 0x", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("(trace limit 5 reached", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Arch_on_the_real_kernel_is_a_usage_error()
    {
        var run = CliRun.Of("run", "hello", "--kernel", "linux", "--arch", "arm64");
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("--arch applies only to --kernel emulated", run.Stderr, StringComparison.Ordinal);
    }
}
