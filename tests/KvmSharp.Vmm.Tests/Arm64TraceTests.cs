// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="MicroVmOptions.TraceInstructions"/> on arm64 micro-VMs: the run loop single-steps the vCPU with the arm64
/// KVM_SET_GUEST_DEBUG (Arch/Arm64/Arm64GuestDebug.cs), takes each software step exit (KVM_EXIT_DEBUG, ESR class
/// 0x32) and records the PC (KVM_GET_ONE_REG) and the instruction word. On the emulated arm64 kernel, which steps as
/// arch/arm64/kvm/debug.c does (Arm64SingleStep.cs). The expected PCs come from the assembled trampoline and image.
/// </summary>
public sealed class Arm64TraceTests
{
    private static void OnArm64(Action<Kvm> body) => Arm64Kernel.Run(body);

    private static MicroVmOptions Options(Kvm kvm, int trace) => Arm64Kernel.Options(kvm) with { TraceInstructions = trace };

    /// <summary>add3(a, b) = a + b + 3; say(c): c to COM1, returns 0; loop(n): counts n down, returns 5; udf(): UDF #0; brk(): BRK #0x1234.</summary>
    private static GuestImage Image()
    {
        var p = new Arm64Program();
        var a = p.Asm;
        var start = p.Export("_start");
        var add3 = p.Export("add3");
        var say = p.Export("say");
        var loop = p.Export("loop");
        var udf = p.Export("udf");
        var brk = p.Export("brk");
        a.Bind(start);
        p.ExitWith(0);
        a.Bind(add3);
        a.Add(X(0), X(0), X(1));
        a.AddImm(X(0), X(0), 3);
        a.Ret();
        a.Bind(say);
        a.MovImm(X(9), Layout.Port(Ports.Com1));
        a.Strb(W(0), X(9));
        a.Movz(X(0), 0);
        a.Ret();
        a.Bind(loop);
        var again = a.CreateLabel();
        a.Bind(again);
        a.SubImm(X(0), X(0), 1);
        a.Cbnz(X(0), again);
        a.Movz(X(0), 5);
        a.Ret();
        a.Bind(udf);
        a.Udf();
        a.Ret();
        a.Bind(brk);
        a.Brk(0x1234);
        a.Ret();
        return p.Build(start);
    }

    private static uint Word(MicroVm vm, ulong pc)
    {
        Span<byte> word = stackalloc byte[4];
        vm.Memory.Read(pc, word);
        return BinaryPrimitives.ReadUInt32LittleEndian(word);
    }

    /// <summary>The trampoline's PCs up to its BLR, and from after it to the store to the return port (its last but one word).</summary>
    private static (List<ulong> Before, List<ulong> After) TrampolinePcs()
    {
        byte[] code = Arm64GuestCode.Trampoline();
        int words = code.Length / 4;
        int blr = Enumerable.Range(0, words).Single(i => (BinaryPrimitives.ReadUInt32LittleEndian(code.AsSpan(i * 4)) & 0xFFFF_FC1F) == 0xD63F_0000);
        var before = Enumerable.Range(0, blr + 1).Select(i => Layout.Trampoline + (ulong)(i * 4)).ToList();
        var after = Enumerable.Range(blr + 1, words - 2 - blr).Select(i => Layout.Trampoline + (ulong)(i * 4)).ToList();
        return (before, after);
    }

    private static string Show(GuestTrace? trace) => trace is null ? "(no trace)" : string.Join("\n", trace.Instructions);

