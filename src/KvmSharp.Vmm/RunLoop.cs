// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Confidential;
using KvmSharp.Vmm.Debugging;
using KvmSharp.Vmm.Devices;

namespace KvmSharp.Vmm;

/// <summary>What one KVM_RUN came back with (Firecracker vstate/vcpu.rs VcpuEmulation).</summary>
public enum VcpuEmulation
{
    /// <summary>The exit was served by a device; run again.</summary>
    Handled,
    /// <summary>KVM_RUN returned EINTR (a stray signal) without the watchdog firing; run again.</summary>
    Interrupted,
    /// <summary>The guest is done; <see cref="RunLoop.Stop"/> says how.</summary>
    Stopped,
    /// <summary>
    /// A single-step exit of an instruction trace (<see cref="MicroVmOptions.TraceInstructions"/>) was recorded; run
    /// again. Not counted toward the exit budget.
    /// </summary>
    Stepped,
}

/// <summary>Why the run loop stopped, with the values of the exit that stopped it.</summary>
public readonly record struct RunStop(GuestOutcome Outcome, string Detail, ushort? Port = null);

/// <summary>
/// The vCPU run loop (kvmtool kvm-cpu.c's switch on exit_reason): KVM_RUN, decode the exit in place, send port I/O to
/// the bus, stop on a guest request, an error exit, the watchdog or the exit budget. Every exit reason the kernel
/// can return ends in a <see cref="RunStop"/>; none is ignored and none throws.
/// </summary>
public sealed class RunLoop
{
    private readonly Vcpu _vcpu;
    private readonly Bus _bus;
    private readonly HypercallDevice _hypercalls;
    private readonly HostCallDevice? _hostCalls;
    private readonly Func<GuestOutcome?> _kicked;

    /// <summary>
    /// A loop over <paramref name="vcpu"/> that sends port I/O to <paramref name="bus"/> and stops on a request of
    /// <paramref name="hypercalls"/>; <paramref name="timedOut"/> tells an interruption by the watchdog from a stray
    /// signal. No host-call device.
    /// </summary>
    public RunLoop(Vcpu vcpu, Bus bus, HypercallDevice hypercalls, Func<bool> timedOut)
        : this(vcpu, bus, hypercalls, null, timedOut)
    {
    }

    /// <summary>
    /// A loop over <paramref name="vcpu"/> that sends port I/O to <paramref name="bus"/>, stops on a request of
    /// <paramref name="hypercalls"/> and serves guest → host calls through <paramref name="hostCalls"/> (on the same
    /// bus; a failed host function ends the call; null for none); <paramref name="timedOut"/> tells an interruption by
    /// the watchdog from a stray signal.
    /// </summary>
    public RunLoop(Vcpu vcpu, Bus bus, HypercallDevice hypercalls, HostCallDevice? hostCalls, Func<bool> timedOut)
        : this(vcpu, bus, hypercalls, hostCalls, KickedBy(timedOut))
    {
    }

    /// <summary>
    /// A loop over <paramref name="vcpu"/> like <see cref="RunLoop(Vcpu, Bus, HypercallDevice, HostCallDevice?, Func{bool})"/>,
    /// where <paramref name="kicked"/> says what an interruption of KVM_RUN stands for: the outcome the call ends with
    /// (<see cref="GuestOutcome.Timeout"/> for a wall-clock limit, <see cref="GuestOutcome.Cancelled"/> for a caller's
    /// token, <see cref="GuestOutcome.Disposed"/> for a disposal from another thread …), or null for a stray signal,
    /// after which the loop runs again.
    /// </summary>
    public RunLoop(Vcpu vcpu, Bus bus, HypercallDevice hypercalls, HostCallDevice? hostCalls, Func<GuestOutcome?> kicked)
    {
        ArgumentNullException.ThrowIfNull(kicked);
        _vcpu = vcpu;
        _bus = bus;
        _hypercalls = hypercalls;
        _hostCalls = hostCalls;
        _kicked = kicked;
    }

