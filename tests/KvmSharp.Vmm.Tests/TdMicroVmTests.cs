// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Emulation;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Confidential;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// A TD micro-VM (Confidential/TdBoot.cs): split irqchip, KVM_TDX_INIT_VM (GPAW 48), KVM_TDX_INIT_VCPU, and at the
/// first call the private ranges added in place by KVM_TDX_INIT_MEM_REGION with the boot slot, KVM_TDX_FINALIZE_VM;
/// the vCPU boots from the reset vector into the dispatcher and its IN/OUT go through the VMM's #VE handler
/// (TDG.VP.VEINFO.GET, TDG.VP.VMCALL&lt;Instruction.IO&gt;). On EmulatorConfig.X86_64(inPlaceConversion: true): no
/// kernel on this machine has TDX, and the host reads the shared pages through the guest_memfd mapping, which needs the
/// in-place conversion tree.
/// </summary>
public sealed class TdMicroVmTests
{
    private static EmulatedKernel InPlaceConversionKernel() => new(EmulatorConfig.X86_64(inPlaceConversion: true));

    private static MicroVm CreateTd(Kvm kvm, GuestImage? image = null, MicroVmOptions? options = null) =>
        MicroVm.Create(image ?? Hello.Image(), (options ?? new MicroVmOptions { Timeout = TimeSpan.FromSeconds(30) }) with { Kvm = kvm, VmType = VmType.Tdx });

    /// <summary>Runs <paramref name="body"/> on a TD micro-VM of <paramref name="image"/>, then checks nothing is left open.</summary>
    private static void OnTd(GuestImage image, Action<MicroVm> body, MicroVmOptions? options = null)
    {
        using var k = InPlaceConversionKernel();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var vm = CreateTd(kvm, image, options))
        {
            body(vm);
        }
        Assert.Equal(0, k.LiveVmCount);
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void Hello_prints_and_exits_0_on_a_td_micro_vm_and_leaves_no_fd_open() => OnTd(Hello.Image(), vm =>
    {
        Assert.False(vm.IsSealed);
        var r = vm.Run();
        Assert.True(r.Outcome == GuestOutcome.Exit && r.Status == 0, r.ToString() + r.Console);
        Assert.Equal(Hello.Greeting, r.Console);
        Assert.True(vm.IsSealed);
        Assert.Equal(0UL, r.Rip); // a TD's registers cannot be read
    });

    [Fact]
    public void Sum_and_several_calls_in_a_row_return_their_results_through_the_dispatcher() => OnTd(Sum.Image(), vm =>
    {
        var sum = vm.Call("sum", DemoGuests.SumInput);
        Assert.True(sum.IsSuccess, sum.ToString());
        Assert.Equal(5050UL, sum.Value);
        Assert.True(vm.IsSealed);

        var add = vm.Call("add", 2, 3);
        Assert.True(add.IsSuccess, add.ToString());
        Assert.Equal(5UL, add.Value);

        byte[] words = [.. Enumerable.Range(0, 64).Select(i => (byte)(i * 7))];
        var fletcher = vm.Call("fletcher64", words);
        Assert.Equal(Sum.Fletcher64(words), fletcher.Value);

        var reverse = vm.Call("reverse", "abcdef"u8);
        Assert.True(reverse.IsSuccess, reverse.ToString());
        Assert.Equal("fedcba"u8.ToArray(), reverse.Output.ToArray());

        for (ulong i = 0; i < 5; i++) Assert.Equal(i + 100, vm.Call("add", i, 100).Value);
        Assert.False(vm.IsFaulted);
    });

    [Fact]
    public void The_console_in_and_out_work_call_after_call() => OnTd(Hello.Image(), vm =>
    {
        for (int i = 0; i < 3; i++)
        {
            // greet waits on COM1's LSR (an IN, completed into AL through R11) before each OUT.
            var r = vm.Call("greet");
            Assert.True(r.IsSuccess, r.ToString());
            Assert.Equal((ulong)Hello.Greeting.Length, r.Value);
            Assert.Equal(Hello.Greeting, r.Console);
        }
    });

