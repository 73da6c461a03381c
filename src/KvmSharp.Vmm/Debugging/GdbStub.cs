// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// One call under gdb: the commands of the GDB remote serial protocol (gdb/doc "Packets", "Stop Reply Packets",
/// "General Query Packets") over an <see cref="RspConnection"/>, for a micro-VM's vCPU (its architecture's registers
/// and guest debugging: <see cref="GdbTarget"/>; x86-64 and arm64). The call stops before
/// its first instruction until gdb connects and resumes it; <c>s</c> single-steps (KVM_GUESTDBG_SINGLESTEP), <c>c</c>
/// runs to a breakpoint or the end of the call, and gdb's interrupt (Ctrl-C, 0x03) stops a running guest (T02).
/// Breakpoints, <c>Z0</c> and <c>Z1</c> alike, are the host's hardware execute breakpoints — x86 DR0–DR3 with
/// KVM_GUESTDBG_USE_HW_BP (x86.c kvm_vcpu_check_code_breakpoint), arm64 DBGBVR/DBGBCR pairs with KVM_GUESTDBG_USE_HW —,
/// not INT3/BRK written into memory: this host's kvm_pvm does not intercept INT3 with KVM_GUESTDBG_USE_SW_BP (it ends
/// KVM_RUN with KVM_EXIT_INTERNAL_ERROR: HostDeviations.KvmPvmSoftwareBreakpointNotIntercepted), and guest memory
/// stays as the guest wrote it. So at most as many breakpoints at a time as the host has registers
/// (<see cref="GdbTarget.BreakpointRegisters"/>: four on x86, ID_AA64DFR0_EL1.BRPs + 1 on arm64; one more is refused
/// with an error reply, which gdb reports as "Cannot insert breakpoint N"). A host
/// breakpoint exits before its instruction on every run (x86 does not consult RF for it), so a continue from one
/// steps over it with breakpoints off first.
/// Watchpoints (<c>Z2</c> write, <c>Z3</c> read, <c>Z4</c> access, 1–8 bytes) are the host's hardware watchpoints
/// where the target has them (arm64 DBGWVR/DBGWCR, as many as <see cref="GdbTarget.WatchpointRegisters"/>); a stop at
/// one reports <c>watch:</c>/<c>rwatch:</c>/<c>awatch:</c> and the data address — on arm64 before the access, so a
/// continue from it steps over it like a breakpoint; on x86 (DR0–DR3 with RW = 01/11, shared with the breakpoints, no
/// read-only kind) after it, as the #DB trap comes. On x86 they are offered only where the kernel raises data
/// breakpoints for KVM_GUESTDBG_USE_HW_BP (a probe: <see cref="X86_64GdbTarget"/>; this host's kvm_pvm raises none), else
/// refused as unsupported (an empty reply) and gdb watches in software, single-stepping. The <c>g</c> packet holds the floating-point and
/// vector registers too (x87 and SSE; arm64 v0–v31, fpsr, fpcr), as the target description lists them.
/// Memory is guest-physical (a micro-VM's identity map): a range outside guest memory, or on a private page, gets an
/// error reply. While the guest is stopped the call's wall-clock limit is paused; a cancellation or disposal of the
/// call still ends it. A lost connection detaches (the call runs on, undebugged); <c>k</c> ends the call as
/// <see cref="GuestOutcome.Cancelled"/>.
/// </summary>
internal sealed class GdbStub : IGuestDebugger
{
    private readonly GdbServer _server;
    private readonly Vcpu _vcpu;
    private readonly GdbTarget _target;
    private readonly GuestMemory _memory;
    private readonly Func<GuestOutcome?> _kicked;
    private readonly Action _pauseClock;
    private readonly Action _resumeClock;
    private readonly List<ulong> _breakpoints = [];
    private readonly List<GdbWatchpoint> _watchpoints = [];
    private RspConnection? _connection;
    private bool _detached;
    private bool _clockPaused;

