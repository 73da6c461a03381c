// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_GET_STATS_FD on the emulator: the tables each preset answers (upstream x86 and arm64 6.18; kvm_pvm's extras only
/// in LikeThisHost), the VM reference a stats fd holds, and the counters the conformance suite cannot pin on this host
/// (interrupt-window and signal exits). What both kernels show is in Conformance/Cases/BinaryStatsRules.cs.
/// </summary>
public sealed class BinaryStatsTests
{
    private static string[] Names(KvmStatistics s) => [.. s.Descriptors.Select(d => d.Name)];

    [Fact]
    public void The_upstream_x86_preset_has_no_kvm_pvm_statistics()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.X86_64()));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        using var vmStats = vm.OpenStatistics();
        using var vcpuStats = vcpu.OpenStatistics();
        Assert.Equal(15, vmStats.Descriptors.Count);
        Assert.Equal("max_mmu_page_hash_collisions", Names(vmStats)[^1]);
        Assert.Equal(15, vmStats.ValueCount);
        Assert.Equal(45, vcpuStats.Descriptors.Count);
        Assert.Equal("notify_window_exits", Names(vcpuStats)[^1]);
        Assert.Equal(1096u, vcpuStats.GetDescriptor("notify_window_exits").Offset);
        Assert.DoesNotContain("pf_parked", Names(vcpuStats));
    }

    [Fact]
    public void The_like_this_host_preset_appends_kvm_pvms_counters()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.LikeThisHost()));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        using var vmStats = vm.OpenStatistics();
        using var vcpuStats = vcpu.OpenStatistics();
        Assert.Equal(("mmu_kicks_spared", 120u), (Names(vmStats)[^1], vmStats.GetDescriptor("mmu_kicks_spared").Offset));
        Assert.Equal(new[] { "pf_parked", "pf_park_timeouts" }, Names(vcpuStats)[^2..]);
        Assert.Equal((1104u, 1112u), (vcpuStats.GetDescriptor("pf_parked").Offset, vcpuStats.GetDescriptor("pf_park_timeouts").Offset));
    }

    [Fact]
    public void Arm64_answers_guest_c_tables()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_BINARY_STATS_FD));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        using var vmStats = vm.OpenStatistics();
        using var vcpuStats = vcpu.OpenStatistics();
        Assert.Equal(new[] { "remote_tlb_flush", "remote_tlb_flush_requests" }, Names(vmStats));
        var names = Names(vcpuStats);
        Assert.Equal(18, names.Length);
        Assert.Equal(new[] { "blocking", "hvc_exit_stat", "wfe_exit_stat", "wfi_exit_stat", "mmio_exit_user", "mmio_exit_kernel", "signal_exits", "exits" }, names[10..]);
        Assert.Equal(880u, vcpuStats.GetDescriptor("exits").Offset);
        Assert.Equal(72u + 18 * 64, vcpuStats.Header.data_offset);
    }

    [Theory]
    [InlineData(KernelGeneration.Linux61)]
    [InlineData(KernelGeneration.Linux618)]
    [InlineData(KernelGeneration.InPlaceConversionV8)]
    public void Every_generation_offers_binary_stats(KernelGeneration generation)
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.X86_64(generation)));
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_BINARY_STATS_FD));
        using var vm = kvm.CreateVm();
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_BINARY_STATS_FD));
    }

    [Fact]
    public void A_stats_fd_keeps_its_vm_and_closing_it_last_destroys_the_vm()
    {
        using var k = new EmulatedKernel();
        var sys = Raw.OpenKvm(k);
        var vm = Raw.CreateVm(k, sys);
        var vcpu = k.Adopt((int)k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL));
        var vmStats = k.Adopt((int)k.Ioctl(vm, KvmIoctls.KVM_GET_STATS_FD, 0UL));
        var vcpuStats = k.Adopt((int)k.Ioctl(vcpu, KvmIoctls.KVM_GET_STATS_FD, 0UL));
        Assert.Equal(Raw.EINVAL, k.Ioctl(sys, KvmIoctls.KVM_GET_STATS_FD, 0UL));
        vcpu.Dispose();
        vm.Dispose();
        sys.Dispose();
        Assert.Equal(1, k.LiveVmCount);
        Span<byte> header = stackalloc byte[24];
        Assert.Equal(24, k.Pread(vcpuStats, header, 0));
        vmStats.Dispose();
        Assert.Equal(1, k.LiveVmCount);
        vcpuStats.Dispose();
        Assert.Equal(0, k.LiveVmCount);
        Assert.Equal(0, k.OpenFdCount);
    }

    /// <summary>The objects of <see cref="Spinner"/>, disposed in reverse order.</summary>
    private sealed record SpinnerGuest(Kvm Kvm, Vm Vm, AnonymousMemory Memory, MemorySlot Slot, KvmSharp.Vcpu Vcpu) : IDisposable
    {
        public void Dispose()
        {
            Vcpu.Dispose();
            Slot.Dispose();
            Memory.Dispose();
            Vm.Dispose();
            Kvm.Dispose();
        }
    }

    /// <summary>A real-mode guest at GPA 0x1000 with IF set: <c>spin: jmp spin</c>.</summary>
    private static SpinnerGuest Spinner(EmulatedKernel kernel)
    {
        var kvm = Kvm.Open(kernel);
        var vm = kvm.CreateVm();
        var memory = vm.AllocateMemory(0x10000);
        var asm = new Iced.Intel.Assembler(16);
        var spin = asm.CreateLabel();
        asm.Label(ref spin);
        asm.jmp(spin);
        using var code = new MemoryStream();
        asm.Assemble(new Iced.Intel.StreamCodeWriter(code), 0x1000);
        memory.Write(0x1000, code.ToArray());
        var slot = vm.AddMemorySlot(0, 0, memory);
        var vcpu = vm.CreateVcpu();
        var sregs = vcpu.GetSregs();
        sregs.cs.@base = 0;
        sregs.cs.selector = 0;
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(new kvm_regs { rip = 0x1000, rflags = 0x202 });
        return new SpinnerGuest(kvm, vm, memory, slot, vcpu);
    }

    [Fact]
    public void An_interrupt_window_exit_counts_an_exit_an_irq_window_exit_and_a_request_irq_exit()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var guest = Spinner(kernel);
        var vcpu = guest.Vcpu;
        using var stats = vcpu.OpenStatistics();
        vcpu.RequestInterruptWindow = true;
        Assert.Equal(KvmExitReason.KVM_EXIT_IRQ_WINDOW_OPEN, vcpu.RunBounded().Reason);
        var s = stats.Read();
        Assert.Equal((1UL, 1UL, 1UL, 1UL), (s["exits"], s["irq_window_exits"], s["request_irq_exits"], s["fpu_reload"]));
        Assert.Equal((0UL, 0UL, 0UL), (s["io_exits"], s["halt_exits"], s["signal_exits"]));
    }

    [Fact]
    public void A_kick_counts_a_signal_exit_and_no_guest_exit()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var guest = Spinner(kernel);
        var vcpu = guest.Vcpu;
        using var stats = vcpu.OpenStatistics();
        // A kick that lands before KVM_RUN starts is only immediate_exit (EINTR, no signal exit): wait longer and
        // retry until one lands inside the run, where the guest spins forever.
        for (int attempt = 1; attempt <= 5 && stats.ReadValue("signal_exits") == 0; attempt++)
        {
            vcpu.ImmediateExit = false;
            int delay = 50 * attempt;
            var kicker = new Thread(() =>
            {
                Thread.Sleep(delay);
                vcpu.Kick();
            });
            kicker.Start();
            var exit = vcpu.RunBounded();
            kicker.Join();
            Assert.True(exit.Interrupted);
        }
        var s = stats.Read();
        Assert.Equal((1UL, 0UL), (s["signal_exits"], s["exits"]));
    }
}
