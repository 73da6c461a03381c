// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// What the run loop asks a host debugger attached to one call (<see cref="RunLoop"/>; <see cref="GdbStub"/>). Each
/// method that may stop in the debugger returns null to run the guest on, or the <see cref="RunStop"/> the call ends
/// with (a kill, or a kick of the call — a timeout, cancellation or disposal — while the guest was stopped). The
/// debugger sets the vCPU's KVM_SET_GUEST_DEBUG state itself before it returns null.
/// </summary>
internal interface IGuestDebugger
{
    /// <summary>Before the call's first instruction: wait for the debugger and serve it until it resumes the guest.</summary>
    RunStop? Begin();

    /// <summary>A KVM_EXIT_DEBUG (single-step or breakpoint): stop in the debugger, or run on (a step over a breakpoint).</summary>
    RunStop? OnDebugExit(VcpuExit exit);

    /// <summary>
    /// Any other exit, handled, the loop going on: a step whose instruction completed at this exit without a step
    /// exit of its own (an OUT on this host) stops here.
    /// </summary>
    RunStop? AfterExit(VcpuExit exit);

    /// <summary>
    /// KVM_RUN returned EINTR and no kick of the call stands behind it: true when the debugger kicked the vCPU itself
    /// (gdb's interrupt, Ctrl-C) — it stopped and served gdb, <paramref name="stop"/> null to run on or the call's end —,
    /// false for a stray signal.
    /// </summary>
    bool Interrupted(out RunStop? stop);

    /// <summary>
    /// The call ended with <paramref name="stop"/>: tell the debugger (the exit status <paramref name="exitStatus"/>
    /// when it exited, the vector <paramref name="exceptionVector"/> of a reported CPU exception) and let it go.
    /// </summary>
    void End(RunStop stop, int? exitStatus, int? exceptionVector);
}
