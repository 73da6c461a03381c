// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// arm64 micro-VMs (GUEST-ABI.md, "arm64 micro-VMs") on the emulated arm64 kernel (EmulatorConfig.Arm64(): this x86
/// machine has no arm64 KVM): the A64 demos, every outcome, Reset, the refusals, and no fd left behind.
/// </summary>
public sealed class Arm64MicroVmTests
{
    private static void OnArm64(Action<Kvm> body) => Arm64Kernel.Run(body);

    private static MicroVmOptions Options(Kvm kvm) => Arm64Kernel.Options(kvm);

    [Fact]
    public void The_architecture_is_the_kernels_and_memory_is_guest_memfd() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Hello.Image(), Options(kvm));
        Assert.Equal(GuestArchitecture.Arm64, vm.Architecture);
        Assert.Equal(GuestMemoryBacking.GuestMemfd, vm.Memory.Backing);
    });

    [Fact]
    public void Hello_prints_the_greeting_and_exits_with_0() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Hello.Image(), Options(kvm));
        // greet (x0 = bytes printed) through the call ABI; then the whole program. Its CBZ on w10 took the offset of a
        // register whose bit 3 is set (the emulator's Imm19 once added Rt[4:3] to it).
        var g = vm.Call("greet");
        Assert.Equal((ulong)Hello.Greeting.Length, g.Value);
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(0, r.Status);
        Assert.Equal(Hello.Greeting, r.Console);
    });

    [Fact]
    public void Sum_returns_the_byte_sum_and_takes_further_calls() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Sum.Image(), Options(kvm));
        var r = vm.Call("sum", DemoGuests.SumInput);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(0, r.Status);
        Assert.Equal(5050UL, r.Value);
        // A second call after the first ended at the return port's MMIO exit, and one with integer arguments.
        Assert.Equal(5050UL, vm.Call("sum", DemoGuests.SumInput).Value);
        Assert.Equal(5UL, vm.Call("add", [2, 3]).Value);
    });

    [Fact]
    public void An_exit_status_is_the_outcome_exit_with_that_status() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Misbehaving.Exit42Image(), Options(kvm));
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(42, r.Status);
        Assert.False(vm.IsFaulted);
    });

    [Fact]
    public void Psci_system_off_is_a_shutdown() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Misbehaving.PowerOffImage(), Options(kvm));
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Shutdown, r.Outcome);
        Assert.Contains("PSCI SYSTEM_OFF", r.Detail, StringComparison.Ordinal);
    });

    [Fact]
    public void Udf_is_an_exception_reported_with_its_pc_and_syndrome() => OnArm64(kvm =>
    {
        var image = Arm64Misbehaving.UndefinedImage();
        using var vm = MicroVm.Create(image, Options(kvm));
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.NotNull(r.Exception);
        Assert.Equal(GuestArchitecture.Arm64, r.Exception!.Architecture);
        Assert.Equal(image.Entry + 4, r.Exception.Rip);       // NOP, then UDF
        Assert.Equal(image.Entry + 4, r.Rip);
        Assert.Equal(0u, Arm64Exceptions.ExceptionClass(r.Exception.ErrorCode!.Value));
        Assert.Equal(4, r.Exception.Vector);                  // current EL with SP_ELx, synchronous
        Assert.True(vm.IsFaulted);
        // Reset makes it callable again (re-init of the vCPU, memory rewritten).
        vm.Reset();
        Assert.Equal(GuestOutcome.Exception, vm.Run().Outcome);
    });

    [Fact]
    public void A_load_beyond_the_ipa_space_is_a_data_abort_with_far() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Misbehaving.DataAbortImage(), Options(kvm));
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(0x25u, Arm64Exceptions.ExceptionClass(r.Exception!.ErrorCode!.Value));
        Assert.Equal(Arm64Misbehaving.BeyondIpaAddress, r.Exception.Cr2);
        Assert.Equal(0x04UL, r.Exception.ErrorCode & 0x3F); // translation fault, level 0: beyond the 32-bit VA space
        Assert.Contains("data abort", r.Detail, StringComparison.Ordinal);
    });

    [Fact]
    public void An_unclaimed_mmio_port_is_unhandled_mmio_with_the_port() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Misbehaving.BadMmioImage(), Options(kvm));
        var r = vm.Run();
        Assert.Equal(GuestOutcome.UnhandledMmio, r.Outcome);
        Assert.Equal((ushort)0x1234, r.Port);
    });

    [Fact]
    public void An_endless_loop_times_out_and_the_next_call_runs() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Misbehaving.EndlessLoopImage(), Options(kvm) with { Timeout = TimeSpan.FromMilliseconds(300) });
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Timeout, r.Outcome);
        Assert.False(vm.IsFaulted);
        Assert.Equal(GuestOutcome.Timeout, vm.Run().Outcome);
    });

    [Fact]
    public void The_exit_budget_stops_a_chatty_guest() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Hello.Image(), Options(kvm) with { MaxExits = 5 });
        var r = vm.Run();
        Assert.Equal(GuestOutcome.MaxExits, r.Outcome);
    });

    [Fact]
    public void Host_memory_runs_the_same_guest() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Arm64Sum.Image(), Options(kvm) with { Memory = GuestMemoryBacking.HostMemory });
        Assert.Equal(5050UL, vm.Call("sum", DemoGuests.SumInput).Value);
        vm.Reset();
        Assert.Equal(5050UL, vm.Call("sum", DemoGuests.SumInput).Value);
    });

    [Fact]
    public void What_arm64_lacks_is_refused_with_not_supported() => OnArm64(kvm =>
    {
        foreach (var options in new[]
        {
            Options(kvm) with { Cpuid = CpuidPolicy.None },
            Options(kvm) with { VmType = VmType.SwProtected, Architecture = GuestArchitecture.Arm64 },
        })
        {
            var e = Assert.ThrowsAny<MicroVmException>(() => MicroVm.Create(Arm64Sum.Image(), options));
            Assert.Contains("not supported for arm64 micro-VMs", e.Message, StringComparison.Ordinal);
        }
        // Traces (Arm64TraceTests) and snapshots with their lazy restore (Arm64SnapshotTests, Arm64LazyRestoreTests) work.
        using var vm = MicroVm.Create(Arm64Sum.Image(), Options(kvm) with { TraceInstructions = 10, SnapshotRestore = SnapshotRestoreMode.LazyIfOffered });
        Assert.Equal(GuestArchitecture.Arm64, vm.Snapshot().Architecture);
        Assert.Equal(10, vm.Call("sum", DemoGuests.SumInput).Trace!.Instructions.Count);
    });

    [Fact]
    public void Asking_for_x86_64_on_an_arm64_kernel_is_refused() => OnArm64(kvm =>
    {
        var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(Hello.Image(), Options(kvm) with { Architecture = GuestArchitecture.X86_64 }));
        Assert.Contains("Arm64", e.Message, StringComparison.Ordinal);
    });

    [Fact]
    public void Asking_for_arm64_on_an_x86_kernel_is_refused()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost(true));
        using (var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals))
        {
            var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(Arm64Sum.Image(), new MicroVmOptions { Kvm = kvm, Architecture = GuestArchitecture.Arm64 }));
            Assert.Contains("X86_64", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal(0, kernel.OpenFdCount);
    }
    /// <summary>hostcall(x0 = id, x1, x2) → x0: the host-call block, a store to port 0x502, the result read back.</summary>
    private static Loader.GuestImage HostCallImage()
    {
        var p = new Arm64Program();
        var a = p.Asm;
        var start = p.Export("_start");
        var hostcall = p.Export("hostcall");
        a.Bind(start);
        p.ExitWith(0);
        a.Bind(hostcall);
        a.MovImm(A64Register.X(9), GuestAbi.HostCallBlock.Base);
        a.Str(A64Register.X(0), A64Register.X(9), (uint)GuestAbi.HostCallBlock.Function);
        a.Str(A64Register.X(1), A64Register.X(9), (uint)GuestAbi.HostCallBlock.Args);
        a.Str(A64Register.X(2), A64Register.X(9), (uint)GuestAbi.HostCallBlock.Args + 8);
        a.MovImm(A64Register.X(10), Arch.Arm64.Layout.Port(GuestAbi.Ports.HostCall));
        a.Strb(A64Register.W(0), A64Register.X(10)); // 0x502 is not 4-byte aligned: a byte store (GUEST-ABI.md)
        a.Ldr(A64Register.X(0), A64Register.X(9), (uint)GuestAbi.HostCallBlock.Result);
        a.Ret();
        return p.Build(start);
    }

    [Fact]
    public void A_host_call_through_the_port_window_returns_the_host_result() => OnArm64(kvm =>
    {
        var functions = new HostCalls.HostFunctions();
        uint mul = functions.Add("mul", (a, b) => a * b);
        using var vm = MicroVm.Create(HostCallImage(), Options(kvm) with { HostFunctions = functions });
        var r = vm.Call("hostcall", [mul, 6, 7]);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(42UL, r.Value);
        Assert.Equal(1, r.HostCalls);
    });

    [Fact]
    public void Wfi_with_nothing_to_wake_it_ends_at_the_timeout() => OnArm64(kvm =>
    {
        var p = new Arm64Program();
        var start = p.Export("_start");
        p.Asm.Bind(start);
        p.Asm.Wfi();
        p.Hang();
        using var vm = MicroVm.Create(p.Build(start), Options(kvm) with { Timeout = TimeSpan.FromMilliseconds(300) });
        Assert.Equal(GuestOutcome.Timeout, vm.Run().Outcome);
    });

    [Fact]
    public async Task Async_calls_and_a_pool_work_as_on_x86_64()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using (var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals))
        {
            using (var vm = MicroVm.Create(Arm64Sum.Image(), Options(kvm)))
            {
                Assert.Equal(5UL, (await vm.CallAsync("add", 2, 3)).Value);
            }
            using var pool = new MicroVmPool(Arm64Sum.Image(), Options(kvm), 1);
            for (int i = 0; i < 2; i++)
            {
                var vm = pool.Rent();
                Assert.Equal(5050UL, vm.Call("sum", DemoGuests.SumInput).Value);
                pool.Return(vm);
            }
        }
        Assert.Equal(0, kernel.OpenFdCount);
    }
}