    [Fact]
    public void A_traced_call_lists_the_trampoline_and_the_function_in_order_with_each_word() => OnArm64(kvm =>
    {
        GuestImage image = Image();
        using var vm = MicroVm.Create(image, Options(kvm, 1000));
        Assert.Equal(GuestArchitecture.Arm64, vm.Architecture);
        CallResult r = vm.Call("add3", 4, 5);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(12UL, r.Value);
        var trace = Assert.IsType<GuestTrace>(r.Trace);
        ulong f = image.Resolve("add3");
        var (before, after) = TrampolinePcs();
        List<ulong> expected = [.. before, f, f + 4, f + 8, .. after];
        Assert.True(expected.SequenceEqual(trace.Instructions.Select(i => i.Rip)), Show(trace));
        foreach (TracedInstruction i in trace.Instructions)
        {
            Assert.Equal(GuestArchitecture.Arm64, i.Architecture);
            Assert.Equal(4, i.Bytes.Length);
            Assert.Equal(Word(vm, i.Rip), BinaryPrimitives.ReadUInt32LittleEndian(i.Bytes.Span));
            Assert.False(i.RaisedException);
        }
        // capstone 4 (package libcapstone4) disassembles each word; without it the word is shown as objdump shows one
        // it does not decode (A64DisassemblyTests covers both).
        string add = A64Disassembler.IsAvailable ? "add x0, x0, x1" : ".inst 0x8b010000";
        Assert.Equal(add, trace.Instructions[before.Count].Disassembly);
        Assert.Equal($"0x{f:X}  {add}", trace.Instructions[before.Count].ToString());
        Assert.Equal(A64Disassembler.IsAvailable ? "add x0, x0, #3" : ".inst 0x91000c00", trace.Instructions[before.Count + 1].Disassembly);
        Assert.Equal(A64Disassembler.IsAvailable ? "ret" : ".inst 0xd65f03c0", trace.Instructions[before.Count + 2].Disassembly);
        Assert.False(trace.Truncated);
        Assert.Equal(1000, trace.Limit);
        // Every instruction but the last (the store to the return port, whose exit ended the call) had its step exit.
        Assert.Equal(expected.Count - 1, trace.StepExits);
        // A traced call has the exits of the same call untraced (step exits are not counted).
        using var plain = MicroVm.Create(image, Arm64Kernel.Options(kvm));
        CallResult untraced = plain.Call("add3", 4, 5);
        Assert.Null(untraced.Trace);
        Assert.Equal(untraced.Exits, r.Exits);
        Assert.Equal(untraced.Value, r.Value);
    });

    [Fact]
    public void An_mmio_access_inside_the_call_is_traced_once_and_its_step_comes_after_the_device() => OnArm64(kvm =>
    {
        GuestImage image = Image();
        using var vm = MicroVm.Create(image, Options(kvm, 1000));
        CallResult r = vm.Call("say", 'T');
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal("T", r.Console);
        var trace = r.Trace!;
        ulong f = image.Resolve("say");
        var body = trace.Instructions.Select(i => i.Rip).SkipWhile(pc => pc != f).TakeWhile(pc => pc >= f && pc < f + 0x100).ToList();
        // Straight-line: each PC once, 4 bytes apart, ending with the RET.
        Assert.True(body.Count >= 4, Show(trace));
        Assert.Equal(Enumerable.Range(0, body.Count).Select(i => f + (ulong)(i * 4)), body);
        Assert.Equal(0xD65F_03C0u, Word(vm, body[^1]));
        uint strb = Word(vm, body[^3]);
        Assert.Equal(0x3900_0000u, strb & 0xFFC0_0000); // STRB (unsigned offset): the COM1 store, stepped after its exit
        Assert.Equal(trace.Instructions.Count - 1, trace.StepExits);
        Assert.Equal(trace.Instructions.Count, trace.Instructions.Select(i => i.Rip).Distinct().Count());
        Assert.Equal(2, r.Exits); // the COM1 store and the return
    });

    [Fact]
    public void The_limit_is_honoured_and_the_call_still_completes() => OnArm64(kvm =>
    {
        GuestImage image = Image();
        CallResult all;
        using (var full = MicroVm.Create(image, Options(kvm, 1000)))
        {
            all = full.Call("loop", 50);
            Assert.Equal(5UL, all.Value);
            Assert.False(all.Trace!.Truncated);
            // The trampoline, 50 × (SUB, CBNZ), MOV, RET, the rest of the trampoline.
            var (before, after) = TrampolinePcs();
            Assert.Equal(before.Count + 50 * 2 + 2 + after.Count, all.Trace.Instructions.Count);
        }
        foreach (int limit in new[] { 1, 20, 100 })
        {
            using var vm = MicroVm.Create(image, Options(kvm, limit));
            CallResult r = vm.Call("loop", 50);
            Assert.True(r.IsSuccess, r.ToString());
            Assert.Equal(5UL, r.Value);
            var trace = r.Trace!;
            Assert.True(trace.Truncated);
            Assert.Equal(limit, trace.Limit);
            Assert.Equal(limit, trace.Instructions.Count);
            Assert.Equal(limit, trace.StepExits);
            Assert.Equal(all.Trace!.Instructions.Take(limit).Select(i => i.Rip), trace.Instructions.Select(i => i.Rip));
            Assert.Equal(1, r.Exits); // only the return: the rest ran unstepped
            // The next call is traced again from its start (stepping was switched off and on).
            CallResult next = vm.Call("add3", 1, 2);
            Assert.Equal(6UL, next.Value);
            Assert.Equal(Layout.Trampoline, next.Trace!.Instructions[0].Rip);
        }
    });