    private static Func<GuestOutcome?> KickedBy(Func<bool> timedOut)
    {
        ArgumentNullException.ThrowIfNull(timedOut);
        return () => timedOut() ? GuestOutcome.Timeout : null;
    }

    /// <summary>
    /// Serves KVM_HC_MAP_GPA_RANGE hypercall exits (a micro-VM with private memory); null when the VM has none, and
    /// then such an exit is unexpected.
    /// </summary>
    public MemoryConversion? Conversion { get; init; }

    /// <summary>
    /// The exception port's device, on the bus; when it has a report after a port exit the loop stops with
    /// <see cref="GuestOutcome.Exception"/>. Null for a loop without one.
    /// </summary>
    public ExceptionDevice? Exceptions { get; init; }

    /// <summary>
    /// The guest memory whose lazily restored snapshot pages a KVM userfault exit asks for
    /// (<see cref="GuestMemory.RestoreLazily"/>); null for a loop that serves none. Only read on a memory fault exit.
    /// </summary>
    public GuestMemory? Memory { get; init; }

    /// <summary>
    /// The base of an MMIO window that stands in for port I/O (an arm64 micro-VM: Arch/Arm64/Layout.cs): a
    /// KVM_EXIT_MMIO at <c>PortWindow + p</c>, p &lt; 0x10000, is the access to "port" p and goes to the bus like an
    /// IN/OUT; an MMIO access elsewhere, or to a port no device claims, ends as <see cref="GuestOutcome.UnhandledMmio"/>
    /// (with <see cref="RunStop.Port"/> set inside the window). Null (x86-64): every MMIO exit is unhandled.
    /// </summary>
    public ulong? PortWindow { get; init; }

    /// <summary>
    /// True for an arm64 vCPU: a traced run single-steps it with the arm64 KVM_SET_GUEST_DEBUG and reads each step
    /// exit's PC with KVM_GET_ONE_REG (Arch/Arm64/Arm64GuestDebug.cs).
    /// </summary>
    internal bool IsArm64 { get; init; }

    /// <summary>Set when <see cref="Step"/> returned <see cref="VcpuEmulation.Stopped"/>.</summary>
    public RunStop Stop { get; private set; }

    /// <summary>
    /// True from the moment a traced run switches single-stepping on until a KVM_SET_GUEST_DEBUG has switched it off
    /// again (false unless that failed): <see cref="EnsureSteppingOff"/> then switches it off.
    /// </summary>
    internal bool SteppingMayBeOn { get; private set; }

    private GuestTraceBuilder? _trace;

    /// <summary>
    /// Runs until the guest stops or <paramref name="maxExits"/> KVM_RUN returns have happened. The single-step exits
    /// of an instruction trace do not count (<see cref="VcpuEmulation.Stepped"/>; <see cref="MicroVmOptions.TraceInstructions"/>
    /// bounds them), except the one that stands for a HLT, which counts as the KVM_EXIT_HLT it replaced: a traced call
    /// has the exit count and budget of the same call untraced.
    /// </summary>
    public RunStop Run(long maxExits, out long exits)
    {
        exits = 0;
        while (true)
        {
            if (exits >= maxExits)
                return new RunStop(GuestOutcome.MaxExits, $"more than {maxExits} exits in one call");
            exits++;
            VcpuEmulation result = Step();
            if (result == VcpuEmulation.Stopped) return Stop;
            if (result == VcpuEmulation.Stepped) exits--;
        }
    }

    /// <summary>
    /// <see cref="Run(long, out long)"/> with the vCPU single-stepped into <paramref name="trace"/> (null: not traced).
    /// Stepping is switched on before the first KVM_RUN, off once the trace is full, and off again however the run
    /// ends (an exception from the kernel included).
    /// </summary>
    internal RunStop Run(long maxExits, GuestTraceBuilder? trace, out long exits)
    {
        if (trace is null) return Run(maxExits, out exits);
        _trace = trace;
        try
        {
            SteppingMayBeOn = true;
            if (IsArm64) Arch.Arm64.Arm64GuestDebug.EnableSingleStep(_vcpu);
            else _vcpu.EnableSingleStep();
            trace.Stepping = true;
            return Run(maxExits, out exits);
        }
        finally
        {
            _trace = null;
            trace.Stepping = false;
            EnsureSteppingOff();
        }
    }