    // The step in progress: a gdb 's' (report when done) or the step over a breakpoint before a 'c'.
    private bool _stepping;
    private bool _steppingOverBreakpoint;
    private ulong _stepFrom;
    private bool _stepIsHalt;

    // The PC of the last stop at a watchpoint (the access not done yet), or null: a continue from it steps over first.
    private ulong? _watchStopPc;

    // While the guest runs after a 'c': a thread that watches the connection for gdb's interrupt byte and kicks the vCPU.
    private Thread? _watcher;
    private volatile bool _stopWatching;
    private volatile bool _interruptRequested;

    /// <param name="server">The micro-VM's listener.</param>
    /// <param name="vcpu">The call's vCPU.</param>
    /// <param name="target">Its architecture's registers and guest debugging.</param>
    /// <param name="memory">Guest memory, through its checked accessors.</param>
    /// <param name="kicked">The run loop's kick reason (a timeout, a cancellation, a disposal), checked while waiting.</param>
    /// <param name="pauseClock">Stops the wall-clock limit while the guest is stopped.</param>
    /// <param name="resumeClock">Starts it again with the time left.</param>
    public GdbStub(GdbServer server, Vcpu vcpu, GdbTarget target, GuestMemory memory, Func<GuestOutcome?> kicked, Action pauseClock, Action resumeClock)
    {
        _server = server;
        _vcpu = vcpu;
        _target = target;
        _memory = memory;
        _kicked = kicked;
        _pauseClock = pauseClock;
        _resumeClock = resumeClock;
    }

    public RunStop? Begin()
    {
        PauseClock();
        Socket? socket = _server.Accept(() => _kicked() is not null);
        if (socket is null) return KickedStop();
        _connection = new RspConnection(socket, () => _kicked() is not null);
        return Serve();
    }

    public bool Interrupted(out RunStop? stop)
    {
        stop = null;
        if (!_interruptRequested) return false;
        StopWatching();
        _interruptRequested = false;
        _vcpu.ImmediateExit = false;
        if (_detached || _connection is null) return true;
        _stepping = _steppingOverBreakpoint = false;
        stop = Stopped(signal: 2); // SIGINT
        return true;
    }

    public RunStop? OnDebugExit(VcpuExit exit)
    {
        if (_target.ReflectGuestBreakpoint(exit))
        {
            // The guest's own breakpoint instruction, delivered to its vector: a step stops there, a continue goes on.
            if (_detached || _connection is null || !(_stepping || _steppingOverBreakpoint)) return null;
            return StepDone();
        }
        if (_detached || _connection is null) return null; // a step trap left pending from before the detach
        if (_target.IsWatchpointExit(exit, out ulong dataAddress, out bool write))
        {
            _watchStopPc = _target.WatchpointStopsBeforeAccess ? _target.Pc : null; // x86: a trap, the access is done
            return Stopped(watch: WatchReply(dataAddress, write));
        }
        if (_target.IsStepExit(exit) && (_stepping || _steppingOverBreakpoint))
        {
            // The step exit replaces KVM_EXIT_HLT and the vCPU would go on after it (x86.c kvm_vcpu_do_singlestep):
            // a stepped HLT ends the call as its exit would have.
            if (_stepIsHalt) return new RunStop(GuestOutcome.Halt, "HLT with interrupts disabled");
            return StepDone();
        }
        return Stopped();
    }

    public RunStop? AfterExit(VcpuExit exit)
    {
        if (_detached || _connection is null || !(_stepping || _steppingOverBreakpoint)) return null;
        return _target.StepCompletedAt(exit, _stepFrom) ? StepDone() : null;
    }

    public void End(RunStop stop, int? exitStatus, int? exceptionVector)
    {
        StopWatching();
        if (_connection is { } connection && !_detached)
        {
            string reply = exitStatus is int status
                ? $"W{status & 0xFF:x2}"
                : $"X{Signal(stop.Outcome, exceptionVector):x2}";
            connection.Send(reply);
        }
        Close();
        ResumeClock();
    }

