// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>How one guest call (or run of the entry point) ended. Never thrown: every guest ending is a value.</summary>
public sealed record CallResult
{
    /// <summary>How the call ended; the other members say which values go with it.</summary>
    public required GuestOutcome Outcome { get; init; }

    /// <summary>The exit status: the value written to the exit port, 0 when the function returned; -1 otherwise.</summary>
    public int Status { get; init; } = -1;

    /// <summary>The function's result (RAX at return, via CallRegion.result); null unless the function returned.</summary>
    public ulong? Value { get; init; }

    /// <summary>
    /// The guest's instruction pointer when it stopped: for <see cref="GuestOutcome.Exception"/> the faulting
    /// instruction (the RIP of the interrupt frame, not the handler's); for a triple fault the instruction whose
    /// exception could not be delivered; for a port exit the I/O instruction (upstream KVM) or the one after it
    /// (kvm_pvm advances RIP before exiting).
    /// </summary>
    public ulong Rip { get; init; }

    /// <summary>Console (COM1) output of this call, UTF-8.</summary>
    public string Console { get; init; } = "";

    /// <summary>True when the guest wrote more console bytes than <see cref="MicroVmOptions.ConsoleCapacity"/>.</summary>
    public bool ConsoleTruncated { get; init; }

    /// <summary>The bytes the guest described by CallRegion.output_ptr/len, when it set them.</summary>
    public ReadOnlyMemory<byte> Output { get; init; }

    /// <summary>
    /// KVM_RUN returns during the call, not counting the single-step exits of an instruction trace
    /// (<see cref="GuestTrace.StepExits"/>): a traced call has the count it has untraced.
    /// </summary>
    public long Exits { get; init; }

    /// <summary>
    /// Wall-clock time the guest ran: the run loop, from arming the watchdog until it stopped (not the call's set-up).
    /// </summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>What happened, with the values (port, exit reason, suberror …), for people and logs.</summary>
    public string Detail { get; init; } = "";

    /// <summary>The port of an <see cref="GuestOutcome.UnknownPort"/> outcome.</summary>
    public ushort? Port { get; init; }

    /// <summary>Host calls (OUTs to the host-call port) the guest made during the call, each one VM exit.</summary>
    public long HostCalls { get; init; }

    /// <summary>
    /// KVM_HC_MAP_GPA_RANGE requests the guest made during the call (served or refused; <see cref="MicroVm.Conversion"/>
    /// has the totals and the last refusal), each one VM exit.
    /// </summary>
    public long Conversions { get; init; }

    /// <summary>The host function that threw, for <see cref="GuestOutcome.HostFunctionFailed"/>; null otherwise.</summary>
    public HostCalls.HostFunctionFault? HostFault { get; init; }

    /// <summary>The CPU exception of a <see cref="GuestOutcome.Exception"/> (vector, error code, CR2 …); null otherwise.</summary>
    public GuestException? Exception { get; init; }

    /// <summary>
    /// The instructions the guest executed, when <see cref="MicroVmOptions.TraceInstructions"/> is above 0; null when
    /// tracing is off.
    /// </summary>
    public GuestTrace? Trace { get; init; }

    /// <summary>
    /// True when the outcome is <see cref="GuestOutcome.Exit"/> with status 0 (including a function that returned).
    /// </summary>
    public bool IsSuccess => Outcome == GuestOutcome.Exit && Status == 0;
}