    private IGuestDebugger? _debugger;

    /// <summary>
    /// <see cref="Run(long, out long)"/> under <paramref name="debugger"/> (null: none; not together with a trace): it
    /// is asked before the first KVM_RUN (gdb connects, the guest stops before its first instruction), on every
    /// KVM_EXIT_DEBUG (which, like a trace's step exits, does not count toward the exit budget) and after every other
    /// exit the loop goes on from, and told how the call ended. Guest debugging is off again however the run ends.
    /// </summary>
    internal RunStop Run(long maxExits, GuestTraceBuilder? trace, IGuestDebugger? debugger, out long exits)
    {
        if (debugger is null) return Run(maxExits, trace, out exits);
        if (trace is not null) throw new ArgumentException("a traced call cannot be debugged", nameof(trace));
        exits = 0;
        _debugger = debugger;
        RunStop? stop = null;
        try
        {
            SteppingMayBeOn = true;
            stop = debugger.Begin() is { } early ? Settle(early) : Run(maxExits, out exits);
            return stop.Value;
        }
        finally
        {
            _debugger = null;
            // Told however the call ended (an exception from the kernel included), so the connection is closed.
            RunStop ending = stop ?? new RunStop(GuestOutcome.RunFailed, "the host failed during the call");
            int? status = ending.Outcome == GuestOutcome.Exit ? (_hypercalls.Request == GuestRequest.Return ? 0 : (int)_hypercalls.Status) : null;
            debugger.End(ending, status, ending.Outcome == GuestOutcome.Exception ? Exceptions?.Raised?.Vector : null);
            EnsureSteppingOff();
        }
    }

    /// <summary>A stop the debugger asked for: a kick it saw while the guest was stopped is consumed, as <see cref="Step"/> does.</summary>
    private RunStop Settle(RunStop stop)
    {
        if (stop.Outcome is GuestOutcome.Timeout or GuestOutcome.Cancelled or GuestOutcome.Disposed) _vcpu.ImmediateExit = false;
        return stop;
    }

    /// <summary>Switches single-stepping off (KVM_SET_GUEST_DEBUG, control 0) when a traced run may have left it on.</summary>
    internal void EnsureSteppingOff()
    {
        if (!SteppingMayBeOn) return;
        DisableGuestDebug();
        SteppingMayBeOn = false;
    }