    private RunStop? StepDone()
    {
        bool over = _steppingOverBreakpoint;
        _stepping = _steppingOverBreakpoint = false;
        if (!over) return Stopped();
        // Past the breakpoint (or the watched access): run on with the breakpoints and watchpoints in place.
        _target.Arm(_breakpoints, _watchpoints);
        return null;
    }

    /// <summary>
    /// The guest stopped (a breakpoint, a finished step: SIGTRAP; gdb's interrupt: SIGINT): report it and serve gdb
    /// until it resumes.
    /// </summary>
    private RunStop? Stopped(int signal = 5, string? watch = null)
    {
        // The interrupt watch of a 'c' ends here, not at a step over a breakpoint that the continue goes on from.
        StopWatching();
        _stepping = _steppingOverBreakpoint = false;
        PauseClock();
        if (!_connection!.Send(StopReply(signal) + watch)) return Detach();
        return Serve();
    }

    /// <summary>Watches for gdb's interrupt while the guest runs on after a 'c' (the only time gdb sends one).</summary>
    private void StartWatching(RspConnection connection)
    {
        _stopWatching = false;
        _interruptRequested = false;
        _watcher = new Thread(() =>
        {
            while (!_stopWatching)
            {
                if (!connection.PollInterrupt(10_000)) continue;
                _interruptRequested = true; // before the kick: the run loop asks Interrupted after KVM_RUN returns EINTR
                _vcpu.Kick();
                return;
            }
        })
        { IsBackground = true, Name = "KvmSharp.Vmm gdb interrupt" };
        _watcher.Start();
    }

    /// <summary>Ends the watch (before anything else reads the connection).</summary>
    private void StopWatching()
    {
        if (_watcher is null) return;
        _stopWatching = true;
        _watcher.Join();
        _watcher = null;
    }

    /// <summary>Serves packets until gdb resumes the guest (null), kills it, or the call is kicked.</summary>
    private RunStop? Serve()
    {
        RspConnection connection = _connection!;
        while (true)
        {
            switch (connection.Receive())
            {
                case RspReceive.Aborted:
                    return KickedStop();
                case RspReceive.Closed:
                    return Detach();
                case RspReceive.Interrupt:
                    continue; // already stopped
            }
            string packet = Encoding.Latin1.GetString(connection.Packet);
            switch (packet.Length > 0 ? packet[0] : '\0')
            {
                case 'c':
                case 's':
                    if (packet.Length > 1)
                    {
                        if (Hex.Number(packet.AsSpan(1)) is not ulong at)
                        {
                            connection.Send("E01");
                            continue;
                        }
                        _target.Pc = at;
                    }
                    Resume(step: packet[0] == 's');
                    return null;
                case 'k':
                    // No reply (gdb/doc "Packets": k).
                    Close();
                    return new RunStop(GuestOutcome.Cancelled, "killed by the debugger (gdb's k packet)");
                case 'D':
                    connection.Send("OK");
                    return Detach();
                case 'v' when packet.StartsWith("vKill", StringComparison.Ordinal):
                    connection.Send("OK");
                    Close();
                    return new RunStop(GuestOutcome.Cancelled, "killed by the debugger (gdb's vKill packet)");
                default:
                    string reply = Answer(packet, connection);
                    if (reply != NoReply && !connection.Send(reply)) return Detach();
                    break;
            }
        }
    }

