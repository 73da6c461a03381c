// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.Arm64VgicGuestVm;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_GET_STATS_FD of an arm64 VM and vCPU on the emulator: the descriptors of 6.18's arch/arm64/kvm/guest.c
/// (kvm_vm_stats_desc = KVM_GENERIC_VM_STATS(); kvm_vcpu_stats_desc = KVM_GENERIC_VCPU_STATS() then hvc_exit_stat …
/// exits) with their flags, and the counters a guest moves (Arm64/Arm64VcpuStats.cs says where 6.18 counts each).
/// </summary>
public sealed class Arm64BinaryStatsTests
{
    private const uint Spi = 33;
    private const ulong PsciVersion = 0x8400_0000, Unmapped = 0x0200_0000;

    private static (string, KvmStatisticKind, KvmStatisticUnit, short, int, uint) Row(KvmStatisticDescriptor d) =>
        (d.Name, d.Kind, d.Unit, d.Exponent, d.Size, d.Offset);

    [Fact]
    public void The_vm_and_vcpu_descriptors_are_guest_c_tables_with_their_flags()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        using var vmStats = vm.OpenStatistics();
        using var vcpuStats = vcpu.OpenStatistics();
        const KvmStatisticKind C = KvmStatisticKind.Cumulative, I = KvmStatisticKind.Instant, H = KvmStatisticKind.LogHistogram;
        const KvmStatisticUnit N = KvmStatisticUnit.None, S = KvmStatisticUnit.Seconds, B = KvmStatisticUnit.Boolean;
        // KVM_GENERIC_VM_STATS(): STATS_DESC_COUNTER(VM_GENERIC, remote_tlb_flush), (…, remote_tlb_flush_requests).
        Assert.Equal(new[] { ("remote_tlb_flush", C, N, (short)0, 1, 0u), ("remote_tlb_flush_requests", C, N, (short)0, 1, 8u) },
            vmStats.Descriptors.Select(Row));
        // KVM_GENERIC_VCPU_STATS(): the three halt_* counters, halt_poll_invalid, halt_wakeup (STATS_DESC_COUNTER),
        // three STATS_DESC_TIME_NSEC, three STATS_DESC_LOGHIST_TIME_NSEC of HALT_POLL_HIST_COUNT (32) buckets,
        // STATS_DESC_IBOOLEAN(blocking); then arm64's seven STATS_DESC_COUNTERs in struct kvm_vcpu_stat order.
        var expected = new List<(string, KvmStatisticKind, KvmStatisticUnit, short, int, uint)>
        {
            ("halt_successful_poll", C, N, 0, 1, 0), ("halt_attempted_poll", C, N, 0, 1, 8), ("halt_poll_invalid", C, N, 0, 1, 16),
            ("halt_wakeup", C, N, 0, 1, 24), ("halt_poll_success_ns", C, S, -9, 1, 32), ("halt_poll_fail_ns", C, S, -9, 1, 40),
            ("halt_wait_ns", C, S, -9, 1, 48), ("halt_poll_success_hist", H, S, -9, 32, 56), ("halt_poll_fail_hist", H, S, -9, 32, 312),
            ("halt_wait_hist", H, S, -9, 32, 568), ("blocking", I, B, 0, 1, 824),
        };
        string[] arch = ["hvc_exit_stat", "wfe_exit_stat", "wfi_exit_stat", "mmio_exit_user", "mmio_exit_kernel", "signal_exits", "exits"];
        for (int i = 0; i < arch.Length; i++) expected.Add((arch[i], C, N, 0, 1, 832u + 8u * (uint)i));
        Assert.Equal(expected, vcpuStats.Descriptors.Select(Row));
        Assert.All(vmStats.Descriptors.Concat(vcpuStats.Descriptors), d =>
        {
            Assert.Equal(KvmStatisticBase.Pow10, d.Base);
            Assert.Equal(0u, d.BucketSize);   // the STATS_DESC_* macros leave bucket_size 0 (LOG_HIST included)
        });
        // kvm_vcpu_stats_header: id at 24, descriptors after the 48 id bytes, data after 18 × (16 + 48) bytes.
        Assert.Equal((18u, 24u, 72u, 72u + 18 * 64), (vcpuStats.Header.num_desc, vcpuStats.Header.id_offset,
            vcpuStats.Header.desc_offset, vcpuStats.Header.data_offset));
        Assert.Equal(72u + 2 * 64, vmStats.Header.data_offset);
        Assert.Equal(111, vcpuStats.ValueCount);   // 888 bytes: 7 + 3 × 32 + 1 generic u64s, then 7
    }

    [Fact]
    public void A_guest_counts_exactly_its_hvcs_wfis_and_mmio_accesses()
    {
        const int hvcs = 3, wfis = 4, userStores = 5, kernelLoads = 2;
        using var s = new Arm64VgicGuestVm(a =>
        {
            // Two kernel MMIO stores (GICD_CTLR, GICD_ISENABLER1); the CPU interface is system registers.
            EnableDistributor(a);
            a.MovImm(X(3), 2);
            a.Str(W(3), X(2), 0x104);
            EnableCpuInterface(a, group0: false, group1: true);
            for (int i = 0; i < hvcs; i++)
            {
                a.MovImm(X(0), PsciVersion);
                a.Hvc();                                    // handled in the kernel: no exit to userspace
            }
            a.MovImm(X(0), PsciVersion);
            a.Emit(0xD400_0003);                            // SMC #0: an exit, not an hvc_exit_stat
            a.Emit(0xD503_205F);                            // WFE: not trapped (TWE clear), a hint
            for (int i = 0; i < wfis; i++) a.Wfi();         // SPI 33 pending (PSTATE.I masked): no wait
            a.MovImm(X(4), Unmapped);
            for (int i = 0; i < userStores; i++) a.Str(X(0), X(4));
            a.MovImm(X(2), Dist);                           // the SMCCC calls set x0-x3
            for (int i = 0; i < kernelLoads; i++) a.Ldr(W(5), X(2), 4);   // GICD_TYPER: the vGIC answers
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        var v = s.Vcpus[0];
        using var stats = v.OpenStatistics();
        s.Vm.SetSpiLevel(Spi, true);
        for (int i = 0; i < userStores; i++)
        {
            var exit = v.RunBounded();
            Assert.Equal((KvmExitReason.KVM_EXIT_MMIO, Unmapped), (exit.Reason, exit.MmioAddress));
        }
        s.RunToDone(0);
        Assert.NotEqual(0UL, v.GetX(5));                    // GICD_TYPER.ITLinesNumber of 128 interrupts
        var st = stats.Read();
        Assert.Equal((ulong)hvcs, st["hvc_exit_stat"]);
        Assert.Equal(0UL, st["wfe_exit_stat"]);
        Assert.Equal((ulong)wfis, st["wfi_exit_stat"]);
        Assert.Equal((ulong)userStores + 1, st["mmio_exit_user"]);            // + the ucall
        Assert.Equal(2UL + kernelLoads, st["mmio_exit_kernel"]);
        Assert.Equal((ulong)(hvcs + 1 + wfis + userStores + 1 + 2 + kernelLoads), st["exits"]);
        Assert.Equal(0UL, st["signal_exits"]);
        // Every WFI found its interrupt pending: kvm_vcpu_block never waited.
        Assert.Equal((0UL, 0UL, 0UL), (st["halt_wait_ns"], st["halt_wakeup"], st["blocking"]));
        Assert.Equal(0UL, Sum(st.GetValues("halt_wait_hist")));
        // The VM's generic statistics: no remote TLB flush was requested.
        using var vmStats = s.Vm.OpenStatistics();
        Assert.Equal((0UL, 0UL), (vmStats.ReadValue("remote_tlb_flush"), vmStats.ReadValue("remote_tlb_flush_requests")));
    }

    private static ulong Sum(ReadOnlySpan<ulong> values)
    {
        ulong sum = 0;
        foreach (ulong x in values) sum += x;
        return sum;
    }

    [Fact]
    public void Immediate_exit_counts_nothing()
    {
        using var s = new Arm64VgicGuestVm(a => a.Wfi());
        var v = s.Vcpus[0];
        using var stats = v.OpenStatistics();
        v.ImmediateExit = true;
        Assert.True(v.RunBounded().Interrupted);
        Assert.All(stats.Read().Values.ToArray(), x => Assert.Equal(0UL, x));
    }

    /// <summary>
    /// Waits (at most 10 s) until the vCPU's <c>blocking</c> reads 1 and its thread sleeps (KvmVcpu.Asleep): <c>blocking</c>
    /// alone is set before kvm_vcpu_block's first check, and a wake-up sent then ends the halt without a wait, which
    /// under load made these tests fail now and then.
    /// </summary>
    private static void WaitUntilBlocking(KvmStatistics stats, Arm64TestVm s)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (stats.ReadValue("blocking") == 0 || !s.Kernel.InvariantView.Vms.Single().Vcpus[0].Asleep)
        {
            Assert.True(DateTime.UtcNow < deadline, "the vCPU never blocked");
            Thread.Sleep(1);
        }
    }

    [Fact]
    public void A_signal_ending_a_wfi_sleep_counts_a_wfi_exit_a_signal_exit_and_the_wait()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            a.Wfi();
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        var v = s.Vcpus[0];
        using var stats = v.OpenStatistics();
        var kicker = new Thread(() =>
        {
            WaitUntilBlocking(stats, s);
            v.Kick();
        });
        kicker.Start();
        var exit = v.RunBounded();
        kicker.Join();
        Assert.True(exit.Interrupted);
        var st = stats.Read();
        Assert.Equal((1UL, 1UL, 1UL), (st["wfi_exit_stat"], st["exits"], st["signal_exits"]));
        Assert.Equal((0UL, 0UL), (st["blocking"], st["halt_wakeup"]));   // a signal wakes the task, not kvm_vcpu_wake_up
        ulong waited = st["halt_wait_ns"];
        Assert.True(waited > 0);
        var hist = st.GetValues("halt_wait_hist");
        Assert.Equal(1UL, Sum(hist));
        int bucket = Math.Min(64 - System.Numerics.BitOperations.LeadingZeroCount(waited), 31);   // fls64
        Assert.Equal(1UL, hist[bucket]);
        // The WFI was completed (kvm_incr_pc before the loop saw the signal): the next run reaches the ucall.
        v.ImmediateExit = false;
        s.RunToDone(0);
        st = stats.Read();
        Assert.Equal((1UL, 1UL, 2UL), (st["signal_exits"], st["mmio_exit_user"], st["exits"]));
    }

    [Fact]
    public void An_interrupt_ending_a_wfi_sleep_counts_a_halt_wakeup()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            EnableDistributor(a);
            a.MovImm(X(3), 2);
            a.Str(W(3), X(2), 0x104);                       // GICD_ISENABLER1: SPI 33
            EnableCpuInterface(a, group0: false, group1: true);
            a.Wfi();
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        var v = s.Vcpus[0];
        using var stats = v.OpenStatistics();
        var injector = new Thread(() =>
        {
            WaitUntilBlocking(stats, s);
            s.Vm.SetSpiLevel(Spi, true);
        });
        injector.Start();
        s.RunToDone(0);
        injector.Join();
        var st = stats.Read();
        Assert.Equal((1UL, 1UL, 0UL, 0UL), (st["wfi_exit_stat"], st["halt_wakeup"], st["signal_exits"], st["blocking"]));
        Assert.True(st["halt_wait_ns"] > 0);
        Assert.Equal(1UL, Sum(st.GetValues("halt_wait_hist")));
        Assert.Equal((2UL, 1UL), (st["mmio_exit_kernel"], st["mmio_exit_user"]));
    }

    [Fact]
    public void A_nisv_abort_is_an_exit_of_no_mmio_kind()
    {
        // LDR X1, [X0], #8 (post-index writeback: no valid syndrome) to an unmapped IPA: io_mem_abort without ISV and
        // without KVM_CAP_ARM_NISV_TO_USER is -ENOSYS.
        using var s = new Arm64VgicGuestVm(a =>
        {
            a.MovImm(X(0), Unmapped);
            a.LdrPost(X(1), X(0), 8);
        });
        var v = s.Vcpus[0];
        using var stats = v.OpenStatistics();
        Assert.ThrowsAny<Exception>(() => v.RunBounded());
        var st = stats.Read();
        Assert.Equal((1UL, 0UL, 0UL), (st["exits"], st["mmio_exit_user"], st["mmio_exit_kernel"]));
    }

    [Fact]
    public void An_arm64_micro_vm_reports_its_exits_through_its_vcpu_statistics()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using (var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals))
        {
            using var vm = MicroVm.Create(Arm64Sum.Image(), new MicroVmOptions { Kvm = kvm, Timeout = TimeSpan.FromSeconds(30) });
            using var stats = vm.OpenVcpuStatistics();
            ulong before = stats.ReadValue("exits");
            Assert.Equal(5UL, vm.Call("add", 2, 3).Value);
            var st = stats.Read();
            // A call is at least one exit to the sandbox (its return), and every exit is one of a kind or another.
            Assert.True(st["exits"] > before);
            Assert.True(st["mmio_exit_user"] + st["hvc_exit_stat"] > 0);
            Assert.True(st["exits"] >= st["hvc_exit_stat"] + st["wfi_exit_stat"] + st["mmio_exit_user"] + st["mmio_exit_kernel"]);
        }
        Assert.Equal(0, kernel.OpenFdCount);
    }
}