    /// <summary>One KVM_RUN and the handling of its exit.</summary>
    public VcpuEmulation Step()
    {
        VcpuExit exit;
        try
        {
            exit = _vcpu.Run();
        }
        catch (KvmException e)
        {
            if (_kicked() is not { } reason) return Stopped(new RunStop(GuestOutcome.RunFailed, $"KVM_RUN failed with {e.ErrnoName}"));
            _vcpu.ImmediateExit = false;
            return Stopped(Kicked(reason));
        }
        if (exit.Interrupted)
        {
            // The watchdog's Vcpu.Kick (immediate_exit + signal) ends here, whatever asked for it: the limit, a
            // CancellationToken or a Dispose. A real exit that raced with the kick is handled below as usual; the next
            // KVM_RUN then returns EINTR at once (immediate_exit is still set).
            if (_kicked() is not { } reason)
            {
                // gdb's interrupt (the debugger kicked the vCPU): stopped in the debugger; else a stray signal: run again.
                if (_debugger is { } interrupted && interrupted.Interrupted(out RunStop? end))
                    return end is { } stop ? Stopped(Settle(stop)) : VcpuEmulation.Stepped;
                return VcpuEmulation.Interrupted;
            }
            _vcpu.ImmediateExit = false;
            return Stopped(Kicked(reason));
        }

        if (_debugger is { } debugger)
        {
            // Breakpoints and steps of the debugger: not counted, like a trace's step exits.
            if (exit.Reason == KvmExitReason.KVM_EXIT_DEBUG)
                return debugger.OnDebugExit(exit) is { } stop ? Stopped(Settle(stop)) : VcpuEmulation.Stepped;
            VcpuEmulation handled = StepExit(exit);
            if (handled == VcpuEmulation.Stopped) return handled;
            return debugger.AfterExit(exit) is { } after ? Stopped(Settle(after)) : handled;
        }

        if (_trace is { Stepping: true } trace)
        {
            if (IsArm64)
            {
                // arm64: the exit carries the ESR (EC 0x32), not the PC; the step exit comes after an MMIO access or an
                // HVC as well (kvm_incr_pc clears PSTATE.SS), so only the exit that ends the call lacks one.
                if (Arch.Arm64.Arm64GuestDebug.IsSingleStep(exit)) return Stepped(trace, Arch.Arm64.Arm64GuestDebug.Pc(_vcpu));
                // A guest BRK comes to the host while it steps (MDCR_EL2.TDE): given back to the guest, it is the
                // exception it is untraced — no exit counted, the vector entry traced next.
                if (Arch.Arm64.Arm64GuestDebug.IsGuestBrk(exit)) return ReflectedBrk(trace, exit);
            }
            else if (exit.IsSingleStep)
            {
                return Stepped(trace, exit.DebugPc);
            }
            bool completed = false;
            if (exit.Reason == KvmExitReason.KVM_EXIT_IO)
            {
                // This host (and the emulator like it) advances RIP past an OUT before the exit and loses its step
                // exit; upstream KVM and an IN leave RIP on the instruction and step on the KVM_RUN that completes it.
                ulong rip = _vcpu.GetRegs().rip;
                completed = rip != trace.Next;
                if (completed) trace.Completed(rip);
            }
            VcpuEmulation handled = StepExit(exit);
            if (handled == VcpuEmulation.Stopped)
            {
                // The exit's instruction ended the call: no step exit will come for it.
                if (!completed && (exit.Reason is KvmExitReason.KVM_EXIT_IO or KvmExitReason.KVM_EXIT_MMIO or KvmExitReason.KVM_EXIT_SHUTDOWN
                    or KvmExitReason.KVM_EXIT_INTERNAL_ERROR or KvmExitReason.KVM_EXIT_MEMORY_FAULT or KvmExitReason.KVM_EXIT_HYPERCALL
                    // arm64: PSCI SYSTEM_OFF / SYSTEM_RESET is an HVC that ended the call.
                    || (IsArm64 && exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT)))
                {
                    trace.RecordNext();
                }
                return handled;
            }
            if (trace.Full) StopStepping(trace);
            return handled;
        }
        return StepExit(exit);
    }

    /// <summary>A single-step exit: record the instruction that ran; a HLT ends the call as its KVM_EXIT_HLT would have.</summary>
    private VcpuEmulation Stepped(GuestTraceBuilder trace, ulong pc)
    {
        TracedInstruction? executed = trace.Stepped(pc);
        // While stepping, the step exit replaces KVM_EXIT_HLT and the vCPU would go on after the HLT.
        // Stopped, so counted: it stands for the KVM_EXIT_HLT.
        if (executed is { IsHalt: true }) return Stopped(new RunStop(GuestOutcome.Halt, "HLT with interrupts disabled"));
        if (trace.Full) StopStepping(trace);
        return VcpuEmulation.Stepped;
    }