    /// <summary>The reply to a packet that does not resume, kill or detach.</summary>
    private string Answer(string packet, RspConnection connection)
    {
        if (packet.Length == 0) return "";
        ReadOnlySpan<char> rest = packet.AsSpan(1);
        switch (packet[0])
        {
            case '?':
                return StopReply();
            case 'g':
                return Hex.Encode(_target.ReadAll());
            case 'G':
                return Hex.Decode(rest) is byte[] packetBytes && _target.WriteAll(packetBytes) ? "OK" : "E01";
            case 'p':
            {
                if (Hex.Number(rest) is not ulong n || n > int.MaxValue) return "E01";
                int size = _target.Size((int)n);
                if (size == 0) return "E01";
                return Hex.Encode(_target.ReadAll().AsSpan(_target.Offset((int)n), size));
            }
            case 'P':
            {
                int eq = rest.IndexOf('=');
                if (eq < 0 || Hex.Number(rest[..eq]) is not ulong n || n >= (ulong)_target.Count || Hex.Decode(rest[(eq + 1)..]) is not byte[] value)
                    return "E01";
                return _target.Write((int)n, value) ? "OK" : "E01";
            }
            case 'm':
            {
                if (!AddressAndLength(rest, out ulong address, out ulong length) || length > RspConnection.MaxPacket / 2) return "E01";
                if (!Readable(address, length)) return "E14"; // EFAULT
                var bytes = new byte[length];
                _memory.Read(address, bytes);
                return Hex.Encode(bytes);
            }
            case 'M':
            case 'X':
            {
                int colon = rest.IndexOf(':');
                if (colon < 0 || !AddressAndLength(rest[..colon], out ulong address, out ulong length)) return "E01";
                byte[]? data = packet[0] == 'M'
                    ? Hex.Decode(rest[(colon + 1)..])
                    : connection.Packet.AsSpan(2 + colon).ToArray(); // X: binary, unescaped by the packet layer
                if (data is null || (ulong)data.Length != length) return "E01";
                if (length == 0) return "OK"; // gdb's probe of X
                if (!Readable(address, length)) return "E14";
                _memory.Write(address, data);
                return "OK";
            }
            case 'Z':
            case 'z':
                return Breakpoint(packet[0] == 'Z', rest);
            case 'H':
            case 'T':
                return "OK"; // one thread
            case 'q':
                return Query(packet);
            case 'Q':
                if (packet == "QStartNoAckMode")
                {
                    // The OK is acked in ack mode; acks stop after it (gdb/doc "Packet Acknowledgment").
                    connection.Send("OK");
                    connection.NoAck = true;
                    return NoReply;
                }
                return "";
            default:
                return ""; // unsupported, including vCont? and vMustReplyEmpty
        }
    }

    /// <summary>Sent instead of a reply already sent.</summary>
    private const string NoReply = "\0";

    private string Query(string packet)
    {
        if (packet.StartsWith("qSupported", StringComparison.Ordinal))
            return $"PacketSize={RspConnection.MaxPacket:x};QStartNoAckMode+;qXfer:features:read+";
        if (packet == "qAttached") return "1"; // gdb detaches on quit: the call goes on
        if (packet == "qC") return "QC1";
        if (packet == "qfThreadInfo") return "m1";
        if (packet == "qsThreadInfo") return "l";
        const string features = "qXfer:features:read:target.xml:";
        if (packet.StartsWith(features, StringComparison.Ordinal))
        {
            if (!AddressAndLength(packet.AsSpan(features.Length), out ulong offset, out ulong length)) return "E01";
            string xml = _target.TargetXml;
            if (offset >= (ulong)xml.Length) return "l";
            int take = (int)Math.Min(length, (ulong)xml.Length - offset);
            return ((int)offset + take >= xml.Length ? "l" : "m") + xml.Substring((int)offset, take);
        }
        return "";
    }

    private string Breakpoint(bool insert, ReadOnlySpan<char> rest)
    {
        // Z0/Z1,addr,kind: software and hardware execute breakpoints, both in the debug registers (see the class);
        // Z2/Z3/Z4,addr,length: write, read and access watchpoints in the host's watchpoint registers, where the target
        // has them — on x86 only where the kernel raises data breakpoints (X86_64GdbTarget), and never Z3 —; the empty
        // reply makes gdb watch in software.
        if (rest.Length < 2 || rest[1] != ',' || rest[0] is < '0' or > '4') return "";
        bool watch = rest[0] >= '2';
        if (watch && (!_target.SupportsWatchKind((GdbWatchKind)(rest[0] - '0')) || _target.WatchpointRegisters == 0)) return "";
        ReadOnlySpan<char> args = rest[2..];
        int comma = args.IndexOf(',');
        if (comma < 0 || Hex.Number(args[..comma]) is not ulong address || Hex.Number(args[(comma + 1)..]) is not ulong kind) return "E01";
        if (watch) return Watchpoint(insert, (GdbWatchKind)(rest[0] - '0'), address, kind);
        if (!insert)
        {
            _breakpoints.Remove(address);
            return "OK";
        }
        if (_breakpoints.Contains(address)) return "OK";
        if (_breakpoints.Count + SharedWatchpointRegisters() >= _target.BreakpointRegisters) return "E1c"; // ENOSPC: the registers are taken
        _breakpoints.Add(address);
        return "OK";
    }

