// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>
/// CPrograms/vcpu_threads.c: two vCPU threads whose guests spin without exiting, stopped as VMMs stop them — a
/// signal to the thread (pthread_kill) whose handler sets immediate_exit. The real kernel's KVM_RUN returns EINTR on
/// the pending signal; the emulated one runs .NET code no signal interrupts, so the preload library passes the signal
/// on as a kick. Without it these KVM_RUNs would never return.
/// </summary>
public sealed class VcpuThreadsTests
{
    private static readonly CProgram Program = CProgram.Get("vcpu_threads.c", "-pthread");

    // arch/x86/kvm/x86.c vcpu_run: signal_pending → KVM_EXIT_INTR (10), -EINTR; the one OUT before the spin is an exit.
    private const string Expected = """
        vcpu 0: io exits 1, stopped by run -1 EINTR exit_reason=10
        vcpu 1: io exits 1, stopped by run -1 EINTR exit_reason=10

        """;

    [KvmTheory]
    [InlineData("linux")]
    [InlineData("emulated")]
    public void A_signal_to_a_vcpu_thread_ends_its_kvm_run_with_eintr(string kernel)
    {
        Skip.If(Program.Unavailable is not null, Program.Unavailable);
        var run = ExecRun.Of(["--kernel", kernel], Program.Executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(Expected.ReplaceLineEndings("\n"), run.Stdout);
    }
}
