// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="MicroVmOptions.TraceInstructions"/>: the run loop single-steps the call and records every instruction,
/// the OUT whose step exit this host loses included, on the real kernel and the emulator alike; the limit, the exit
/// budget, and stepping switched off again after every call (however it ended) and after Reset/Restore.
/// </summary>
public sealed class TraceTests
{
    /// <summary>
    /// <c>steps(a, b)</c> → a + b + 3, branch-free, with one OUT (a console byte) and one IN (COM1's LSR) on the way;
    /// untraced it makes three exits (OUT, IN, the trampoline's OUT).
    /// </summary>
    private static GuestImage StepsImage()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), steps = p.Export("steps");
        p.Place(ref start);
        p.ExitWith(0);
        p.Place(ref steps);
        a.lea(rax, __[rdi + rsi]);
        a.add(rax, 3);
        a.mov(r8, rax);
        a.mov(dx, Ports.Com1);
        a.mov(al, (byte)'T');
        a.@out(dx, al);
        a.mov(dx, (ushort)(Ports.Com1 + 5));
        a.@in(al, dx);
        a.nop();
        a.mov(rax, r8);
        a.ret();
        return p.Build(start);
    }

    private static MicroVmOptions Traced(TestKernel k, int limit, MicroVmOptions? template = null) =>
        k.Options(null, template) with { TraceInstructions = limit };

    /// <summary>
    /// What the trace must be for a branch-free path: decoded with Iced from <paramref name="from"/> in guest memory
    /// until (and with) the first instruction <paramref name="last"/> accepts.
    /// </summary>
    private static List<(ulong Rip, byte[] Bytes)> Walk(MicroVm vm, ulong from, Func<Instruction, bool> last)
    {
        var path = new List<(ulong, byte[])>();
        ulong rip = from;
        while (true)
        {
            var bytes = new byte[15];
            vm.Memory.Read(rip, bytes);
            Instruction instruction = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(bytes), rip).Decode();
            Assert.False(instruction.IsInvalid);
            path.Add((rip, bytes[..instruction.Length]));
            if (last(instruction)) return path;
            rip = instruction.NextIP;
        }
    }

    private static string Show(GuestTrace trace) => string.Join("\n", trace.Instructions);

    /// <summary>
    /// Time-free evidence that single-stepping is off: the vCPU, pointed at the trampoline's final HLT, ends KVM_RUN
    /// with KVM_EXIT_HLT (with stepping on the step exit would replace it).
    /// </summary>
    /// <param name="vm">The micro-VM, between calls.</param>
    /// <param name="afterTimeout">
    /// The call timed out while stepping: the kick may have left the last step trap pending, which this host reports
    /// on the next KVM_RUN before anything runs (the run loop ignores that one exit); allow it once.
    /// </param>
    private static void AssertSteppingOff(MicroVm vm, bool afterTimeout = false)
    {
        var regs = vm.Vcpu.GetRegs();
        ulong hlt = Layout.Trampoline + (ulong)Trampoline.Bytes.Length - 1;
        regs.rip = hlt;
        vm.Vcpu.SetRegs(regs);
        var exit = vm.Vcpu.Run();
        if (afterTimeout && exit.IsSingleStep && exit.DebugPc == hlt) exit = vm.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_branch_free_call_traces_the_assembled_instructions_with_its_outs_and_in(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(StepsImage(), Traced(k, 1000));
        var r = vm.Call("steps", 2, 5);
        Assert.True(r.IsSuccess, r.Detail);
        Assert.Equal(10UL, r.Value);
        Assert.Equal("T", r.Console);
        var trace = Assert.IsType<GuestTrace>(r.Trace);
        // The function up to its RET, then the trampoline up to the OUT that returns to the host.
        var expected = Walk(vm, vm.Image.Resolve("steps"), i => i.Mnemonic == Mnemonic.Ret)
            .Concat(Walk(vm, Layout.Trampoline, i => i.Mnemonic == Mnemonic.Out)).ToList();
        Assert.True(expected.Count == trace.Instructions.Count, Show(trace));
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Rip, trace.Instructions[i].Rip);
            Assert.Equal(expected[i].Bytes, trace.Instructions[i].Bytes.ToArray());
            Assert.False(trace.Instructions[i].RaisedException);
        }
        Assert.Equal("out dx,al", trace.Instructions[5].Disassembly);
        Assert.Equal("in al,dx", trace.Instructions[7].Disassembly);
        Assert.False(trace.Truncated);
        Assert.Equal(1000, trace.Limit);
        // Step exits are not exits: the same count as untraced (OUT, IN, return), and the OUTs lost their step exits.
        Assert.Equal(3, r.Exits);
        Assert.Equal(expected.Count - 2, trace.StepExits);
        AssertSteppingOff(vm);

        using var plain = MicroVm.Create(StepsImage(), k.Options(null));
        var untraced = plain.Call("steps", 2, 5);
        Assert.Null(untraced.Trace);
        Assert.Equal(r.Exits, untraced.Exits);
        Assert.Equal(r.Value, untraced.Value);
    }

    [KvmFact]
    public void Both_kernels_trace_the_sum_demo_identically()
    {
        List<(ulong, string)> TraceOn(string kernel)
        {
            using var k = TestKernel.Open(kernel);
            using var vm = MicroVm.Create(Sum.Image(), Traced(k, 10_000));
            var r = vm.Call("sum", DemoGuests.SumInput);
            Assert.Equal(5050UL, r.Value);
            Assert.False(r.Trace!.Truncated);
            return [.. r.Trace.Instructions.Select(i => (i.Rip, Convert.ToHexString(i.Bytes.Span)))];
        }
        var real = TraceOn(TestKernel.RealName);
        var emulated = TraceOn(TestKernel.EmulatedName);
        // xor, xor, then per byte: cmp, jae, movzx, add, inc, jmp; the last cmp, jae, ret; the trampoline's four.
        Assert.Equal(2 + 100 * 6 + 3 + 4, real.Count);
        Assert.Equal(real, emulated);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void The_limit_is_honoured_and_the_call_still_completes(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var full = MicroVm.Create(Sum.Image(), Traced(k, 10_000));
        var all = full.Call("sum", DemoGuests.SumInput).Trace!;
        using var vm = MicroVm.Create(Sum.Image(), Traced(k, 20));
        for (int call = 0; call < 2; call++)
        {
            var r = vm.Call("sum", DemoGuests.SumInput);
            Assert.True(r.IsSuccess, r.Detail);
            Assert.Equal(5050UL, r.Value);
            var trace = r.Trace!;
            Assert.True(trace.Truncated);
            Assert.Equal(20, trace.Instructions.Count);
            Assert.Equal(20, trace.StepExits);
            Assert.Equal(all.Instructions.Take(20), trace.Instructions, (x, y) => x!.Rip == y!.Rip && x.Bytes.Span.SequenceEqual(y.Bytes.Span));
            Assert.Equal(1, r.Exits); // only the return: the rest ran unstepped
            AssertSteppingOff(vm);
        }

        // A limit reached at an OUT whose step the kernel lost: switched off there, the call runs on.
        using var steps = MicroVm.Create(StepsImage(), Traced(k, 6));
        var s = steps.Call("steps", 1, 1);
        Assert.Equal(5UL, s.Value);
        Assert.True(s.Trace!.Truncated);
        Assert.Equal("out dx,al", s.Trace.Instructions[^1].Disassembly);
        Assert.Equal(3, s.Exits);
        AssertSteppingOff(steps);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_faulting_instruction_is_traced_then_the_handler_and_stepping_ends(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var image = Misbehaving.InvalidOpcodeImage();
        using var vm = MicroVm.Create(image, Traced(k, 1000));
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(6, r.Exception!.Vector);
        var trace = r.Trace!.Instructions;
        int ud2 = trace.ToList().FindIndex(i => i.Rip == image.Resolve(Misbehaving.FaultSymbol));
        Assert.True(ud2 >= 0, Show(r.Trace));
        Assert.Equal("ud2", trace[ud2].Disassembly);
        Assert.True(trace[ud2].RaisedException);
        Assert.Equal(ExceptionHandlers.Stub(6), trace[ud2 + 1].Rip);
        Assert.Equal(1, trace.Count(i => i.RaisedException));
        // The handler's walk, then its OUT to the exception port ended the call.
        Assert.Equal("out dx,al", trace[^1].Disassembly);
        Assert.Equal(1, r.Exits);
        AssertSteppingOff(vm);

        vm.Reset();
        AssertSteppingOff(vm);
        var again = vm.Run();
        Assert.Equal(GuestOutcome.Exception, again.Outcome);
        Assert.Equal(trace.Select(i => i.Rip), again.Trace!.Instructions.Select(i => i.Rip));
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_page_fault_at_a_wild_address_is_traced(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        var image = Misbehaving.PageFaultImage();
        using var vm = MicroVm.Create(image, Traced(k, 1000));
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(14, r.Exception!.Vector);
        var faulting = Assert.Single(r.Trace!.Instructions, i => i.RaisedException);
        Assert.Equal(image.Resolve(Misbehaving.FaultSymbol), faulting.Rip);
        AssertSteppingOff(vm);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_halt_ends_the_call_as_untraced(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var plain = MicroVm.Create(Misbehaving.HaltImage(), k.Options(null));
        var untraced = plain.Run();
        using var vm = MicroVm.Create(Misbehaving.HaltImage(), Traced(k, 1000));
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Halt, r.Outcome);
        Assert.Equal(untraced.Outcome, r.Outcome);
        Assert.Equal(untraced.Exits, r.Exits);
        Assert.Equal(untraced.Rip, r.Rip);
        Assert.Equal("hlt", r.Trace!.Instructions[^1].Disassembly);
        Assert.Equal(["cli", "hlt"], r.Trace.Instructions.Select(i => i.Disassembly));
        AssertSteppingOff(vm);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_timed_out_call_ends_cleanly_and_stepping_is_off(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        // A fresh VM's first KVM_RUN took up to 110 ms on a loaded host: room enough for a trace to start.
        var template = GuestRun.Quick with { Timeout = TimeSpan.FromMilliseconds(400) };
        var image = Misbehaving.EndlessLoopImage();
        foreach (int limit in new[] { MicroVmOptions.MaxTraceInstructions, 10 })
        {
            using var vm = MicroVm.Create(image, k.Options(null, template) with { TraceInstructions = limit });
            var r = vm.Run();
            Assert.Equal(GuestOutcome.Timeout, r.Outcome);
            var trace = r.Trace!;
            Assert.NotEmpty(trace.Instructions);
            Assert.Equal(limit == 10, trace.Truncated);
            if (limit == 10) Assert.Equal(10, trace.Instructions.Count);
            // xor ecx,ecx, then inc rcx / jmp alternating.
            Assert.Equal("xor ecx,ecx", trace.Instructions[0].Disassembly);
            for (int i = 1; i < trace.Instructions.Count; i++)
                Assert.Equal(i % 2 == 1 ? "inc" : "jmp", trace.Instructions[i].Disassembly.Split(' ')[0]);
            Assert.False(vm.IsFaulted);
            // The next call through the run loop: traced from its entry, as if nothing had been left over.
            var next = vm.Run();
            Assert.Equal(GuestOutcome.Timeout, next.Outcome);
            // (How far each got depends on the host's load: compare what both traces reached, at most three steps.)
            int both = Math.Min(3, Math.Min(trace.Instructions.Count, next.Trace!.Instructions.Count));
            Assert.True(both > 0, "the next traced call recorded no instruction");
            Assert.Equal(trace.Instructions.Take(both).Select(i => i.Rip), next.Trace.Instructions.Take(both).Select(i => i.Rip));
            AssertSteppingOff(vm, afterTimeout: true);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Step_exits_do_not_count_toward_max_exits(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(StepsImage(), Traced(k, 1000, GuestRun.Quick with { MaxExits = 1 }));
        var r = vm.Call("steps", 1, 2);
        // One exit (the console OUT) is allowed, after five step exits; the IN's would be the second.
        Assert.Equal(GuestOutcome.MaxExits, r.Outcome);
        Assert.Equal(1, r.Exits);
        Assert.Equal(5, r.Trace!.StepExits);
        Assert.Equal(6, r.Trace.Instructions.Count);
        AssertSteppingOff(vm);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Reset_and_restore_leave_stepping_off_and_untraced_calls_stay_untraced(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(StepsImage(), Traced(k, 4));
        var snapshot = vm.Snapshot();
        Assert.Equal(6UL, vm.Call("steps", 1, 2).Value);
        vm.Reset();
        AssertSteppingOff(vm);
        Assert.Equal(6UL, vm.Call("steps", 1, 2).Value);
        vm.Restore(snapshot);
        AssertSteppingOff(vm);
        // An untraced micro-VM's calls never step: a KVM_EXIT_DEBUG would end them as an unexpected exit.
        using var plain = MicroVm.Create(StepsImage(), k.Options(null));
        var r = plain.Call("steps", 1, 2);
        Assert.True(r.IsSuccess, r.Detail);
        Assert.Null(r.Trace);
    }

    [Fact]
    public void The_limit_is_validated()
    {
        foreach (int bad in new[] { -1, MicroVmOptions.MaxTraceInstructions + 1 })
        {
            using var k = TestKernel.Emulated();
            var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(Hello.Image(), Traced(k, bad)));
            Assert.Contains("TraceInstructions", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_traced_instruction_disassembles_in_intel_syntax()
    {
        Assert.Equal("0x100000  mov eax,1", new TracedInstruction(0x100000, new byte[] { 0xB8, 1, 0, 0, 0 }).ToString());
        Assert.Equal("(not readable)", new TracedInstruction(0xDEAD_0000, default).Disassembly);
    }
}

/// <summary>Traced calls that fault or time out leave no descriptor behind (alone, like <see cref="FdLeakTests"/>).</summary>
[Collection(nameof(FdLeakTests))]
public sealed class TraceFdLeakTests
{
    private static void TracedEndings(Func<GuestImage, MicroVmOptions, MicroVm> create, MicroVmOptions options)
    {
        foreach (var image in new[] { Misbehaving.InvalidOpcodeImage(), Misbehaving.EndlessLoopImage(), Sum.Image(), Misbehaving.HaltImage() })
        {
            using var vm = create(image, options);
            var r = vm.Run();
            Assert.NotNull(r.Trace);
            Assert.NotEqual(GuestOutcome.RunFailed, r.Outcome);
        }
    }

    [KvmFact]
    public void Traced_calls_leave_no_kvm_descriptor_behind()
    {
        var fdsBefore = KvmFds.Kvm();
        int mapsBefore = KvmFds.KvmMappings();
        TracedEndings(MicroVm.Create, GuestRun.Default with { Timeout = TimeSpan.FromMilliseconds(100), TraceInstructions = 500 });
        Assert.Empty(KvmFds.Kvm().Except(fdsBefore));
        Assert.Equal(mapsBefore, KvmFds.KvmMappings());
    }

    [Fact]
    public void Traced_calls_on_the_emulated_kernel_leave_nothing_behind()
    {
        using var k = TestKernel.Emulated();
        int fdsBefore = k.Emulator!.OpenFdCount;
        TracedEndings(MicroVm.Create, k.Options(null, GuestRun.Default with { Timeout = TimeSpan.FromMilliseconds(100), TraceInstructions = 500 }));
        Assert.Equal(fdsBefore, k.Emulator.OpenFdCount);
        Assert.Equal(0, k.Emulator.MappingCount);
        Assert.Equal(0, k.Emulator.LiveVmCount);
    }
}