    /// <summary>
    /// Z2–Z4 / z2–z4 of <paramref name="length"/> (1–8) bytes at <paramref name="address"/>: each aligned doubleword
    /// the range touches takes one of the target's watchpoint registers on arm64 (<see cref="GdbWatchpoint.Pieces"/>),
    /// each naturally aligned 1/2/4/8-byte piece one on x86 (<see cref="GdbTarget.WatchpointRegistersFor"/>); more
    /// than it has is refused with ENOSPC, like a fifth breakpoint.
    /// </summary>
    private string Watchpoint(bool insert, GdbWatchKind kind, ulong address, ulong length)
    {
        if (length is 0 or > GdbWatchpoint.MaxLength || address > ulong.MaxValue - length) return "E01";
        var watchpoint = new GdbWatchpoint(kind, address, (int)length);
        if (!insert)
        {
            _watchpoints.Remove(watchpoint);
            return "OK";
        }
        if (_watchpoints.Contains(watchpoint)) return "OK";
        int used = _watchpoints.Sum(_target.WatchpointRegistersFor), need = _target.WatchpointRegistersFor(watchpoint);
        if (used + need > _target.WatchpointRegisters) return "E1c";
        if (_target.WatchpointsShareBreakpointRegisters && _breakpoints.Count + used + need > _target.BreakpointRegisters) return "E1c";
        _watchpoints.Add(watchpoint);
        return "OK";
    }

    /// <summary>The registers the watchpoints take from the breakpoints' (x86: they share DR0–DR3), else 0.</summary>
    private int SharedWatchpointRegisters() =>
        _target.WatchpointsShareBreakpointRegisters ? _watchpoints.Sum(_target.WatchpointRegistersFor) : 0;

    /// <summary>
    /// The stop reply's watch part (gdb/doc "Stop Reply Packets": <c>watch</c>, <c>rwatch</c>, <c>awatch</c> followed by
    /// the data address) for an access that wrote (<paramref name="write"/>) or read at <paramref name="dataAddress"/>:
    /// the type of the watchpoint that stopped it — one holding the address and stopping on that access, a write or
    /// read watchpoint before an access one. The address is the exit's (FAR) when a watched range holds it; the Arm
    /// ARM lets FAR be any address from the access's lowest byte on (D2.10.5), so otherwise it is the start of the
    /// nearest watched range above it, which is what gdb looks the watchpoint up by.
    /// </summary>
    private string WatchReply(ulong dataAddress, bool write)
    {
        var candidates = _watchpoints.Where(w => w.Matches(write)).OrderBy(w => w.Kind == GdbWatchKind.Access ? 1 : 0).ToList();
        GdbWatchpoint? hit = null;
        foreach (GdbWatchpoint w in candidates)
        {
            if (w.Contains(dataAddress))
            {
                hit = w;
                break;
            }
        }
        ulong reported = dataAddress;
        if (hit is null)
        {
            hit = candidates.Where(w => w.Address > dataAddress).OrderBy(w => w.Address).Cast<GdbWatchpoint?>().FirstOrDefault()
                ?? candidates.Cast<GdbWatchpoint?>().FirstOrDefault();
            if (hit is GdbWatchpoint nearest) reported = nearest.Address;
        }
        GdbWatchKind kind = hit?.Kind ?? (write ? GdbWatchKind.Write : GdbWatchKind.Read);
        string name = kind switch
        {
            GdbWatchKind.Write => "watch",
            GdbWatchKind.Read => "rwatch",
            _ => "awatch",
        };
        return string.Create(CultureInfo.InvariantCulture, $"{name}:{reported:x};");
    }