    [Fact]
    public void Code_data_and_page_tables_are_private_and_the_shared_pages_carry_the_shared_bit() => OnTd(Hello.Image(), vm =>
    {
        ulong Pte(ulong gpa) => vm.Memory.Read<ulong>(Layout.Pt + gpa / Layout.PageSize * 8);
        // Before the launch the host reads its own tables: shared pages map with bit 47, private ones without.
        Assert.Equal(TdBoot.SharedBit, Pte(Layout.CallRegion) & TdBoot.SharedBit);
        Assert.Equal(TdBoot.SharedBit, Pte(Layout.CallData) & TdBoot.SharedBit);
        Assert.Equal(TdBoot.SharedBit, Pte(Layout.ExceptionBlock) & TdBoot.SharedBit);
        Assert.Equal(0UL, Pte(Layout.Trampoline) & TdBoot.SharedBit);
        Assert.Equal(0UL, Pte(Layout.ImageBase) & TdBoot.SharedBit);
        Assert.Equal(0UL, vm.Memory.Read<ulong>(Layout.Pml4) & TdBoot.SharedBit);
        Assert.True(vm.Memory.IsShared(0, vm.Memory.Size));

        Assert.True(vm.Run().IsSuccess);

        foreach (ulong gpa in new[] { vm.Image.Entry, Layout.Pml4, Layout.Gdt, Layout.Trampoline, TdRuntime.Base, Layout.StackBottom,
                     Layout.ExceptionHandlers, Layout.Idt, vm.Memory.Size - Layout.PageSize })
        {
            Assert.False(vm.Memory.IsShared(gpa, 1), $"0x{gpa:X} should be private");
            Assert.Equal(GuestMemoryFault.PrivatePage, Assert.Throws<GuestMemoryFaultException>(() => vm.Memory.Read<byte>(gpa)).Fault);
        }
        Assert.True(vm.Memory.IsShared(Layout.CallRegion, Layout.CallDataEnd - Layout.CallRegion));
        Assert.True(vm.Memory.IsShared(Layout.ExceptionBlock, Layout.PageSize));
        Assert.Equal(CallRegion.MagicValue, vm.Memory.Read<uint>(CallRegion.Address(CallRegion.Magic)));
    });

    [Fact]
    public void An_exit_status_ends_the_call_and_the_micro_vm_takes_no_further_call() => OnTd(Misbehaving.Exit42Image(), vm =>
    {
        var r = vm.Run();
        Assert.True(r.Outcome == GuestOutcome.Exit && r.Status == 42, r.ToString());
        Assert.True(vm.IsFaulted);
        var refused = Assert.Throws<MicroVmException>(() => vm.Run());
        Assert.Contains("a TD micro-VM whose call 1 exited", refused.Message, StringComparison.Ordinal);
    });

    [Fact]
    public void An_out_to_an_unknown_port_ends_as_unknown_port() => OnTd(Misbehaving.BadPortImage(), vm =>
    {
        var r = vm.Run();
        Assert.Equal(GuestOutcome.UnknownPort, r.Outcome);
        Assert.Equal(Misbehaving.BadPort, r.Port);
    });

    [Theory]
    [InlineData("divide", 0)]
    [InlineData("ud", 6)]
    [InlineData("pagefault", 14)]
    public void A_cpu_exception_is_reported_by_the_vmm_handlers_at_the_faulting_instruction(string guest, int vector)
    {
        GuestImage image = DemoGuests.Find(guest)!.Image();
        OnTd(image, vm =>
        {
            var r = vm.Run();
            Assert.True(r.Outcome == GuestOutcome.Exception, r.ToString());
            Assert.Equal(vector, r.Exception!.Vector);
            Assert.Equal(image.Resolve(Misbehaving.FaultSymbol), r.Exception.Rip);
            Assert.True(vm.IsFaulted);
        });
    }

    [Fact]
    public void A_host_call_reaches_its_function_through_the_shared_host_call_block()
    {
        var functions = new HostFunctions();
        ulong[]? seen = null;
        uint id = functions.Add("mix", c =>
        {
            seen = c.Args.ToArray();
            return c.Args[0] ^ c.Args[5];
        });
        OnTd(HostCallProbe.Image(), vm =>
        {
            for (int i = 0; i < 2; i++)
            {
                var r = vm.Call("call6", Infrastructure.HostCallGuest.Call6Input(id, 1, 2, 3, 4, 5, ulong.MaxValue));
                Assert.True(r.IsSuccess, r.ToString());
                Assert.Equal(1UL ^ ulong.MaxValue, r.Value);
                Assert.Equal([1UL, 2, 3, 4, 5, ulong.MaxValue], seen);
                Assert.Equal(1, r.HostCalls);
            }
        }, new MicroVmOptions { Timeout = TimeSpan.FromSeconds(30), HostFunctions = functions });
    }

    [Fact]
    public void A_stack_overflow_is_a_page_fault_on_the_stack_guard_taken_on_the_ist_stack()
    {
        GuestImage image = Misbehaving.StackOverflowImage();
        OnTd(image, vm =>
        {
            // The TD loaded TR itself (LTR), so the #PF on the guard page is delivered on IST1, as in every micro-VM.
            var r = vm.Run();
            Assert.True(r.Outcome == GuestOutcome.Exception, r.ToString());
            GuestException e = r.Exception!;
            Assert.Equal((14, 0x2UL, Layout.StackBottom - 8), (e.Vector, e.ErrorCode, e.Cr2));
            Assert.Equal((image.Resolve(Misbehaving.FaultSymbol), Layout.StackBottom), (e.Rip, e.Rsp));
        });
    }

