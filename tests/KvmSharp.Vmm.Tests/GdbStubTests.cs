// SPDX-License-Identifier: MIT
using System.Diagnostics;
using Iced.Intel;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Vmm.Tests.GdbTestHost;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="MicroVmOptions.GdbEndpoint"/>: the GDB remote-protocol stub (src/KvmSharp.Vmm/Debugging), driven by a
/// client of its own (<see cref="RspClient"/>) on the real kernel and the emulated one: the call stops before its
/// first instruction, registers and memory read and written, breakpoints hit, single steps, the call's end reported,
/// broken packets refused without ending the session, the clock paused while stopped, kill, detach and a lost
/// connection. In the fd-leak collection: one test counts this process's sockets.
/// </summary>
[Collection(nameof(FdLeakTests))]
public sealed class GdbStubTests
{
    /// <summary>
    /// <c>main(a, b)</c> → helper(a, b) + value (a qword in the image, 5); <c>helper(a, b)</c> → a + b;
    /// <c>spin()</c> loops for ever; <c>spin_after()</c> calls helper, then loops for ever; <c>_start</c> exits with
    /// main(3, 4) = 12.
    /// </summary>
    private static GuestImage DebugImage()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), main = p.Export("main"), helper = p.Export("helper"), second = p.Export("helper_second"),
            spin = p.Export("spin"), spinAfter = p.Export("spin_after"), value = p.Export("value");
        p.Place(ref start);
        a.mov(edi, 3);
        a.mov(esi, 4);
        a.call(main);
        p.ExitWith(eax);
        p.Place(ref main);
        a.call(helper);
        a.add(rax, __qword_ptr[value]);
        a.ret();
        p.Place(ref helper);
        a.lea(rax, __[rdi + rsi]);
        p.Place(ref second);
        a.nop();
        a.ret();
        p.Place(ref spin);
        a.jmp(spin);
        p.Place(ref spinAfter);
        a.call(helper);
        Label forever = a.CreateLabel();
        a.Label(ref forever);
        a.jmp(forever);
        a.nop();
        p.Place(ref value);
        a.dq(5UL);
        return p.Build(start);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Breakpoint_registers_memory_and_a_step_steer_the_call(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(DebugImage(), Debugged(k));
        ulong main = vm.Image.Resolve("main"), helper = vm.Image.Resolve("helper"), value = vm.Image.Resolve("value");
        using var session = DebuggedCall.Start(vm, v => v.Call("main", 1, 2));
        RspClient gdb = session.Gdb;

        string supported = gdb.Request("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386");
        Assert.Contains("PacketSize=4000", supported, StringComparison.Ordinal);
        Assert.Contains("QStartNoAckMode+", supported, StringComparison.Ordinal);
        Assert.Contains("qXfer:features:read+", supported, StringComparison.Ordinal);
        Assert.Equal("1", gdb.Request("qAttached"));
        Assert.Equal("", gdb.Request("vCont?"));
        Assert.Contains("i386:x86-64", gdb.Request("qXfer:features:read:target.xml:0,ffb"), StringComparison.Ordinal);

        // Stopped before the call's first instruction: RIP is the entry, RDI/RSI its arguments.
        Assert.Equal(main, RspClient.StopRip(gdb.Request("?")));
        string g = gdb.Request("g");
        Assert.Equal(2 * 536, g.Length); // 24 general registers, x87 (st0–st7, fctrl–fop), xmm0–xmm15, mxcsr
        Assert.Equal(main, RspClient.FromLe64(g[(16 * 16)..]));
        Assert.Equal(1UL, RspClient.FromLe64(g[(5 * 16)..])); // rdi
        Assert.Equal(2UL, RspClient.FromLe64(g[(4 * 16)..])); // rsi
        Assert.Equal(main, gdb.Register(16));

        Assert.Equal("OK", gdb.Request($"Z0,{helper:x},1"));
        Assert.Equal(helper, RspClient.StopRip(gdb.Request("c")));
        Assert.Equal(helper, gdb.Register(16));
        // The breakpoint left guest memory alone (the host's debug registers, not an INT3).
        Assert.Equal("488d0437", gdb.Request($"m{helper:x},4")); // lea rax, [rdi+rsi]

        Assert.Equal("OK", gdb.Request($"P5={RspClient.Le64(100)}")); // rdi = 100
        Assert.Equal(100UL, gdb.Register(5));
        Assert.Equal(RspClient.Le64(5), gdb.Request($"m{value:x},8"));
        // X: binary data, a '}' (0x7d) escaped as "}]" (gdb/doc "Binary Data"); length 0 is gdb's probe.
        Assert.Equal("OK", gdb.Request($"X{value:x},0:"));
        Assert.Equal("OK", gdb.Request($"X{value:x},8:}}]\0\0\0\0\0\0\0"));
        Assert.Equal(RspClient.Le64(0x7d), gdb.Request($"m{value:x},8"));
        Assert.Equal("OK", gdb.Request($"M{value:x},8:{RspClient.Le64(1000)}"));
        Assert.Equal(RspClient.Le64(1000), gdb.Request($"m{value:x},8"));

        // One step: the LEA ran with the written RDI.
        Assert.Equal(vm.Image.Resolve("helper_second"), RspClient.StopRip(gdb.Request("s")));
        Assert.Equal(102UL, gdb.Register(0));

        Assert.Equal("OK", gdb.Request($"z0,{helper:x},1"));
        Assert.Equal("W00", gdb.Request("c"));
        CallResult r = session.Finish();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(1102UL, r.Value);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_hardware_breakpoint_in_no_ack_mode_and_the_exit_status_and_every_call_waits_again(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(DebugImage(), Debugged(k));
        ulong helper = vm.Image.Resolve("helper");
        for (int round = 0; round < 2; round++)
        {
            using var session = DebuggedCall.Start(vm, v => v.Run());
            RspClient gdb = session.Gdb;
            gdb.StartNoAckMode();
            Assert.Equal(vm.Image.Entry, RspClient.StopRip(gdb.Request("?")));
            Assert.Equal("OK", gdb.Request($"Z1,{helper:x},1"));
            Assert.Equal(helper, RspClient.StopRip(gdb.Request("c")));
            Assert.Equal(3UL, gdb.Register(5));
            // Continuing from the breakpoint steps over it: the next stop is the call's exit, status main(3, 4) = 12.
            Assert.Equal("W0c", gdb.Request("c"));
            CallResult r = session.Finish();
            Assert.Equal(GuestOutcome.Exit, r.Outcome);
            Assert.Equal(12, r.Status);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Broken_packets_are_nacked_or_refused_and_the_session_goes_on(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(DebugImage(), Debugged(k));
        ulong main = vm.Image.Resolve("main");
        using var session = DebuggedCall.Start(vm, v => v.Call("main", 1, 2));
        RspClient gdb = session.Gdb;

        gdb.SendRaw("$g#00"); // bad checksum
        Assert.Equal('-', gdb.ReadByte());
        gdb.SendRaw("$g#zz"); // not hex
        Assert.Equal('-', gdb.ReadByte());
        gdb.SendRaw("$g$?#3f"); // a packet cut short by the next: the first nacked, the second served
        Assert.Equal('-', gdb.ReadByte());
        Assert.Equal('+', gdb.ReadByte());
        Assert.Equal(main, RspClient.StopRip(gdb.Receive()));

        Assert.Equal("E01", gdb.Request("mzz,4"));
        Assert.Equal("E01", gdb.Request("m1000"));
        Assert.Equal("E14", gdb.Request($"m{vm.Memory.Size - 4:x},8")); // runs past guest memory
        Assert.Equal("E14", gdb.Request("mffffffffffff0000,10"));
        Assert.Equal("E14", gdb.Request($"M{vm.Memory.Size:x},1:00"));
        Assert.Equal("E01", gdb.Request("M1000,2:00"));
        Assert.Equal("E01", gdb.Request("p999"));
        Assert.Equal(20, gdb.Request("p18").Length); // st0: 10 bytes
        Assert.Equal("E01", gdb.Request("p39")); // past mxcsr (56)
        Assert.Equal("E01", gdb.Request("P5=12"));
        Assert.Equal("E01", gdb.Request("G1234"));
        Assert.Equal("E01", gdb.Request("Z0,zz,1"));
        // Watchpoints: not supported on x86 where the kernel raises no data breakpoints (this host's, the emulator like it:
        // X86DataBreakpointProbe), so gdb watches in software.
        Assert.Equal("", gdb.Request("Z2,1000,8"));
        Assert.Equal("", gdb.Request("Z3,1000,8"));
        Assert.Equal("", gdb.Request("Z4,1000,8"));
        Assert.Equal("", gdb.Request("Z5,1000,8"));
        Assert.Equal("", gdb.Request("qNoSuchQuery"));
        Assert.Equal("", gdb.Request("vMustReplyEmpty"));
        Assert.Equal("E01", gdb.Request("cxyz"));
        for (int i = 0; i < 4; i++) Assert.Equal("OK", gdb.Request($"Z1,{0x1000 + i:x},1"));
        Assert.Equal("E1c", gdb.Request("Z1,2000,1")); // DR0–DR3 taken
        for (int i = 0; i < 4; i++) Assert.Equal("OK", gdb.Request($"z1,{0x1000 + i:x},1"));

        // Registers are as they were: nothing above changed the call.
        Assert.Equal(main, gdb.Register(16));
        Assert.Equal("W00", gdb.Request("c"));
        CallResult r = session.Finish();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(8UL, r.Value);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void The_wall_clock_limit_counts_only_while_the_guest_runs(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(DebugImage(), Debugged(k, TimeSpan.FromSeconds(1)));

        // Stopped for twice the limit: the call still exits.
        DebuggedCall session = DebuggedCall.Start(vm, v => v.Call("main", 1, 2));
        using (var gdb = session.Gdb)
        {
            Assert.StartsWith("T05", gdb.Request("?"), StringComparison.Ordinal);
            Thread.Sleep(2000);
            Assert.Equal("W00", gdb.Request("c"));
        }
        Assert.Equal(GuestOutcome.Exit, session.Finish().Outcome);

        // Running for ever: the limit ends the call a limit's time after gdb resumed it, reported as SIGALRM.
        session = DebuggedCall.Start(vm, v => v.Call("spin"));
        using (var gdb = session.Gdb)
        {
            Assert.StartsWith("T05", gdb.Request("?"), StringComparison.Ordinal);
            Thread.Sleep(1200);
            var clock = Stopwatch.StartNew();
            Assert.Equal("X0e", gdb.Request("c"));
            Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(900), $"the limit fired {clock.Elapsed} after the guest resumed");
        }
        Assert.Equal(GuestOutcome.Timeout, session.Finish().Outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Kill_ends_the_call_and_detach_lets_the_next_one_run_on(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(DebugImage(), Debugged(k));
        DebuggedCall session = DebuggedCall.Start(vm, v => v.Call("spin"));
        using (var gdb = session.Gdb)
        {
            Assert.StartsWith("T05", gdb.Request("?"), StringComparison.Ordinal);
            gdb.Send("k");
        }
        CallResult killed = session.Finish();
        Assert.Equal(GuestOutcome.Cancelled, killed.Outcome);
        Assert.Contains("killed by the debugger", killed.Detail, StringComparison.Ordinal);
        Assert.False(vm.IsFaulted);

        session = DebuggedCall.Start(vm, v => v.Call("main", 1, 2));
        using (var gdb = session.Gdb)
        {
            Assert.Equal("OK", gdb.Request($"Z0,{vm.Image.Resolve("helper"):x},1"));
            Assert.Equal("OK", gdb.Request("D"));
        }
        CallResult detached = session.Finish();
        Assert.Equal(GuestOutcome.Exit, detached.Outcome);
        Assert.Equal(8UL, detached.Value);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Gdbs_interrupt_stops_a_running_guest_with_sigint(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(DebugImage(), Debugged(k, TimeSpan.FromSeconds(20)));
        ulong spin = vm.Image.Resolve("spin");
        using var session = DebuggedCall.Start(vm, v => v.Call("spin"));
        RspClient gdb = session.Gdb;
        gdb.Send("c");
        Thread.Sleep(200);
        Assert.False(session.Call.IsCompleted);
        gdb.SendRaw("\u0003");
        string stop = gdb.Receive();
        Assert.StartsWith("T02", stop, StringComparison.Ordinal); // SIGINT
        ulong rip = gdb.Register(16);
        Assert.True(rip == spin, $"stopped at 0x{rip:X}, not in spin (0x{spin:X})");
        // Stopped, it can be stepped and continued like any other stop, and interrupted again.
        Assert.Equal(spin, RspClient.StopRip(gdb.Request("s")));
        gdb.Send("c");
        Thread.Sleep(100);
        gdb.SendRaw("\u0003");
        Assert.StartsWith("T02", gdb.Receive(), StringComparison.Ordinal);
        gdb.Send("k");
        Assert.Equal(GuestOutcome.Cancelled, session.Finish().Outcome);

        // A continue from a breakpoint (a step over it first, then the run on) is interrupted as well.
        ulong helper = vm.Image.Resolve("helper");
        using var afterBreakpoint = DebuggedCall.Start(vm, v => v.Call("spin_after"));
        RspClient again = afterBreakpoint.Gdb;
        Assert.Equal("OK", again.Request($"Z0,{helper:x},1"));
        Assert.Equal(helper, RspClient.StopRip(again.Request("c")));
        again.Send("c");
        Thread.Sleep(200);
        Assert.False(afterBreakpoint.Call.IsCompleted);
        again.SendRaw("\u0003");
        Assert.StartsWith("T02", again.Receive(), StringComparison.Ordinal);
        Assert.NotEqual(helper, again.Register(16));
        again.Send("k");
        Assert.Equal(GuestOutcome.Cancelled, afterBreakpoint.Finish().Outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_cancellation_while_waiting_for_gdb_ends_the_call(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(DebugImage(), Debugged(k));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        CallResult r = vm.Call("main", [1, 2], cancel.Token);
        Assert.Equal(GuestOutcome.Cancelled, r.Outcome);
        Assert.False(vm.IsFaulted);
    }

    /// <summary>
    /// gdb goes away at a breakpoint: the call runs on to its end, and once the micro-VM is disposed no socket,
    /// KVM descriptor or mapping of it is left (this class runs with the fd-leak tests, alone).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_lost_connection_ends_the_session_and_the_call_runs_out_without_leaks(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        int socketsBefore = Sockets();
        var kvmBefore = KvmFds.Kvm();
        int emulatedBefore = k.Emulator?.OpenFdCount ?? 0;
        using (var vm = MicroVm.Create(DebugImage(), Debugged(k)))
        {
            Assert.Equal(socketsBefore + 1, Sockets()); // the listener
            ulong helper = vm.Image.Resolve("helper");
            DebuggedCall session = DebuggedCall.Start(vm, v => v.Call("main", 1, 2));
            using (var gdb = session.Gdb)
            {
                Assert.Equal("OK", gdb.Request($"Z0,{helper:x},1"));
                Assert.Equal(helper, RspClient.StopRip(gdb.Request("c")));
            }
            CallResult r = session.Finish();
            Assert.Equal(GuestOutcome.Exit, r.Outcome);
            Assert.Equal(8UL, r.Value);
            Assert.Equal(socketsBefore + 1, Sockets()); // the connection is closed, the listener stays
            // The micro-VM takes the next call (a new session).
            session = DebuggedCall.Start(vm, v => v.Call("main", 2, 2));
            using (var gdb = session.Gdb)
                Assert.Equal("W00", gdb.Request("c"));
            Assert.Equal(9UL, session.Finish().Value);
        }
        Assert.Equal(socketsBefore, Sockets());
        Assert.Empty(KvmFds.Kvm().Except(kvmBefore));
        if (k.Emulator is { } emulator) Assert.Equal(emulatedBefore, emulator.OpenFdCount);
    }

    [Fact]
    public void Options_that_cannot_be_debugged_are_refused()
    {
        using var k = TestKernel.Emulated();
        var traced = Assert.Throws<MicroVmException>(() => MicroVm.Create(DebugImage(), Debugged(k) with { TraceInstructions = 10 }));
        Assert.Contains("GdbEndpoint", traced.Message, StringComparison.Ordinal);
        var sealedVm = Assert.Throws<MicroVmException>(() => MicroVm.Create(DebugImage(), Debugged(k) with { VmType = VmType.Snp }));
        Assert.Contains("GdbEndpoint", sealedVm.Message, StringComparison.Ordinal);
        // A taken endpoint is refused at creation, with nothing left behind.
        using var first = MicroVm.Create(DebugImage(), Debugged(k));
        var taken = Assert.Throws<MicroVmException>(() => MicroVm.Create(DebugImage(), k.Options(null) with { GdbEndpoint = first.DebuggerEndpoint }));
        Assert.Contains("cannot listen", taken.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Real gdb, in batch mode, when this machine has it (it is not installed for CI): a breakpoint on an exported
    /// function, registers and memory read and written through gdb's own commands, a stepi, and the call's exit.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Real_gdb_breaks_steps_and_changes_the_call(string kernel)
    {
        SkipUnlessGdb();
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(DebugImage(), Debugged(k));
        ulong helper = vm.Image.Resolve("helper"), second = vm.Image.Resolve("helper_second"), value = vm.Image.Resolve("value");
        Task<CallResult> call = Task.Run(() => vm.Call("main", 1, 2));
        string output = RunRealGdb(vm.DebuggerEndpoint!,
            $"break *0x{helper:x}",
            "continue",
            "printf \"at=%lx rdi=%ld\\n\", $rip, $rdi",
            "set $rdi = 40",
            $"set *(unsigned long *)0x{value:x} = 500",
            $"printf \"value=%ld\\n\", *(unsigned long *)0x{value:x}",
            "stepi",
            "printf \"stepped=%lx rax=%ld\\n\", $rip, $rax",
            "info registers eflags",
            "delete",
            "continue");
        Assert.Contains($"at={helper:x} rdi=1", output, StringComparison.Ordinal);
        Assert.Contains("value=500", output, StringComparison.Ordinal);
        Assert.Contains($"stepped={second:x} rax=42", output, StringComparison.Ordinal);
        Assert.Contains("exited normally", output, StringComparison.Ordinal);
        CallResult r = Finish(call);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.True(r.Value == 542UL, output);
    }

    /// <summary><c>add3(a, b)</c> → a + b + 3; <c>brk()</c>: BRK #0x77 (the guest's own breakpoint instruction).</summary>
    private static GuestImage Arm64Image()
    {
        var p = new Arm64Program();
        var a = p.Asm;
        var start = p.Export("_start");
        var add3 = p.Export("add3");
        var brk = p.Export("brk");
        a.Bind(start);
        p.ExitWith(0);
        a.Bind(add3);
        a.Add(A64Register.X(0), A64Register.X(0), A64Register.X(1));
        a.AddImm(A64Register.X(0), A64Register.X(0), 3);
        a.Ret();
        a.Bind(brk);
        a.Brk(0x77);
        a.Ret();
        return p.Build(start);
    }

    /// <summary>
    /// An arm64 micro-VM on the emulated arm64 kernel: the call stops at the trampoline, breakpoints take as many of the
    /// host's DBGBVR/DBGBCR pairs as it has (six), one on add3 is hit, x0 is read and written, a step runs the ADD, the call exits with the changed value.
    /// </summary>
    [Fact]
    public void An_arm64_call_stops_at_a_breakpoint_and_takes_a_written_register() => Arm64Kernel.Run(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Image(), Arm64Kernel.Options(kvm) with { GdbEndpoint = AnyLoopbackPort });
        ulong add3 = vm.Image.Resolve("add3");
        DebuggedCall session = DebuggedCall.Start(vm, v => v.Call("add3", 1, 2));
        using (var gdb = session.Gdb)
        {
            gdb.StartNoAckMode();
            Assert.Contains("aarch64", gdb.Request("qXfer:features:read:target.xml:0,ffb"), StringComparison.Ordinal);
            Assert.Equal(Arch.Arm64.Layout.Trampoline, RspClient.StopRip(gdb.Request("?"), 32));
            Assert.Equal(2 * 788, gdb.Request("g").Length); // x0–x30, sp, pc, cpsr, v0–v31, fpsr, fpcr
            // The emulated host's six breakpoint registers (ID_AA64DFR0_EL1.BRPs = 5): a seventh is refused (ENOSPC).
            for (int i = 1; i <= 5; i++) Assert.Equal("OK", gdb.Request($"Z1,{0x1000 + 4 * i:x},4"));
            Assert.Equal("OK", gdb.Request($"Z0,{add3:x},4"));
            Assert.Equal("E1c", gdb.Request("Z0,2000,4"));
            for (int i = 1; i <= 5; i++) Assert.Equal("OK", gdb.Request($"z1,{0x1000 + 4 * i:x},4"));
            Assert.Equal(add3, RspClient.StopRip(gdb.Request("c"), 32));
            Assert.Equal(1UL, gdb.Register(0));
            Assert.Equal(2UL, gdb.Register(1));
            Assert.Equal("0000018b", gdb.Request($"m{add3:x},4")); // ADD X0, X0, X1 (0x8B010000), memory untouched
            Assert.Equal("OK", gdb.Request($"P0={RspClient.Le64(100)}"));
            Assert.Equal(add3 + 4, RspClient.StopRip(gdb.Request("s"), 32));
            Assert.Equal(102UL, gdb.Register(0));
            Assert.Equal(32, gdb.Request("p22").Length); // v0: 16 bytes
            Assert.Equal("W00", gdb.Request("c"));
        }
        CallResult r = session.Finish();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(105UL, r.Value);

        // The guest's own BRK, under a continue, goes to the guest's vector: the call ends in its exception as it
        // would undebugged, reported to gdb as a signal.
        session = DebuggedCall.Start(vm, v => v.Call("brk"));
        using (var gdb = session.Gdb)
            Assert.StartsWith("X", gdb.Request("c"), StringComparison.Ordinal);
        r = session.Finish();
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(vm.Image.Resolve("brk"), r.Rip);
    });

    private static int Sockets() =>
        new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos().Count(f => f.LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true);
}