    private static bool AddressAndLength(ReadOnlySpan<char> text, out ulong address, out ulong length)
    {
        address = length = 0;
        int comma = text.IndexOf(',');
        if (comma < 0 || Hex.Number(text[..comma]) is not ulong a || Hex.Number(text[(comma + 1)..]) is not ulong l) return false;
        address = a;
        length = l;
        return true;
    }

    private bool Readable(ulong address, ulong length) => _memory.Contains(address, length) && _memory.IsShared(address, length);

    /// <summary>T<paramref name="signal"/> (SIGTRAP by default) with RIP expedited (gdb/doc "Stop Reply Packets").</summary>
    private string StopReply(int signal = 5)
    {
        Span<byte> pc = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(pc, _target.Pc);
        return string.Create(CultureInfo.InvariantCulture, $"T{signal:x2}{_target.PcRegister:x2}:{Hex.Encode(pc)};");
    }

    /// <summary>The vCPU's debug state for the way gdb resumed it, then the clock again.</summary>
    private void Resume(bool step)
    {
        ulong rip = _target.Pc;
        // A watchpoint stops before its access: the same watchpoint would stop the instruction again.
        bool onWatchStop = _watchStopPc == rip && _watchpoints.Count > 0;
        bool onBreakpoint = _breakpoints.Contains(rip) || onWatchStop;
        _watchStopPc = null;
        if (step || onBreakpoint)
        {
            // Breakpoints off while stepping: the host's breakpoint at RIP would fire before the instruction again.
            _stepping = step;
            _steppingOverBreakpoint = !step;
            _stepFrom = rip;
            _stepIsHalt = _target.EndsCallWhenStepped(_memory, rip);
            // A gdb step keeps the watchpoints (a watched access stops it), unless it steps over one that stopped it.
            _target.Step(step && !onWatchStop ? _watchpoints : []);
        }
        else
        {
            _target.Arm(_breakpoints, _watchpoints);
        }
        if (!step) StartWatching(_connection!);
        ResumeClock();
    }

    /// <summary>gdb left (D, or the connection was lost): debugging off, the call runs on.</summary>
    private RunStop? Detach()
    {
        Close();
        _detached = true;
        _stepping = _steppingOverBreakpoint = false;
        _target.Disable();
        ResumeClock();
        return null;
    }

    private RunStop KickedStop()
    {
        Close();
        GuestOutcome reason = _kicked() ?? GuestOutcome.Cancelled;
        return RunLoop.Kicked(reason);
    }

    private void Close()
    {
        StopWatching();
        _connection?.Dispose();
        _detached = true;
    }

    private void PauseClock()
    {
        if (_clockPaused) return;
        _clockPaused = true;
        _pauseClock();
    }

    private void ResumeClock()
    {
        if (!_clockPaused) return;
        _clockPaused = false;
        _resumeClock();
    }

    /// <summary>
    /// The signal of an <c>X</c> reply (gdb's own numbers, include/gdb/signals.def): a CPU exception by its kind
    /// (#DE → SIGFPE, #UD → SIGILL, #PF/#GP/#SS → SIGSEGV, #BP/#DB → SIGTRAP, else SIGBUS), a timeout SIGALRM, a kill,
    /// cancellation or disposal SIGKILL, anything else (a shutdown, a halt, an unhandled exit) SIGABRT.
    /// </summary>
    internal static int Signal(GuestOutcome outcome, int? exceptionVector) => outcome switch
    {
        GuestOutcome.Exception => exceptionVector switch
        {
            0 or 16 or 19 => 8,
            6 => 4,
            12 or 13 or 14 => 11,
            1 or 3 => 5,
            _ => 10,
        },
        GuestOutcome.Timeout => 14,
        GuestOutcome.Cancelled or GuestOutcome.Disposed => 9,
        _ => 6,
    };
}
