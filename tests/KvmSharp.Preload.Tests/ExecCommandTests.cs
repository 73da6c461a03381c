// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>The verb itself: what it passes on, what it refuses.</summary>
public sealed class ExecCommandTests
{
    [Theory]
    [InlineData("linux")]
    [InlineData("emulated")]
    public void The_programs_exit_status_and_output_come_back(string kernel)
    {
        var run = ExecRun.Of(["--kernel", kernel], "/bin/sh", "-c", "echo out; echo err >&2; exit 7");
        Assert.Equal((7, "out\n", "err\n"), (run.ExitCode, run.Stdout, run.Stderr));
    }

    [Fact]
    public void A_program_ended_by_a_signal_exits_with_128_plus_the_signal()
    {
        var run = ExecRun.Of(["--kernel", "emulated"], "/bin/sh", "-c", "kill -TERM $$");
        Assert.Equal(128 + 15, run.ExitCode);
    }

    [Fact]
    public void A_program_that_cannot_be_started_is_a_usage_error_with_its_name()
    {
        var run = ExecRun.Of(["--kernel", "emulated"], "/nonexistent/vmm");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("/nonexistent/vmm", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Emulator_options_with_the_real_kernel_are_refused_before_anything_runs()
    {
        var run = ExecRun.Of(["--kernel", "linux", "--arch", "x86_64"], "/bin/sh", "-c", "echo ran");
        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.Contains("--arch applies only to --kernel emulated", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_program_the_verb_is_a_usage_error()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Assert.Equal(2, KvmSharp.Cli.CliApp.Run(["exec", "--kernel", "emulated"], stdout, stderr));
        Assert.Contains("PROGRAM", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_statically_linked_program_is_refused_because_the_preload_library_cannot_reach_it()
    {
        var program = CProgram.Get("vcpu_threads.c", "-pthread", "-static");
        Skip.If(program.Unavailable is not null, program.Unavailable);
        var run = ExecRun.Of(["--kernel", "emulated"], program.Executable!);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("linked statically", run.Stderr, StringComparison.Ordinal);
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public void A_program_that_never_opens_dev_kvm_never_starts_the_bridge()
    {
        // The preload library starts .NET on the first open of /dev/kvm only: a shell that does not open it runs
        // as fast as without it and sees no bridge variable read errors.
        var run = ExecRun.Of(["--kernel", "emulated"], "/bin/sh", "-c", "test -n \"$LD_PRELOAD\" && echo preloaded");
        Assert.Equal((0, "preloaded\n", ""), (run.ExitCode, run.Stdout, run.Stderr));
    }
}
