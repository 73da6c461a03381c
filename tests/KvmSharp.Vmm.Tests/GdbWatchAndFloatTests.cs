// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Emulation;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Vmm.Tests.GdbTestHost;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The gdb stub's watchpoints and floating-point / vector registers: on x86-64 (this host's kernel and the emulator like
/// it) watchpoints are refused, so real gdb watches in software by single-stepping, while on the emulator's upstream
/// preset, whose kernel raises data breakpoints, Z2 and Z4 are DR0–DR3 watchpoints reported after the access; the
/// x87 / SSE registers are read and written;
/// on the emulated arm64 kernel Z2–Z4 are the host's hardware watchpoints and v0–v31, fpsr and fpcr are read and
/// written, through raw packets (the gdb installed here has no aarch64 support).
/// </summary>
[Collection(nameof(FdLeakTests))]
public sealed class GdbWatchAndFloatTests
{
    /// <summary>
    /// <c>store(v)</c>: counter (a qword in the image, 5) = v, returns it; <c>fp_demo()</c>: returns XMM0's low qword
    /// (MOVDQU to memory, then a load). Only instructions this host's kvm_pvm runs (ExtendedStateGuest): its
    /// instruction emulator has MOVDQU but not MOVQ, and x87 instructions end KVM_RUN with KVM_EXIT_INTERNAL_ERROR
    /// here and on the emulated kernel, so the x87 registers are checked through the stub alone.
    /// </summary>
    private static GuestImage X86Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), store = p.Export("store"), afterStore = p.Export("after_store"),
            afterLoad = p.Export("after_load"), fpDemo = p.Export("fp_demo"), counter = p.Export("counter"),
            xmmOut = p.Export("xmm_out");
        p.Place(ref start);
        p.ExitWith(0);
        p.Place(ref store);
        a.nop();
        a.lea(rax, __[rdi + 1]);
        a.mov(__qword_ptr[counter], rdi);
        p.Place(ref afterStore);
        a.mov(rax, __qword_ptr[counter]);
        p.Place(ref afterLoad);
        a.ret();
        p.Place(ref fpDemo);
        a.movdqu(__xmmword_ptr[xmmOut], xmm0);
        a.mov(rax, __qword_ptr[xmmOut]);
        a.ret();
        p.Place(ref counter);
        a.dq(5UL);
        p.Place(ref xmmOut);
        a.dq(0UL);
        a.dq(0UL);
        return p.Build(start);
    }

    /// <summary>
    /// Real gdb's <c>watch</c> on a guest variable: the stub refuses Z2 (x86 raises no data breakpoints here), gdb
    /// falls back to a software watchpoint — single-stepping the guest and comparing the value — and stops right after
    /// the instruction that wrote it, with the old and new values.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Real_gdb_watch_on_x86_stops_where_the_guest_writes_through_single_steps(string kernel)
    {
        SkipUnlessGdb();
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(X86Image(), Debugged(k));
        ulong counter = vm.Image.Resolve("counter"), afterStore = vm.Image.Resolve("after_store");
        Task<CallResult> call = Task.Run(() => vm.Call("store", 77));
        string output = RunRealGdb(vm.DebuggerEndpoint!,
            // gdb does not fall back to software on its own when Z2 is refused ("Could not insert hardware watchpoint"):
            // a target without hardware watchpoints is told so (gdb/doc "Set Watchpoints": can-use-hw-watchpoints).
            "set can-use-hw-watchpoints 0",
            $"watch *(long *)0x{counter:x}",
            "continue",
            "printf \"stopped=%lx\\n\", $rip",
            "delete",
            "continue");
        Assert.Contains("Watchpoint 1", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Hardware watchpoint", output, StringComparison.Ordinal);
        Assert.Contains("Old value = 5", output, StringComparison.Ordinal);
        Assert.Contains("New value = 77", output, StringComparison.Ordinal);
        Assert.Contains($"stopped={afterStore:x}", output, StringComparison.Ordinal);
        Assert.Contains("exited normally", output, StringComparison.Ordinal);
        CallResult r = Finish(call);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.True(r.Value == 77UL, output);
    }

    /// <summary>The emulated x86 kernel of the upstream preset: VMX/SVM-like data breakpoints (EmulatorConfig.X86DataBreakpoints).</summary>
    private static TestKernel UpstreamX86() => TestKernel.Emulated(EmulatorConfig.X86_64(), TestKernel.EmulatedName + " (upstream x86 preset)");

    /// <summary>
    /// The stub's probe (X86DataBreakpointProbe): the kernel like this host raises no data breakpoint for
    /// KVM_GUESTDBG_USE_HW_BP, the upstream preset does; the answer is kept per kernel, and the probe VM leaves no fd
    /// open.
    /// </summary>
    [Fact]
    public void X86_data_breakpoint_probe_tells_the_kernels_apart_and_closes_what_it_opened()
    {
        foreach (var (config, raises) in new[] { (EmulatorConfig.LikeThisHost(), false), (EmulatorConfig.X86_64(), true) })
        {
            using var kernel = new EmulatedKernel(config);
            using (var kvm = Kvm.Open(kernel))
            {
                int before = kernel.OpenFdCount;
                Assert.Equal(raises, Debugging.X86DataBreakpointProbe.Raises(kvm));
                Assert.Equal(before, kernel.OpenFdCount);
                Assert.Equal(raises, Debugging.X86DataBreakpointProbe.Raises(kvm)); // kept
            }
            Assert.Equal(0, kernel.OpenFdCount);
        }
    }

    /// <summary>An x86 watched range in naturally aligned pieces, one DR each (SDM Vol. 3A 18.2.5; gdb's nat/x86-dregs.c).</summary>
    [Fact]
    public void X86_watch_ranges_become_aligned_debug_register_pieces()
    {
        static (ulong, int)[] Pieces(ulong address, int length) =>
            [.. Debugging.X86_64GdbTarget.Pieces(new Debugging.GdbWatchpoint(Debugging.GdbWatchKind.Write, address, length))];
        Assert.Equal([(0x1000UL, 8)], Pieces(0x1000, 8));
        Assert.Equal([(0x1001UL, 1), (0x1002UL, 2), (0x1004UL, 4), (0x1008UL, 1)], Pieces(0x1001, 8));
        Assert.Equal([(0x1006UL, 2), (0x1008UL, 1)], Pieces(0x1006, 3));
        Assert.Equal([(0x1004UL, 4)], Pieces(0x1004, 4));
    }

    /// <summary>
    /// x86 watchpoints where the kernel raises data breakpoints (the emulator's upstream preset): Z2 stops after the
    /// store (a trap: RIP past it, the value written; watch: with the address), and a continue runs on without a step
    /// over; Z3 is refused (x86 has no read-only kind); Z4 stops the store and the load (awatch:); a step keeps them;
    /// breakpoints and watchpoint pieces share DR0–DR3 (ENOSPC past four); z removes them.
    /// </summary>
    [Fact]
    public void X86_watchpoints_stop_after_the_access_where_the_kernel_raises_data_breakpoints()
    {
        using var k = UpstreamX86();
        using var vm = MicroVm.Create(X86Image(), Debugged(k));
        ulong counter = vm.Image.Resolve("counter"), store = vm.Image.Resolve("store"),
            afterStore = vm.Image.Resolve("after_store"), afterLoad = vm.Image.Resolve("after_load");

        using (var session = DebuggedCall.Start(vm, v => v.Call("store", 77)))
        {
            RspClient gdb = session.Gdb;
            gdb.StartNoAckMode();
            Assert.Equal("", gdb.Request($"Z3,{counter:x},8")); // no read-only watchpoints on x86
            Assert.Equal("OK", gdb.Request($"Z2,{counter:x},8"));
            string stop = gdb.Request("c");
            Assert.Equal(afterStore, RspClient.StopRip(stop));
            Assert.EndsWith($"watch:{counter:x};", stop, StringComparison.Ordinal);
            Assert.DoesNotContain("awatch", stop, StringComparison.Ordinal);
            Assert.Equal(RspClient.Le64(77), gdb.Request($"m{counter:x},8")); // written already
            Assert.Equal("W00", gdb.Request("c")); // the load is no write
            Assert.Equal(77UL, session.Finish().Value);
        }

        // Access watchpoint on two bytes inside the counter: the 8-byte store and the 8-byte load both touch them.
        using (var session = DebuggedCall.Start(vm, v => v.Call("store", 78)))
        {
            RspClient gdb = session.Gdb;
            Assert.Equal("OK", gdb.Request($"Z4,{counter + 4:x},2"));
            string stop = gdb.Request("c");
            Assert.Equal(afterStore, RspClient.StopRip(stop));
            Assert.EndsWith($"awatch:{counter + 4:x};", stop, StringComparison.Ordinal);
            stop = gdb.Request("c");
            Assert.Equal(afterLoad, RspClient.StopRip(stop));
            Assert.EndsWith($"awatch:{counter + 4:x};", stop, StringComparison.Ordinal);
            Assert.Equal("W00", gdb.Request("c"));
            Assert.Equal(78UL, session.Finish().Value);
        }

        // A step keeps the watchpoint: stepping the store stops after it with watch:; the next step is a plain one.
        using (var session = DebuggedCall.Start(vm, v => v.Call("store", 79)))
        {
            RspClient gdb = session.Gdb; // stopped on the call's first instruction, store's NOP
            Assert.Equal(store, RspClient.StopRip(gdb.Request("?")));
            Assert.Equal("OK", gdb.Request($"Z2,{counter:x},8"));
            string stop = gdb.Request("s"); // NOP
            Assert.DoesNotContain("watch", stop, StringComparison.Ordinal);
            stop = gdb.Request("s"); // LEA
            Assert.DoesNotContain("watch", stop, StringComparison.Ordinal);
            stop = gdb.Request("s"); // the store
            Assert.Equal(afterStore, RspClient.StopRip(stop));
            Assert.EndsWith($"watch:{counter:x};", stop, StringComparison.Ordinal);
            stop = gdb.Request("s"); // the load
            Assert.Equal(afterLoad, RspClient.StopRip(stop));
            Assert.DoesNotContain("watch", stop, StringComparison.Ordinal);
            Assert.Equal("W00", gdb.Request("c"));
            Assert.Equal(79UL, session.Finish().Value);
        }

        // Eight bytes from one past a doubleword boundary take four pieces (1, 2, 4, 1): all of DR0–DR3, so no breakpoint
        // fits; the store hits some of them and is reported at the first it hit.
        ulong range = (counter & ~7UL) + 1;
        var pieces = Debugging.X86_64GdbTarget.Pieces(new Debugging.GdbWatchpoint(Debugging.GdbWatchKind.Write, range, 8)).ToList();
        Assert.Equal(4, pieces.Count);
        ulong firstHit = pieces.First(p => p.Address < counter + 8 && counter < p.Address + (ulong)p.Length).Address;
        using (var session = DebuggedCall.Start(vm, v => v.Call("store", 80)))
        {
            RspClient gdb = session.Gdb;
            Assert.Equal("OK", gdb.Request($"Z1,{afterLoad:x},1"));
            Assert.Equal("E1c", gdb.Request($"Z2,{range:x},8")); // 1 + 4 registers
            Assert.Equal("OK", gdb.Request($"z1,{afterLoad:x},1"));
            Assert.Equal("OK", gdb.Request($"Z2,{range:x},8"));
            Assert.Equal("E1c", gdb.Request($"Z1,{afterLoad:x},1"));
            Assert.Equal("E1c", gdb.Request($"Z2,{counter + 0x10:x},1"));
            string stop = gdb.Request("c");
            Assert.Equal(afterStore, RspClient.StopRip(stop));
            Assert.EndsWith($"watch:{firstHit:x};", stop, StringComparison.Ordinal);
            Assert.Equal("OK", gdb.Request($"z2,{range:x},8"));
            Assert.Equal("OK", gdb.Request($"Z2,{counter + 0x10:x},1")); // room again
            Assert.Equal("W00", gdb.Request("c"));
            Assert.Equal(80UL, session.Finish().Value);
        }
    }

    /// <summary>
    /// Real gdb's <c>watch</c> where the kernel raises data breakpoints (the emulator's upstream preset): a hardware
    /// watchpoint (Z2), stopped right after the store with the old and new values, no single-stepping.
    /// </summary>
    [SkippableFact]
    public void Real_gdb_hardware_watch_on_x86_where_the_kernel_raises_data_breakpoints()
    {
        SkipUnlessGdb();
        using var k = UpstreamX86();
        using var vm = MicroVm.Create(X86Image(), Debugged(k));
        ulong counter = vm.Image.Resolve("counter"), afterStore = vm.Image.Resolve("after_store");
        Task<CallResult> call = Task.Run(() => vm.Call("store", 77));
        string output = RunRealGdb(vm.DebuggerEndpoint!,
            $"watch *(long *)0x{counter:x}",
            "continue",
            "printf \"stopped=%lx\\n\", $rip",
            "delete",
            "continue");
        Assert.Contains("Hardware watchpoint 1", output, StringComparison.Ordinal);
        Assert.Contains("Old value = 5", output, StringComparison.Ordinal);
        Assert.Contains("New value = 77", output, StringComparison.Ordinal);
        Assert.Contains($"stopped={afterStore:x}", output, StringComparison.Ordinal);
        Assert.Contains("exited normally", output, StringComparison.Ordinal);
        CallResult r = Finish(call);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.True(r.Value == 77UL, output);
    }

    /// <summary>
    /// Real gdb sets $xmm0 and reads it back, reads mxcsr (its reset value 0x1f80: all exceptions masked), sets st0
    /// and ftag and reads them back (ftag as the stub derives it from fxsave's abridged tags and st0's value); the
    /// guest then returns XMM0's low qword — the value gdb wrote.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Real_gdb_writes_xmm0_and_reads_mxcsr_and_st0_on_x86(string kernel)
    {
        SkipUnlessGdb();
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(X86Image(), Debugged(k));
        Task<CallResult> call = Task.Run(() => vm.Call("fp_demo"));
        string output = RunRealGdb(vm.DebuggerEndpoint!,
            "set $xmm0.v2_int64[0] = 0x1122334455667788",
            "set $xmm0.v2_int64[1] = -2",
            "printf \"xmm0=%lx,%ld\\n\", $xmm0.v2_int64[0], $xmm0.v2_int64[1]",
            "printf \"mxcsr=%x\\n\", $mxcsr",
            "printf \"st0=%f fctrl=%x ftag=%x\\n\", $st0, $fctrl, $ftag",
            "set $st0 = 2.5",
            "set $ftag = 0xfffc",
            "printf \"st0=%f ftag=%x\\n\", $st0, $ftag",
            "continue");
        Assert.Contains("xmm0=1122334455667788,-2", output, StringComparison.Ordinal);
        Assert.Contains("mxcsr=1f80", output, StringComparison.Ordinal);
        Assert.Contains("st0=0.000000 fctrl=37f ftag=ffff", output, StringComparison.Ordinal); // FNINIT's state
        Assert.Contains("st0=2.500000 ftag=fffc", output, StringComparison.Ordinal);
        Assert.Contains("exited normally", output, StringComparison.Ordinal);
        CallResult r = Finish(call);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.True(r.Value == 0x1122334455667788UL, output);
    }

    /// <summary>
    /// The same through raw packets (no gdb needed): xmm0 (40) written with P and read back, mxcsr (56) 0x1f80, a G of
    /// gdb's whole layout that changes only xmm1, and st0 (24) with ftag (34): a full tag word written is kept as
    /// fxsave's abridged one, read back as derived from the value (valid, zero, empty).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void X87_and_sse_registers_are_read_and_written_through_the_stub(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(X86Image(), Debugged(k));
        using var session = DebuggedCall.Start(vm, v => v.Call("fp_demo"));
        RspClient gdb = session.Gdb;
        string xmm0 = RspClient.Le64(0xA1B2C3D4E5F60718) + RspClient.Le64(7);
        Assert.Equal("OK", gdb.Request($"P28={xmm0}"));
        Assert.Equal(xmm0, gdb.Request("p28"));
        Assert.Equal("801f0000", gdb.Request("p38")); // mxcsr
        Assert.Equal("E01", gdb.Request("P28=1122")); // wrong length

        // G: the whole packet back with xmm1 changed.
        string g = gdb.Request("g");
        Assert.Equal(2 * 536, g.Length);
        int xmm1 = 2 * (164 + 80 + 32 + 16);
        string xmm1Value = RspClient.Le64(0x0102030405060708) + RspClient.Le64(0x1112131415161718);
        Assert.Equal("OK", gdb.Request("G" + g[..xmm1] + xmm1Value + g[(xmm1 + 32)..]));
        Assert.Equal(xmm1Value, gdb.Request("p29"));
        Assert.Equal(xmm0, gdb.Request("p28"));

        Assert.Equal("7f030000", gdb.Request("p20")); // fctrl: FNINIT's 0x37f
        uint fstat = BinaryPrimitives.ReadUInt32LittleEndian(Convert.FromHexString(gdb.Request("p21")));
        Assert.Equal(0u, (fstat >> 11) & 7); // TOP 0: st0 is physical register 0
        Assert.Equal("ffff0000", gdb.Request("p22")); // ftag: all empty
        Assert.Equal("OK", gdb.Request("P18=0000000000000080ff3f")); // st0 = 1.0: significand 1 << 63, exponent 0x3fff
        Assert.Equal("0000000000000080ff3f", gdb.Request("p18"));
        Assert.Equal("OK", gdb.Request("P22=fcff0000")); // physical register 0 in use
        Assert.Equal("fcff0000", gdb.Request("p22")); // valid (0)
        Assert.Equal("OK", gdb.Request("P18=00000000000000000000"));
        Assert.Equal("fdff0000", gdb.Request("p22")); // zero (1)
        Assert.Equal("OK", gdb.Request("P18=0000000000000000ff7f"));
        Assert.Equal("feff0000", gdb.Request("p22")); // special (2): an exponent of all ones
        Assert.Equal(xmm0, gdb.Request("p28")); // the x87 writes left XMM0 alone
        Assert.Equal("W00", gdb.Request("c"));
        CallResult r = session.Finish();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(0xA1B2C3D4E5F60718UL, r.Value);
    }

    /// <summary>
    /// A watched range's doublewords and byte-address-select masks (Arm ARM D2.10.2: DBGWVR the aligned doubleword,
    /// BAS bit b for its byte b), and DBGWCR as qemu's target/arm/hyp_gdbstub.c insert_hw_watchpoint programs it:
    /// E, PAC = 0b11, LSC 0b10 write / 0b01 read / 0b11 access, BAS at bits 12:5.
    /// </summary>
    [Fact]
    public void Watchpoint_ranges_become_doubleword_and_byte_select_registers()
    {
        Assert.Equal([(0x1000UL, (byte)0xFF)], new Debugging.GdbWatchpoint(Debugging.GdbWatchKind.Write, 0x1000, 8).Pieces());
        Assert.Equal([(0x1000UL, (byte)0x30)], new Debugging.GdbWatchpoint(Debugging.GdbWatchKind.Write, 0x1004, 2).Pieces());
        var crossing = new Debugging.GdbWatchpoint(Debugging.GdbWatchKind.Access, 0x1006, 4);
        Assert.Equal([(0x1000UL, (byte)0xC0), (0x1008UL, (byte)0x03)], crossing.Pieces());
        Assert.Equal(2, crossing.Registers);
        Assert.Equal(1, new Debugging.GdbWatchpoint(Debugging.GdbWatchKind.Read, 0x1007, 1).Registers);

        Assert.Equal(new Arm64.Arm64DebugRegisterPair(0x1000, 0x1FF7), Debugging.Arm64GdbTarget.WatchpointPair(Debugging.GdbWatchKind.Write, 0x1000, 0xFF));
        Assert.Equal(new Arm64.Arm64DebugRegisterPair(0x1000, 0x1FEF), Debugging.Arm64GdbTarget.WatchpointPair(Debugging.GdbWatchKind.Read, 0x1000, 0xFF));
        Assert.Equal(new Arm64.Arm64DebugRegisterPair(0x1008, 0x077), Debugging.Arm64GdbTarget.WatchpointPair(Debugging.GdbWatchKind.Write, 0x1008, 0x03));
        Assert.Equal(new Arm64.Arm64DebugRegisterPair(0x1000, 0x181F), Debugging.Arm64GdbTarget.WatchpointPair(Debugging.GdbWatchKind.Access, 0x1000, 0xC0));
    }

    /// <summary>A doubleword of guest RAM no call uses: the bottom of the 128 KiB stack.</summary>
    private const ulong Cell = Layout.StackBottom + 0x100;

    /// <summary>
    /// <c>poke(v, address)</c>: STR x0 → [x1], then LDR x0 ← [x1], returns it; <c>get_d0()</c>: FMOV x0, d0;
    /// <c>get_fpcr()</c>: MRS x0, FPCR.
    /// </summary>
    private static GuestImage Arm64Image()
    {
        var p = new Arm64Program();
        var a = p.Asm;
        var start = p.Export("_start");
        var poke = p.Export("poke");
        var getD0 = p.Export("get_d0");
        var getFpcr = p.Export("get_fpcr");
        a.Bind(start);
        p.ExitWith(0);
        a.Bind(poke);
        a.Str(A64Register.X(0), A64Register.X(1));
        a.Ldr(A64Register.X(0), A64Register.X(1));
        a.Ret();
        a.Bind(getD0);
        a.Emit(0x9E660000); // FMOV X0, D0 (Arm ARM C7.2 FMOV (general), sf = 1, type = 01, rmode 00, opcode 110)
        a.Ret();
        a.Bind(getFpcr);
        a.Emit(0xD53B4400); // MRS X0, FPCR (op0 3, op1 3, CRn 4, CRm 4, op2 0)
        a.Ret();
        return p.Build(start);
    }

    /// <summary>
    /// arm64 v0 (34) written with P, read back, and seen by the guest's FMOV; fpcr (67) written and seen by its MRS;
    /// fpsr (66) read; the <c>g</c> packet holds all 68 registers.
    /// </summary>
    [Fact]
    public void Arm64_vector_and_fp_control_registers_are_read_and_written() => Arm64Kernel.Run(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Image(), Arm64Kernel.Options(kvm) with { GdbEndpoint = AnyLoopbackPort });
        string v0 = RspClient.Le64(0x0123456789ABCDEF) + RspClient.Le64(0xFEDCBA9876543210);
        using (var session = DebuggedCall.Start(vm, v => v.Call("get_d0")))
        {
            RspClient gdb = session.Gdb;
            gdb.StartNoAckMode();
            Assert.Contains("org.gnu.gdb.aarch64.fpu", gdb.Request("qXfer:features:read:target.xml:0,3fff"), StringComparison.Ordinal);
            Assert.Equal("OK", gdb.Request($"P22={v0}"));
            Assert.Equal(v0, gdb.Request("p22"));
            string g = gdb.Request("g");
            Assert.Equal(2 * 788, g.Length);
            Assert.Equal(v0, g.Substring(2 * 268, 32));
            Assert.Equal(8, gdb.Request("p42").Length); // fpsr
            Assert.Equal("E01", gdb.Request("p44"));
            Assert.Equal("W00", gdb.Request("c"));
            CallResult r = session.Finish();
            Assert.Equal(GuestOutcome.Exit, r.Outcome);
            Assert.Equal(0x0123456789ABCDEFUL, r.Value);
        }
        using (var session = DebuggedCall.Start(vm, v => v.Call("get_fpcr")))
        {
            RspClient gdb = session.Gdb;
            Assert.Equal("OK", gdb.Request("P43=00000001")); // FPCR.FZ (bit 24)
            Assert.Equal("00000001", gdb.Request("p43"));
            Assert.Equal("W00", gdb.Request("c"));
            Assert.Equal(0x0100_0000UL, session.Finish().Value);
        }
    });

    /// <summary>
    /// arm64 watchpoints in the host's DBGWVR/DBGWCR: Z2 stops the STR (watch:, with the data address), a continue
    /// from it steps over and the call runs on; Z3 stops only the LDR (rwatch:), under a continue and under a step; Z4
    /// on two bytes inside the doubleword
    /// stops both (awatch: with the first watched byte); a range that crosses a doubleword boundary takes two registers
    /// and stops a store to its second part; no more ranges than the host's four registers; z removes them.
    /// </summary>
    [Fact]
    public void Arm64_watchpoints_stop_writes_reads_and_accesses_with_the_data_address() => Arm64Kernel.Run(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Image(), Arm64Kernel.Options(kvm) with { GdbEndpoint = AnyLoopbackPort });
        ulong poke = vm.Image.Resolve("poke");

        // Write watchpoint: the STR stops before it writes; the LDR is not a write.
        using (var session = DebuggedCall.Start(vm, v => v.Call("poke", 41, Cell)))
        {
            RspClient gdb = session.Gdb;
            gdb.StartNoAckMode();
            Assert.Equal("OK", gdb.Request($"Z2,{Cell:x},8"));
            string stop = gdb.Request("c");
            Assert.Equal(poke, RspClient.StopRip(stop, 32));
            Assert.EndsWith($"watch:{Cell:x};", stop, StringComparison.Ordinal);
            Assert.DoesNotContain("awatch", stop, StringComparison.Ordinal);
            Assert.Equal(RspClient.Le64(0), gdb.Request($"m{Cell:x},8")); // not written yet
            Assert.Equal("W00", gdb.Request("c"));
            Assert.Equal(41UL, session.Finish().Value);
        }

        // Read watchpoint: only the LDR; then z3 and the call runs out.
        using (var session = DebuggedCall.Start(vm, v => v.Call("poke", 42, Cell)))
        {
            RspClient gdb = session.Gdb;
            Assert.Equal("OK", gdb.Request($"Z3,{Cell:x},8"));
            string stop = gdb.Request("c");
            Assert.Equal(poke + 4, RspClient.StopRip(stop, 32));
            Assert.EndsWith($"rwatch:{Cell:x};", stop, StringComparison.Ordinal);
            Assert.Equal(RspClient.Le64(42), gdb.Request($"m{Cell:x},8")); // the STR ran
            Assert.Equal("OK", gdb.Request($"z3,{Cell:x},8"));
            Assert.Equal("W00", gdb.Request("c"));
            Assert.Equal(42UL, session.Finish().Value);
        }

        // A step keeps the watchpoints: stepping the LDR stops it before it reads (rwatch:, the PC on it); the next
        // step goes over it.
        using (var session = DebuggedCall.Start(vm, v => v.Call("poke", 45, Cell)))
        {
            RspClient gdb = session.Gdb;
            Assert.Equal("OK", gdb.Request($"Z1,{poke:x},4"));
            Assert.Equal(poke, RspClient.StopRip(gdb.Request("c"), 32));
            Assert.Equal("OK", gdb.Request($"Z3,{Cell:x},8"));
            string stop = gdb.Request("s"); // the STR: no read
            Assert.Equal(poke + 4, RspClient.StopRip(stop, 32));
            Assert.DoesNotContain("watch", stop, StringComparison.Ordinal);
            stop = gdb.Request("s");
            Assert.Equal(poke + 4, RspClient.StopRip(stop, 32));
            Assert.EndsWith($"rwatch:{Cell:x};", stop, StringComparison.Ordinal);
            stop = gdb.Request("s");
            Assert.Equal(poke + 8, RspClient.StopRip(stop, 32));
            Assert.Equal(45UL, gdb.Register(0));
            Assert.Equal("W00", gdb.Request("c"));
            Assert.Equal(45UL, session.Finish().Value);
        }

        // Access watchpoint on bytes 4–5 of the doubleword (BAS 0b00110000): the 8-byte STR and LDR both touch them.
        using (var session = DebuggedCall.Start(vm, v => v.Call("poke", 43, Cell)))
        {
            RspClient gdb = session.Gdb;
            Assert.Equal("OK", gdb.Request($"Z4,{Cell + 4:x},2"));
            string stop = gdb.Request("c");
            Assert.Equal(poke, RspClient.StopRip(stop, 32));
            Assert.EndsWith($"awatch:{Cell + 4:x};", stop, StringComparison.Ordinal);
            stop = gdb.Request("c");
            Assert.Equal(poke + 4, RspClient.StopRip(stop, 32));
            Assert.EndsWith($"awatch:{Cell + 4:x};", stop, StringComparison.Ordinal);
            Assert.Equal("W00", gdb.Request("c"));
            Assert.Equal(43UL, session.Finish().Value);
        }

        // Bytes 6..9 cross into the next doubleword: two registers, and a store to the second doubleword stops.
        using (var session = DebuggedCall.Start(vm, v => v.Call("poke", 44, Cell + 8)))
        {
            RspClient gdb = session.Gdb;
            Assert.Equal("OK", gdb.Request($"Z2,{Cell + 6:x},4"));
            Assert.Equal("OK", gdb.Request($"Z2,{Cell + 0x40:x},1"));
            Assert.Equal("OK", gdb.Request($"Z2,{Cell + 0x48:x},1")); // four registers in use
            Assert.Equal("E1c", gdb.Request($"Z2,{Cell + 0x50:x},1")); // ENOSPC
            Assert.Equal("E01", gdb.Request($"Z2,{Cell:x},9")); // longer than a doubleword
            Assert.Equal("E01", gdb.Request($"Z2,{Cell:x},0"));
            string stop = gdb.Request("c");
            Assert.Equal(poke, RspClient.StopRip(stop, 32));
            Assert.EndsWith($"watch:{Cell + 8:x};", stop, StringComparison.Ordinal);
            Assert.Equal("OK", gdb.Request($"z2,{Cell + 6:x},4"));
            Assert.Equal("OK", gdb.Request($"Z2,{Cell + 0x50:x},1")); // room again
            Assert.Equal("W00", gdb.Request("c"));
            Assert.Equal(44UL, session.Finish().Value);
        }
    });
}