    /// <summary>
    /// A guest BRK that exited while stepping: delivered to the guest's vector (<see cref="Arch.Arm64.Arm64GuestDebug.ReflectBrk"/>),
    /// recorded as an instruction that raised an exception, and the vector entry is the next to trace.
    /// </summary>
    private VcpuEmulation ReflectedBrk(GuestTraceBuilder trace, VcpuExit exit)
    {
        ulong vector = Arch.Arm64.Arm64GuestDebug.ReflectBrk(_vcpu, exit);
        trace.RecordNext(raisedException: true);
        trace.Next = vector;
        trace.NextRecorded = false;
        if (trace.Full) StopStepping(trace);
        return VcpuEmulation.Stepped;
    }

    /// <summary>The trace is full: the rest of the call runs unstepped.</summary>
    private void StopStepping(GuestTraceBuilder trace)
    {
        DisableGuestDebug();
        SteppingMayBeOn = false;
        trace.Stepping = false;
        trace.Truncated = true;
    }

    /// <summary>KVM_SET_GUEST_DEBUG with control 0, in the vCPU architecture's encoding.</summary>
    private void DisableGuestDebug()
    {
        if (IsArm64) Arch.Arm64.Arm64GuestDebug.Disable(_vcpu);
        else _vcpu.DisableGuestDebug();
    }

    /// <summary>
    /// True when the last KVM_RUN ended in KVM_EXIT_MMIO: the kernel completes that access at the next KVM_RUN (an
    /// arm64 micro-VM completes it before it moves the vCPU to a new call).
    /// </summary>
    internal bool LastExitWasMmio { get; private set; }

    private VcpuEmulation StepExit(VcpuExit exit)
    {
        LastExitWasMmio = exit.Reason == KvmExitReason.KVM_EXIT_MMIO;
        switch (exit.Reason)
        {
            case KvmExitReason.KVM_EXIT_IO:
                return HandleIo(exit);
            case KvmExitReason.KVM_EXIT_HLT:
                return Stopped(new RunStop(GuestOutcome.Halt, "HLT with interrupts disabled"));
            case KvmExitReason.KVM_EXIT_SHUTDOWN:
                return Stopped(new RunStop(GuestOutcome.Shutdown, "triple fault (KVM_EXIT_SHUTDOWN)"));
            case KvmExitReason.KVM_EXIT_INTERNAL_ERROR:
                return Stopped(new RunStop(GuestOutcome.InternalError, InternalErrorDetail(exit)));
            case KvmExitReason.KVM_EXIT_FAIL_ENTRY:
                return Stopped(new RunStop(GuestOutcome.FailEntry, $"KVM_EXIT_FAIL_ENTRY hardware_entry_failure_reason=0x{exit.FailEntryReason:X}"));
            case KvmExitReason.KVM_EXIT_MMIO when PortWindow is ulong window:
                return HandleMmio(exit, window);
            case KvmExitReason.KVM_EXIT_MMIO:
                return Stopped(new RunStop(GuestOutcome.UnhandledMmio,
                    $"MMIO {(exit.MmioIsWrite ? "write" : "read")} at 0x{exit.MmioAddress:X}: no device and no memory there"));
            case KvmExitReason.KVM_EXIT_MEMORY_FAULT when exit.MemoryFaultIsUserfault && Memory is not null &&
                                                          Memory.ServeUserfault(exit.MemoryFaultGpa, exit.MemoryFaultSize):
                // A lazily restored page: written and its bit cleared, the next KVM_RUN retries the access.
                return VcpuEmulation.Handled;
            case KvmExitReason.KVM_EXIT_MEMORY_FAULT:
                return Stopped(new RunStop(GuestOutcome.MemoryFault,
                    $"KVM_EXIT_MEMORY_FAULT gpa=0x{exit.MemoryFaultGpa:X} size=0x{exit.MemoryFaultSize:X} flags=0x{exit.MemoryFaultFlags:X}"));
            case KvmExitReason.KVM_EXIT_HYPERCALL when Conversion is not null && exit.TryGetMapGpaRange(out MapGpaRangeRequest request):
                // The answer lands in the guest's RAX when the next KVM_RUN completes the VMCALL (complete_hypercall_exit).
                exit.HypercallReturn = Conversion.Serve(request);
                return VcpuEmulation.Handled;
            case KvmExitReason.KVM_EXIT_SYSTEM_EVENT when exit.SystemEventType is KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN or KvmArm64Constants.KVM_SYSTEM_EVENT_RESET:
                // PSCI SYSTEM_OFF / SYSTEM_RESET (arm64 psci.c kvm_psci_system_off/reset → kvm_prepare_system_event):
                // the guest powered the machine off; an arm64 micro-VM's counterpart of a triple fault's shutdown.
                return Stopped(new RunStop(GuestOutcome.Shutdown, exit.SystemEventType == KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN
                    ? "PSCI SYSTEM_OFF (KVM_EXIT_SYSTEM_EVENT SHUTDOWN)" : "PSCI SYSTEM_RESET (KVM_EXIT_SYSTEM_EVENT RESET)"));
            case KvmExitReason.KVM_EXIT_SYSTEM_EVENT when exit.SystemEventType == KvmConstants.KVM_SYSTEM_EVENT_SEV_TERM && exit.SystemEventData.Length > 0:
                // An SEV-ES/SNP guest's GHCB_MSR_TERM_REQ (sev.c sev_handle_vmgexit_msr_protocol: KVM_SYSTEM_EVENT_SEV_TERM,
                // data[0] = the GHCB MSR): an SNP micro-VM's runtime asks when its GHCB protocol fails (Arch/X86_64/SnpRuntime).
                ulong ghcbMsr = exit.SystemEventData[0];
                return Stopped(new RunStop(GuestOutcome.UnexpectedExit,
                    $"KVM_EXIT_SYSTEM_EVENT SEV termination request (GHCB MSR 0x{ghcbMsr:X}: reason set {(ghcbMsr >> 12) & 0xF}, code {(ghcbMsr >> 16) & 0xFF})"));
            default:
                return Stopped(new RunStop(GuestOutcome.UnexpectedExit, $"exit reason {exit.Reason} ({(uint)exit.Reason})"));
        }
    }

