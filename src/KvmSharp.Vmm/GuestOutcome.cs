// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>Every way a guest run can end. Each one comes with the guest's RIP in <see cref="CallResult.Rip"/>.</summary>
public enum GuestOutcome
{
    /// <summary>The guest ended normally: it returned from the called function (status 0, <see cref="CallResult.Value"/>
    /// holds the result) or wrote a status to the exit port.</summary>
    Exit,
    /// <summary>
    /// KVM_EXIT_SHUTDOWN: a triple fault. The VMM's handlers report exceptions (<see cref="Exception"/>), so this takes a
    /// guest that broke exception delivery itself (e.g. loaded an empty IDT, or unmapped the IDT or the exception stack).
    /// </summary>
    Shutdown,
    /// <summary>KVM_EXIT_HLT: HLT with interrupts off; nothing can wake the vCPU.</summary>
    Halt,
    /// <summary>KVM_EXIT_INTERNAL_ERROR: KVM could not emulate something (e.g. executing outside guest memory).</summary>
    InternalError,
    /// <summary>KVM_EXIT_FAIL_ENTRY: the hardware refused to enter the guest.</summary>
    FailEntry,
    /// <summary>Port I/O to a port no device claims.</summary>
    UnknownPort,
    /// <summary>
    /// An MMIO access no device claims: memory that does not exist (an x86-64 guest mapping it), or on arm64, where
    /// the devices sit on an MMIO port window, a port of that window no device has (<see cref="CallResult.Port"/> set).
    /// </summary>
    UnhandledMmio,
    /// <summary>KVM_EXIT_MEMORY_FAULT: KVM could not resolve a guest_memfd access.</summary>
    MemoryFault,
    /// <summary>The wall-clock limit (<see cref="MicroVmOptions.Timeout"/>) elapsed; the watchdog kicked the vCPU out of
    /// KVM_RUN (<see cref="Vcpu.Kick"/>). Guest memory is untouched and the micro-VM takes the next call as it is.</summary>
    Timeout,
    /// <summary>The guest caused more than <see cref="MicroVmOptions.MaxExits"/> exits in one call (the exit budget: the
    /// run loop stopped before the next KVM_RUN, nothing was kicked).</summary>
    MaxExits,
    /// <summary>KVM_RUN itself failed with an errno other than EINTR.</summary>
    RunFailed,
    /// <summary>Any other exit reason (the run loop handles the ones this ABI can produce; see Detail).</summary>
    UnexpectedExit,
    /// <summary>A host function the guest called threw (<see cref="CallResult.HostFault"/> has the exception, the
    /// function and the RIP). The guest was stopped at its host call with memory intact, so, like
    /// <see cref="Timeout"/>, the micro-VM takes the next call without a reset.</summary>
    HostFunctionFailed,
    /// <summary>The guest raised a CPU exception (#DE, #UD, #PF, #GP …): the VMM's IDT delivered it to its handler,
    /// which reported it. <see cref="CallResult.Exception"/> has the vector, error code and CR2;
    /// <see cref="CallResult.Rip"/> is the faulting instruction.</summary>
    Exception,
    /// <summary>The caller's CancellationToken was cancelled during the call: the vCPU was kicked out of KVM_RUN as for
    /// <see cref="Timeout"/> (a token already cancelled stops the call before the guest runs an instruction). Guest
    /// memory is untouched and the micro-VM takes the next call as it is.</summary>
    Cancelled,
    /// <summary><see cref="MicroVm.Dispose"/> was called from another thread during the call (an asynchronous call on the
    /// vCPU thread, a synchronous one on another): the vCPU was kicked out of KVM_RUN as for <see cref="Timeout"/> and
    /// the micro-VM is disposed as the call returns.</summary>
    Disposed,
}
