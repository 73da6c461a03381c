// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Many calls into one SEV-SNP micro-VM (docs/sandbox.md, "SEV-SNP micro-VMs"): SNP_LAUNCH_FINISH seals the vCPU's
/// registers at the first call, so every call is a request the host writes into the shared call region and the VMM's
/// guest-side dispatch loop (Arch/X86_64/SnpDispatcher, private and measured) reads after the host resumes the vCPU.
/// A call that returned leaves the vCPU in the dispatcher; any other ending ends the micro-VM (typed refusal after).
/// On EmulatorConfig.X86_64(inPlaceConversion: true), the only kernel here an SNP micro-VM runs on (SnpMicroVmTests).
/// </summary>
public sealed class SnpMultiCallTests
{
    private static EmulatedKernel InPlaceConversionKernel() => new(EmulatorConfig.X86_64(inPlaceConversion: true));

    private static MicroVm CreateSnp(Kvm kvm, GuestImage image, TimeSpan? timeout = null) =>
        MicroVm.Create(image, new MicroVmOptions { Kvm = kvm, VmType = VmType.Snp, Timeout = timeout ?? TimeSpan.FromSeconds(20) });

    private const ulong DirtyValue = 0x5A5A_0000_1234_5678;

    /// <summary>
    /// <c>add6(a…f)</c> → a + b + c + d + e + f. <c>dirty()</c> leaves RBX, RBP, R10–R15 non-zero and DF set.
    /// <c>probe()</c> hands back RSP, [RSP], RFLAGS and the OR of RBX, RBP, R10–R15 at entry (4 × u64 output).
    /// <c>fault()</c>: UD2. <c>spin()</c>: an endless loop. <c>quit()</c>: exit(3). <c>tamper()</c>: writes entry 0x6000
    /// (the trampoline, below the image area) into the call region and jumps into the dispatcher. <c>own_return()</c>:
    /// result 7 and an OUT to the return port from its own code, not through the trampoline.
    /// </summary>
    private static GuestImage MultiCallGuest()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), add6 = p.Export("add6"), dirty = p.Export("dirty"), probe = p.Export("probe");
        Label fault = p.Export("fault"), spin = p.Export("spin"), quit = p.Export("quit"), tamper = p.Export("tamper");
        Label ownReturn = p.Export("own_return");
        p.Place(ref start);
        p.ExitWith(0);

        p.Place(ref add6);
        a.lea(rax, __[rdi + rsi]);
        a.add(rax, rdx);
        a.add(rax, rcx);
        a.add(rax, r8);
        a.add(rax, r9);
        a.ret();

        p.Place(ref dirty);
        a.mov(rax, DirtyValue);
        foreach (AssemblerRegister64 r in new[] { rbx, rbp, r10, r11, r12, r13, r14, r15 }) a.mov(r, rax);
        a.std();
        a.ret();

        p.Place(ref probe);
        a.pushfq(); // before any instruction that sets flags
        a.pop(rax);
        a.mov(r8, Layout.CallData);
        a.mov(__qword_ptr[r8 + 16], rax);
        a.mov(rax, rbx);
        foreach (AssemblerRegister64 r in new[] { rbp, r10, r11, r12, r13, r14, r15 }) a.or(rax, r);
        a.mov(__qword_ptr[r8 + 24], rax);
        a.mov(__qword_ptr[r8], rsp);
        a.mov(rax, __qword_ptr[rsp]);
        a.mov(__qword_ptr[r8 + 8], rax);
        a.mov(r9, CallRegion.Address(CallRegion.OutputPtr));
        a.mov(__qword_ptr[r9], r8);
        a.mov(__qword_ptr[r9 + 8], 32);
        a.xor(eax, eax);
        a.ret();

        p.Place(ref fault);
        a.ud2();

        p.Place(ref spin);
        a.jmp(spin);

        p.Place(ref quit);
        a.mov(eax, 3);
        p.ExitWith(eax);

        p.Place(ref tamper);
        a.mov(rax, CallRegion.Address(CallRegion.Entry));
        a.mov(__qword_ptr[rax], (int)Layout.Trampoline);
        a.mov(rax, SnpDispatcher.Dispatch);
        a.jmp(rax);

        p.Place(ref ownReturn);
        a.mov(rax, CallRegion.Address(CallRegion.Result));
        a.mov(__qword_ptr[rax], 7);
        a.mov(dx, Ports.Return);
        a.@out(dx, al);
        a.hlt();
        return p.Build(start);
    }

    [Fact]
    public void Several_sum_calls_in_a_row_give_their_results_in_one_sealed_micro_vm()
    {
        using var k = InPlaceConversionKernel();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var vm = CreateSnp(kvm, Sum.Image()))
        {
            byte[] data = [.. Enumerable.Range(1, 100).Select(i => (byte)i)];
            for (int round = 0; round < 3; round++)
            {
                var sum = vm.Call("sum", data);
                Assert.True(sum.IsSuccess, sum.ToString());
                Assert.Equal(5050UL, sum.Value);
                Assert.True(vm.IsSealed);
                var add = vm.Call("add", [40, (ulong)round]);
                Assert.True(add.IsSuccess, add.ToString());
                Assert.Equal(40UL + (ulong)round, add.Value);
                var reverse = vm.Call("reverse", "abcdef"u8);
                Assert.True(reverse.IsSuccess, reverse.ToString());
                Assert.Equal("fedcba"u8.ToArray(), reverse.Output.ToArray());
                byte[] words = [.. Enumerable.Range(0, 64).Select(i => (byte)(i * 7 + round))];
                Assert.Equal(Sum.Fletcher64(words), vm.Call("fletcher64", words).Value);
            }
            Assert.False(vm.IsFaulted);
        }
        Assert.Equal(0, k.LiveVmCount);
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void The_counter_keeps_its_state_across_calls_of_one_sealed_micro_vm()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, Counter.Image());
        Assert.Equal(Counter.NotInitialised, vm.Call("lookup", 5).Value);
        Assert.Equal((ulong)Counter.TableEntries, vm.Call("init", 3).Value);
        for (ulong i = 1; i <= 4; i++) Assert.Equal(i, vm.Call("increment").Value);
        Assert.Equal(4UL, vm.Call("get").Value);
        Assert.Equal(Counter.TableEntry(5, 3), vm.Call("lookup", 5).Value);
        // The globals are private: the host cannot read the counter it just saw returned.
        Assert.Equal(GuestMemoryFault.PrivatePage,
            Assert.Throws<GuestMemoryFaultException>(() => vm.Memory.Read<ulong>(Counter.CounterAddress)).Fault);
    }

    [Fact]
    public void Host_functions_serve_every_call_of_a_sealed_micro_vm()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = MicroVm.Create(HostCalling.Image(), new MicroVmOptions
        {
            Kvm = kvm, VmType = VmType.Snp, Timeout = TimeSpan.FromSeconds(20), HostFunctions = HostCalling.Functions(TextWriter.Null, seed: 3),
        });
        var expected = new Random(3);
        for (int call = 0; call < 4; call++)
        {
            var r = vm.Call("roll", 6);
            Assert.True(r.IsSuccess, r.ToString());
            Assert.Equal(1, r.HostCalls);
            Assert.Equal(1 + ((ulong)expected.NextInt64(long.MinValue, long.MaxValue) % 6), r.Value);
        }
    }

    [Fact]
    public void Arguments_and_input_at_their_limits_pass_and_one_past_is_refused_without_ending_the_micro_vm()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var sum = CreateSnp(kvm, Sum.Image());
        int capacity = (int)(Layout.CallDataEnd - Layout.CallData);
        byte[] full = new byte[capacity];
        full.AsSpan().Fill(1);
        for (int round = 0; round < 2; round++)
        {
            var r = sum.Call("sum", full);
            Assert.True(r.IsSuccess, r.ToString());
            Assert.Equal((ulong)capacity, r.Value);
            Assert.Throws<MicroVmException>(() => sum.Call("sum", new byte[capacity + 1]));
        }
        Assert.Equal(0UL, sum.Call("sum", ReadOnlySpan<byte>.Empty).Value);

        using var vm = CreateSnp(kvm, MultiCallGuest());
        Assert.Equal(21UL, vm.Call("add6", [1, 2, 3, 4, 5, 6]).Value);
        Assert.Throws<MicroVmException>(() => vm.Call("add6", [1, 2, 3, 4, 5, 6, 7]));
        Assert.Equal(ulong.MaxValue - 4, vm.Call("add6", [ulong.MaxValue, 0, 0, 0, 0, ulong.MaxValue - 3]).Value);
        Assert.Equal(6UL, vm.Call("add6", [1, 1, 1, 1, 1, 1]).Value);
        // Arguments a call does not pass are 0, not the last call's.
        Assert.Equal(3UL, vm.Call("add6", [1, 2]).Value);
        Assert.False(vm.IsFaulted);
    }

    [Fact]
    public void Every_call_enters_with_a_fresh_stack_clean_registers_and_rflags_0x2()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, MultiCallGuest());
        Assert.True(vm.Call("dirty").IsSuccess);
        var r = vm.Call("probe");
        Assert.True(r.IsSuccess, r.ToString());
        byte[] o = r.Output.ToArray();
        ulong At(int i) => BinaryPrimitives.ReadUInt64LittleEndian(o.AsSpan(i * 8));
        Assert.Equal(Layout.StackTop - 8, At(0));
        Assert.Equal(Layout.Trampoline, At(1));
        Assert.Equal(LongMode.InitialRflags, At(2));
        Assert.Equal(0UL, At(3));
    }

    [Fact]
    public void A_call_after_a_guest_exception_is_refused_with_a_typed_exception()
    {
        using var k = InPlaceConversionKernel();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var vm = CreateSnp(kvm, MultiCallGuest()))
        {
            Assert.Equal(3UL, vm.Call("add6", [1, 2]).Value);
            var fault = vm.Call("fault");
            Assert.Equal(GuestOutcome.Exception, fault.Outcome);
            Assert.Equal(6, fault.Exception!.Vector);
            Assert.Equal(vm.Image.Resolve("fault"), fault.Exception.Rip);
            Assert.True(vm.IsFaulted);
            var refused = Assert.Throws<MicroVmException>(() => vm.Call("add6", [1, 2]));
            Assert.Contains("call 2 ended as Exception", refused.Message, StringComparison.Ordinal);
            Assert.Throws<MicroVmException>(() => vm.Run());
            Assert.Throws<MicroVmException>(vm.Reset);
            Assert.Equal(SnapshotRefusal.ProtectedGuest, Assert.Throws<MicroVmSnapshotException>(() => vm.Snapshot()).Reason);
        }
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void A_timeout_in_call_2_ends_the_micro_vm()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, MultiCallGuest(), TimeSpan.FromMilliseconds(500));
        Assert.Equal(21UL, vm.Call("add6", [1, 2, 3, 4, 5, 6]).Value);
        var spin = vm.Call("spin");
        Assert.Equal(GuestOutcome.Timeout, spin.Outcome);
        Assert.True(vm.IsFaulted);
        var refused = Assert.Throws<MicroVmException>(() => vm.Call("add6", [1]));
        Assert.Contains("call 2 ended as Timeout", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_exit_status_instead_of_a_return_ends_the_micro_vm()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, MultiCallGuest());
        Assert.True(vm.Call("add6", [1]).IsSuccess);
        var quit = vm.Call("quit");
        Assert.Equal((GuestOutcome.Exit, 3), (quit.Outcome, quit.Status));
        Assert.True(vm.IsFaulted);
        var refused = Assert.Throws<MicroVmException>(() => vm.Call("add6", [1]));
        Assert.Contains("instead of returning", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_return_by_the_guest_s_own_out_gives_its_result_and_then_ends_the_micro_vm()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, MultiCallGuest());
        Assert.True(vm.Call("add6", [1]).IsSuccess);
        // The call returns as GUEST-ABI.md says (result from the call region), but the vCPU stands in the guest's
        // code, not in the dispatcher: resuming it would not run the next request.
        var r = vm.Call("own_return");
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(7UL, r.Value);
        Assert.True(vm.IsFaulted);
        var refused = Assert.Throws<MicroVmException>(() => vm.Call("add6", [1]));
        Assert.Contains("not through the trampoline", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CallAsync_takes_several_calls_on_the_vcpu_thread()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, Counter.Image());
        Assert.Equal((ulong)Counter.TableEntries, (await vm.CallAsync("init", 1)).Value);
        Task<CallResult>[] queued = [.. Enumerable.Range(0, 5).Select(_ => vm.CallAsync("increment"))];
        CallResult[] results = await Task.WhenAll(queued);
        Assert.Equal([1UL, 2, 3, 4, 5], results.Select(r => r.Value!.Value));
        Assert.Equal(5UL, (await vm.CallAsync("get")).Value);

        using var sum = CreateSnp(kvm, Sum.Image());
        Assert.Equal(6UL, (await sum.CallAsync("sum", new byte[] { 1, 2, 3 })).Value);
        Assert.Equal(15UL, (await sum.CallAsync("sum", new byte[] { 4, 5, 6 })).Value);
    }

    [Fact]
    public void An_entry_outside_the_image_is_refused_by_the_host_and_by_the_dispatcher()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, MultiCallGuest());
        // The host checks first (a refusal that changes nothing), before and after the launch.
        Assert.Contains("outside the image area", Assert.Throws<MicroVmException>(() => vm.CallAddress(Layout.Trampoline)).Message, StringComparison.Ordinal);
        Assert.False(vm.IsSealed);
        Assert.True(vm.Call("add6", [1]).IsSuccess);
        Assert.Throws<MicroVmException>(() => vm.CallAddress(vm.Memory.Size));
        Assert.Throws<MicroVmException>(() => vm.CallAddress(Layout.ImageBase - 1));
        Assert.Equal(5UL, vm.CallAddress(vm.Image.Resolve("add6"), 2, 3).Value);

        // A request changed behind the host's back: the dispatcher reads entry 0x6000 and refuses it with UD2 (#UD).
        var tampered = vm.Call("tamper");
        Assert.Equal(GuestOutcome.Exception, tampered.Outcome);
        Assert.Equal(6, tampered.Exception!.Vector);
        Assert.InRange(tampered.Exception.Rip, SnpDispatcher.Dispatch, SnpDispatcher.EntryLimit);
        Assert.Throws<MicroVmException>(() => vm.Call("add6", [1]));
    }

    [Fact]
    public void A_pool_drops_a_sealed_micro_vm_after_several_calls()
    {
        using var k = InPlaceConversionKernel();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var pool = new MicroVmPool(Counter.Image(), new MicroVmOptions { Kvm = kvm, VmType = VmType.Snp, Timeout = TimeSpan.FromSeconds(20) }, 1))
        {
            for (int use = 0; use < 2; use++)
            {
                MicroVm vm = pool.Rent();
                // A fresh micro-VM each time: the counter of the last user is not there.
                Assert.Equal(1UL, vm.Call("increment").Value);
                Assert.Equal(2UL, vm.Call("increment").Value);
                pool.Return(vm);
                Assert.True(vm.IsDisposed);
            }
        }
        Assert.Equal(0, k.OpenFdCount);
    }
}