    private VcpuEmulation HandleIo(VcpuExit exit)
    {
        ushort port = exit.IoPort;
        int size = exit.IoSize;
        bool isOut = exit.IoIsOut;
        if (!_bus.TryResolve(port, out IBusDevice? device, out ulong offset))
        {
            return Stopped(new RunStop(GuestOutcome.UnknownPort,
                $"{(isOut ? "OUT to" : "IN from")} unknown port 0x{port:X} ({size} byte{(size == 1 ? "" : "s")})", port));
        }
        // String I/O (REP OUTSB/INSB) arrives as one exit with count elements of size bytes each.
        Span<byte> data = exit.IoData;
        for (int i = 0; i + size <= data.Length; i += size)
        {
            if (isOut) device!.Write(offset, data.Slice(i, size));
            else device!.Read(offset, data.Slice(i, size));
        }
        return AfterDevice();
    }

    /// <summary>An MMIO exit with a port window: the access to port (address − window) goes to the bus as an IN/OUT would.</summary>
    private VcpuEmulation HandleMmio(VcpuExit exit, ulong window)
    {
        ulong address = exit.MmioAddress;
        bool isWrite = exit.MmioIsWrite;
        Span<byte> data = exit.MmioData;
        ushort? port = address - window < 0x1_0000 ? (ushort)(address - window) : null;
        if (port is not ushort p || !_bus.TryResolve(p, out IBusDevice? device, out ulong offset))
        {
            string where = port is ushort q ? $"port 0x{q:X} of the MMIO port window, which no device claims" : "no device and no memory there";
            return Stopped(new RunStop(GuestOutcome.UnhandledMmio,
                $"MMIO {(isWrite ? "write" : "read")} at 0x{address:X} ({data.Length} byte{(data.Length == 1 ? "" : "s")}): {where}", port));
        }
        // A read's answer is in kvm_run.mmio.data when the next KVM_RUN completes the load (kvm_handle_mmio_return).
        if (isWrite) device!.Write(offset, data);
        else device!.Read(offset, data);
        return AfterDevice();
    }