    [Fact]
    public void The_arm64_guest_debug_ioctl_has_the_arm64_struct_size()
    {
        // _IOW(KVMIO, 0x9b, struct kvm_guest_debug): 520 bytes on arm64 (control, pad, dbg_bcr/bvr/wcr/wvr[16]), 72 on x86.
        Assert.Equal(520, Arm64GuestDebug.GuestDebugSize);
        Assert.Equal(0x4208AE9Bu, Arm64GuestDebug.SetGuestDebugRequest);
        Assert.NotEqual(Abi.KvmIoctls.KVM_SET_GUEST_DEBUG, Arm64GuestDebug.SetGuestDebugRequest);
        Assert.Equal(0x32u, Arm64GuestDebug.EcSoftStepLow);
        Assert.Equal(3u, Arm64GuestDebug.SingleStepControl);
    }

    [Fact]
    public void A_faulting_instruction_is_traced_then_the_vector_and_the_handler() => OnArm64(kvm =>
    {
        GuestImage image = Image();
        using var vm = MicroVm.Create(image, Options(kvm, 1000));
        CallResult r = vm.Call("udf");
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        var trace = r.Trace!.Instructions;
        int at = trace.ToList().FindIndex(i => i.Rip == image.Resolve("udf"));
        Assert.True(at >= 0, Show(r.Trace));
        Assert.True(trace[at].RaisedException);
        Assert.Equal(".inst 0x00000000", trace[at].Disassembly); // UDF #0: capstone 4 does not decode it either
        // The step exception is taken at the vector (sync, current EL with SP_ELx: VBAR_EL1 + 0x200) before it runs.
        Assert.Equal(Layout.Vectors + 4 * Layout.VectorEntrySize, trace[at + 1].Rip);
        Assert.Single(trace, i => i.RaisedException);
        Assert.Equal(trace.Count - 1, r.Trace.StepExits);
        Assert.Equal(1, r.Exits);
        // The micro-VM takes calls again, traced from the trampoline.
        vm.Reset();
        CallResult again = vm.Call("add3", 1, 1);
        Assert.Equal(5UL, again.Value);
        Assert.Equal(Layout.Trampoline, again.Trace!.Instructions[0].Rip);
    });

    [Fact]
    public void A_guest_brk_while_traced_is_the_guests_exception_as_untraced() => OnArm64(kvm =>
    {
        // While the host steps, arm64 KVM hands every BRK to userspace (MDCR_EL2.TDE); the run loop gives it back to
        // the guest, so the call ends as it does untraced: the guest's vector reports EC 0x3C with the immediate.
        GuestImage image = Image();
        using var plain = MicroVm.Create(image, Arm64Kernel.Options(kvm));
        CallResult untraced = plain.Call("brk");
        using var vm = MicroVm.Create(image, Options(kvm, 1000));
        CallResult r = vm.Call("brk");
        Assert.Equal(GuestOutcome.Exception, untraced.Outcome);
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal((ulong?)0xF200_1234UL, r.Exception!.ErrorCode); // ESR_EL1: EC 0x3C, IL, ISS = the immediate
        Assert.Equal(untraced.Exception!.ErrorCode, r.Exception.ErrorCode);
        Assert.Equal(untraced.Exception.Rip, r.Exception.Rip);
        Assert.Equal(image.Resolve("brk"), r.Exception.Rip);
        Assert.Equal(untraced.Exception.Rflags, r.Exception.Rflags); // SPSR_EL1
        Assert.Equal(untraced.Exits, r.Exits);
        var trace = r.Trace!.Instructions;
        int at = trace.ToList().FindIndex(i => i.Rip == image.Resolve("brk"));
        Assert.True(at >= 0, Show(r.Trace));
        Assert.True(trace[at].RaisedException);
        Assert.Equal(A64Disassembler.IsAvailable ? "brk #0x1234" : ".inst 0xd4224680", trace[at].Disassembly);
        Assert.Equal(Layout.Vectors + 4 * Layout.VectorEntrySize, trace[at + 1].Rip);
        Assert.Single(trace, i => i.RaisedException);
        // The micro-VM's stepping is off afterwards: the next untraced-length call runs and returns.
        vm.Reset();
        Assert.Equal(5UL, vm.Call("add3", 1, 1).Value);
    });
}