    [Fact]
    public void A_triple_fault_ends_as_shutdown() => OnTd(Misbehaving.TripleFaultImage(), vm =>
    {
        var r = vm.Run();
        Assert.True(r.Outcome == GuestOutcome.Shutdown, r.ToString());
        Assert.True(vm.IsFaulted);
    });

    [Fact]
    public void An_endless_loop_ends_at_the_timeout_and_the_micro_vm_takes_no_further_call() => OnTd(Misbehaving.EndlessLoopImage(), vm =>
    {
        var r = vm.Run();
        Assert.True(r.Outcome == GuestOutcome.Timeout, r.ToString());
        Assert.True(vm.IsFaulted);
        Assert.Contains("ended as Timeout", Assert.Throws<MicroVmException>(() => vm.Run()).Message, StringComparison.Ordinal);
    }, new MicroVmOptions { Timeout = TimeSpan.FromSeconds(2) });

    [Fact]
    public void A_cancelled_call_ends_as_cancelled_and_is_the_micro_vm_s_last() => OnTd(Misbehaving.EndlessLoopImage(), vm =>
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var r = vm.Run(cts.Token);
        Assert.True(r.Outcome == GuestOutcome.Cancelled, r.ToString());
        Assert.Contains("ended as Cancelled", Assert.Throws<MicroVmException>(() => vm.Run()).Message, StringComparison.Ordinal);
    });

    [Fact]
    public void A_halt_waits_in_kvm_for_an_interrupt_and_ends_at_the_timeout() => OnTd(Misbehaving.HaltImage(), vm =>
    {
        // TDG.VP.VMCALL<Instruction.HLT>: KVM halts the vCPU (its local APIC is in the kernel); nothing wakes it.
        var r = vm.Run();
        Assert.True(r.Outcome == GuestOutcome.Timeout, r.ToString());
    }, new MicroVmOptions { Timeout = TimeSpan.FromSeconds(2) });

    [Fact]
    public void Reset_and_snapshots_are_refused_with_typed_errors_and_refusals_change_nothing() => OnTd(Hello.Image(), vm =>
    {
        // Before the launch: a snapshot is refused already; a reset only rewrites memory (the vCPU has not run).
        Assert.Equal(SnapshotRefusal.ProtectedGuest, Assert.Throws<MicroVmSnapshotException>(() => vm.Snapshot()).Reason);
        vm.Reset();
        Assert.True(vm.Call("greet").IsSuccess);

        var reset = Assert.Throws<MicroVmException>(vm.Reset);
        Assert.Contains("MicroVm.Reset on a TD micro-VM", reset.Message, StringComparison.Ordinal);
        var snapshot = Assert.Throws<MicroVmSnapshotException>(() => vm.Snapshot());
        Assert.Equal(SnapshotRefusal.ProtectedGuest, snapshot.Reason);
        Assert.Contains("TD micro-VM", snapshot.Message, StringComparison.Ordinal);
        Assert.Throws<MicroVmException>(() => vm.CallAddress(Layout.Trampoline));
        Assert.True(vm.Call("greet").IsSuccess);
    });

    [Fact]
    public void A_pool_drops_a_sealed_td_micro_vm_on_return()
    {
        using var k = InPlaceConversionKernel();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var pool = new MicroVmPool(Hello.Image(), new MicroVmOptions { Kvm = kvm, VmType = VmType.Tdx, Timeout = TimeSpan.FromSeconds(30) }, 1))
        {
            MicroVm vm = pool.Rent();
            Assert.True(vm.Run().IsSuccess);
            pool.Return(vm);
            Assert.True(vm.IsDisposed);
        }
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void Without_in_place_conversion_or_with_options_a_td_cannot_honour_creation_is_refused_and_leaves_nothing_open()
    {
        using (var k = new EmulatedKernel(EmulatorConfig.X86_64()))
        {
            using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
            {
                var e = Assert.Throws<MicroVmException>(() => CreateTd(kvm));
                Assert.Contains("VM type Tdx", e.Message, StringComparison.Ordinal);
                Assert.Contains("MMAP|INIT_SHARED", e.Message, StringComparison.Ordinal);
                Assert.Equal(0, k.LiveVmCount);
            }
            Assert.Equal(0, k.OpenFdCount);
        }
        using (var k = InPlaceConversionKernel())
        {
            using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
            {
                var host = Assert.Throws<MicroVmException>(() => CreateTd(kvm, options: new MicroVmOptions { Memory = GuestMemoryBacking.HostMemory }));
                Assert.Contains("needs guest_memfd", host.Message, StringComparison.Ordinal);
                var trace = Assert.Throws<MicroVmException>(() => CreateTd(kvm, options: new MicroVmOptions { TraceInstructions = 8 }));
                Assert.Contains("TraceInstructions", trace.Message, StringComparison.Ordinal);
                var cpuid = Assert.Throws<MicroVmException>(() => CreateTd(kvm, options: new MicroVmOptions { Cpuid = CpuidPolicy.None }));
                Assert.Contains("x2APIC", cpuid.Message, StringComparison.Ordinal);
                Assert.Equal(0, k.LiveVmCount);
            }
            Assert.Equal(0, k.OpenFdCount);
        }
    }

    /// <summary>Exports returning CR0, CR4, PDPT entry 3, the IDT base, CS and SS as the guest sees them.</summary>
    private static GuestImage MachineStateGuest()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start");
        p.Place(ref start);
        p.ExitWith(0);
        void Export(string name, Action body)
        {
            Label l = p.Export(name);
            p.Place(ref l);
            body();
            a.ret();
        }
        Export("cr0", () => a.mov(rax, cr0));
        Export("cr4", () => a.mov(rax, cr4));
        Export("pdpt3", () => a.mov(rax, __qword_ptr[Layout.Pdpt + 3 * 8]));
        Export("idt_base", () =>
        {
            a.sub(rsp, 16);
            a.sidt(__[rsp]);
            a.mov(rax, __qword_ptr[rsp + 2]);
            a.add(rsp, 16);
        });
        Export("selectors", () =>
        {
            a.xor(eax, eax);
            a.mov(ax, cs);
            a.shl(eax, 16);
            a.mov(ax, ss);
        });
        return p.Build(start);
    }

    [Fact]
    public void The_boot_stub_leaves_the_machine_the_abi_describes_with_the_boot_page_unmapped() => OnTd(MachineStateGuest(), vm =>
    {
        ulong Value(string name)
        {
            var r = vm.Call(name);
            Assert.True(r.IsSuccess, r.ToString());
            return r.Value!.Value;
        }
        const ulong Cr0 = LongMode.CR0_PE | LongMode.CR0_MP | LongMode.CR0_ET | LongMode.CR0_NE | LongMode.CR0_WP | LongMode.CR0_PG;
        Assert.Equal(Cr0, Value("cr0") & Cr0);
        const ulong Cr4 = LongMode.CR4_PAE | LongMode.CR4_OSFXSR | LongMode.CR4_OSXMMEXCPT;
        Assert.Equal(Cr4, Value("cr4") & Cr4);
        Assert.Equal(0UL, Value("pdpt3"));
        Assert.Equal(Layout.Idt, Value("idt_base"));
        Assert.Equal(((ulong)Gdt.CodeSelector << 16) | Gdt.DataSelector, Value("selectors"));
    });

    [Fact]
    public void The_td_runtime_fits_its_page_and_its_idt_sends_vector_20_to_the_ve_handler()
    {
        Assert.InRange(TdRuntime.Start, TdRuntime.Base, SnpDispatcher.EntryLimit - 1);
        Assert.InRange(TdRuntime.VeHandler, TdRuntime.Base, SnpDispatcher.EntryLimit - 1);
        Assert.True((ulong)SnpDispatcher.Bytes.Length <= TdRuntime.Base - Layout.Trampoline);
        ReadOnlySpan<byte> idt = TdRuntime.IdtBytes;
        for (int vector = 0; vector < Idt.Vectors; vector++)
        {
            ulong low = BitConverter.ToUInt64(idt[(vector * 16)..]), high = BitConverter.ToUInt64(idt[(vector * 16 + 8)..]);
            ulong expected = vector == TdRuntime.VirtualizationException ? TdRuntime.VeHandler : ExceptionHandlers.Stub(vector);
            Assert.Equal(expected, Idt.GateTarget(low, high));
            Assert.Equal((ulong)Idt.Ist, (low >> 32) & 7); // IST1, from the TSS the TD loads (Arch/X86_64/TdRuntime.cs)
        }
        // The reset vector's jump is the last 16 bytes of the boot slot.
        Assert.Equal(TdRuntime.BootSlotSize, (ulong)TdRuntime.BootSlotBytes.Length);
        Assert.NotEqual(0, TdRuntime.BootSlotBytes[(int)(TdRuntime.ResetVector - TdRuntime.BootSlot)]);
    }
}