    /// <summary>After a device access: a failed host call, a reported exception or an exit/return request stops the loop.</summary>
    private VcpuEmulation AfterDevice()
    {
        if (_hostCalls?.Fault is { } fault)
            return Stopped(new RunStop(GuestOutcome.HostFunctionFailed, fault.ToString()));
        if (Exceptions?.Raised is { } exception)
            return Stopped(new RunStop(GuestOutcome.Exception, exception.ToString()));
        return _hypercalls.Request switch
        {
            GuestRequest.Exit => Stopped(new RunStop(GuestOutcome.Exit, $"exit status {(int)_hypercalls.Status}")),
            GuestRequest.Return => Stopped(new RunStop(GuestOutcome.Exit, "returned")),
            _ => VcpuEmulation.Handled,
        };
    }

    /// <summary>The stop of a kick out of KVM_RUN, by what it stands for.</summary>
    internal static RunStop Kicked(GuestOutcome reason) => new(reason, reason switch
    {
        GuestOutcome.Timeout => "wall-clock limit reached; the watchdog kicked the vCPU out of KVM_RUN",
        GuestOutcome.Cancelled => "the call's CancellationToken was cancelled; the vCPU was kicked out of KVM_RUN",
        GuestOutcome.Disposed => "the micro-VM was disposed from another thread during the call; the vCPU was kicked out of KVM_RUN",
        _ => $"the vCPU was kicked out of KVM_RUN ({reason.Name()})",
    });

    /// <summary>
    /// "KVM_EXIT_INTERNAL_ERROR suberror=1 (emulation failure) of fld qword ptr [rax] (dd 00 …) at 0x100004": the
    /// instruction the kernel could not emulate, disassembled at the vCPU's PC (<see cref="TracedInstruction.Disassembly"/>),
    /// when the exit carries its bytes (<see cref="VcpuExit.EmulationFailureInstruction"/>).
    /// </summary>
    private string InternalErrorDetail(VcpuExit exit)
    {
        string detail = $"KVM_EXIT_INTERNAL_ERROR suberror={exit.InternalSuberror}";
        if (exit.InternalSuberror != (uint)KvmInternalError.KVM_INTERNAL_ERROR_EMULATION) return detail;
        byte[] bytes = exit.EmulationFailureInstruction.ToArray();
        if (bytes.Length == 0) return detail + " (emulation failure)";
        ulong pc;
        try
        {
            pc = IsArm64 ? Arch.Arm64.Arm64GuestDebug.Pc(_vcpu) : _vcpu.GetRegs().rip;
        }
        catch (KvmException)
        {
            // A VM with protected state (SEV-ES, SNP, TDX) refuses KVM_GET_REGS: show the text without an address.
            return detail + $" (emulation failure) of {Describe(0, bytes)}";
        }
        return detail + $" (emulation failure) of {Describe(pc, bytes)} at 0x{pc:X}";
    }

    /// <summary>
    /// The instruction's text and bytes; on x86 only the decoded instruction's bytes (the kernel copies up to 15 from
    /// RIP, x86.c prepare_emulation_failure_exit).
    /// </summary>
    private string Describe(ulong pc, byte[] bytes)
    {
        var instruction = new TracedInstruction(pc, bytes) { Architecture = IsArm64 ? GuestArchitecture.Arm64 : GuestArchitecture.X86_64 };
        int length = IsArm64 ? bytes.Length : TracedInstruction.Decode(pc, bytes) is { IsInvalid: false } decoded ? decoded.Length : bytes.Length;
        return $"{instruction.Disassembly} ({Convert.ToHexString(bytes, 0, length).ToLowerInvariant()})";
    }

    private VcpuEmulation Stopped(RunStop stop)
    {
        Stop = stop;
        return VcpuEmulation.Stopped;
    }
}
