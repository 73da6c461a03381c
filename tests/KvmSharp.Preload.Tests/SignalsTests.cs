// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>
/// CPrograms/signals.c: a program's signals and KVM_RUN — KVM_SET_SIGNAL_MASK's checks and its mask inside the run
/// (QEMU's kick: blocked in the thread, unblocked in the run, left pending for sigtimedwait), a process-wide timer
/// signal that ends a spinning guest with its handler running once KVM_RUN returned, kill(2) of the whole process
/// (taken by the one thread that does not block it, not by one of the .NET runtime's), handlers that run only once the
/// call they interrupted returned (and may use KVM themselves),
/// what sigaction reports back, and a SIGSEGV handler installed after /dev/kvm was opened. An emulated KVM_RUN is
/// .NET code no signal interrupts: the preload library (native/signals.c) keeps a signal that comes in during it,
/// kicks the run and delivers the signal again once it returned.
/// </summary>
public sealed class SignalsTests
{
    private static readonly CProgram Program = CProgram.Get("signals.c", "-pthread");

    private const string Expected = """
        ok 1 set_signal_mask_checks_its_argument
        ok 2 pending_signal_the_run_mask_unblocks_stops_the_run
        ok 3 pending_signal_the_run_mask_blocks_does_not_stop_it
        ok 4 a_null_mask_gives_the_thread_its_own_mask_back
        ok 5 a_timer_signal_stops_a_spinning_guest
        ok 6 a_signal_to_the_process_stops_the_run_of_the_thread_that_takes_it
        ok 7 a_signal_to_the_process_reaches_the_only_thread_that_takes_it
        ok 8 a_handler_runs_after_the_call_it_interrupted_and_may_use_kvm
        ok 9 sigaction_reports_the_programs_own_handler
        ok 10 a_sigsegv_handler_installed_after_open_gets_the_programs_faults
        1..10
        # totals: pass:10 fail:0 skip:0

        """;

    [KvmTheory]
    [InlineData("linux")]
    [InlineData("emulated")]
    public void Signals_stop_kvm_run_and_reach_their_handlers_as_on_the_kernel(string kernel)
    {
        Skip.If(Program.Unavailable is not null, Program.Unavailable);
        var run = ExecRun.Of(["--kernel", kernel], Program.Executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(Expected.ReplaceLineEndings("\n"), run.Stdout);
    }
}
