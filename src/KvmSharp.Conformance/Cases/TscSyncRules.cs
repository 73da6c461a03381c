// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// TSC synchronisation generations across a VM's vCPUs (arch/x86/kvm/x86.c kvm_synchronize_tsc, __kvm_synchronize_tsc,
/// kvm_track_tsc_matching, kvm_arch_tsc_set_attr, pvclock_update_vm_gtod_copy): which host writes of a vCPU's TSC join
/// the VM's current generation and which start a new one, seen through KVM_GET_CLOCK's flags — TSC_STABLE | REALTIME |
/// HOST_TSC exactly when every vCPU is in the current generation (nr_vcpus_matched_tsc + 1 == online_vcpus; this
/// host's clocksource is the TSC). KVM_SET_CLOCK recomputes use_master_clock at once; otherwise only a KVM_RUN of the
/// vCPU that was synchronised does (KVM_REQ_MASTERCLOCK_UPDATE). The vCPUs run without a memory slot: the entry fails
/// with ENOSPC after the requests are served (ClockRules.master_clock_after_run).
/// </summary>
public static class TscSyncRules
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const KvmClockFlags Stable = KvmClockFlags.TscStable | KvmClockFlags.Realtime | KvmClockFlags.HostTsc;
    /// <summary>A TSC distance no test takes to cover: 2^36 cycles is 28 s at 2.4 GHz.</summary>
    private const ulong Slack = 1UL << 36;

    [ConformanceCase(X86 + " kvm_synchronize_tsc: a host write of IA32_TSC 0 always synchronises (\"Force synchronization when creating a vCPU, or when userspace explicitly writes a zero value\"), takes cur_tsc_offset and counts the vCPU once in nr_vcpus_matched_tsc; the VM is matched when every vCPU is, a new vCPU joins at creation")]
    public static void host_write_of_zero_joins_the_generation(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var v0 = vm.CreateVcpu(0);
        using var v1 = vm.CreateVcpu(1);
        using var v2 = vm.CreateVcpu(2);
        Assert.Equal(Stable, Recomputed(vm));
        const ulong Jump = 1UL << 40;
        v1.SetMsr(X86Msr.Tsc, Jump); // a first non-zero write: generation 2, vCPU 1 alone
        Assert.Equal(KvmClockFlags.None, Recomputed(vm));
        v1.SetMsr(X86Msr.Tsc, 0);    // already in generation 2: counted once
        Assert.Equal(KvmClockFlags.None, Recomputed(vm));
        v0.SetMsr(X86Msr.Tsc, 0);
        Assert.Equal(KvmClockFlags.None, Recomputed(vm));
        v2.SetMsr(X86Msr.Tsc, 0);
        Assert.Equal(Stable, Recomputed(vm));
        using var v3 = vm.CreateVcpu(3);
        Assert.Equal(Stable, Recomputed(vm));
        if (HostDeviations.KvmPvmTscWriteIgnored(ctx.Target.IsReal)) return;
        // Matched vCPUs take the generation's offset, not the one their value 0 gives: all read vCPU 1's TSC.
        foreach (var v in new[] { v0, v2, v3 })
        {
            ulong tsc = v.GetMsr(X86Msr.Tsc);
            Assert.True(tsc - Jump < Slack, $"a vCPU that wrote 0 into the generation of 0x{Jump:X} reads 0x{tsc:X}");
        }
        Assert.Equal(v1.GetTscOffset(), v0.GetTscOffset());
    }

    [ConformanceCase(X86 + " kvm_synchronize_tsc (6.7+ user_set_tsc): the first non-zero host write of a VM starts a generation even when it continues the creation TSC; once userspace has set a TSC, a write within one second of guest cycles (virtual_tsc_khz * 1000) of the last write advanced by nsec_to_cycles(time since) joins it, one further away starts another")]
    public static void host_write_within_a_second_continues_the_generation(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        {
            using var vm = kvm.CreateVm();
            using var v0 = vm.CreateVcpu(0);
            using var v1 = vm.CreateVcpu(1);
            v1.SetMsr(X86Msr.Tsc, 1000); // near the creation generation's TSC, but user_set_tsc is still false
            Assert.Equal(KvmClockFlags.None, Recomputed(vm));
            v0.SetMsr(X86Msr.Tsc, 1000); // now within the window of vCPU 1's write
            Assert.Equal(Stable, Recomputed(vm));
        }
        {
            using var vm = kvm.CreateVm();
            using var v0 = vm.CreateVcpu(0);
            using var v1 = vm.CreateVcpu(1);
            v1.SetMsr(X86Msr.Tsc, 0); // a first user write of 0 synchronises all the same
            Assert.Equal(Stable, Recomputed(vm));
        }
        // The last step waits longer than the window: it joins only because the time since is counted in guest cycles.
        foreach (var (seconds, waitMs) in new[] { (0.5, 50), (-0.5, 50), (1.5, 50), (-1.5, 50), (0.0, 1200) })
        {
            using var vm = kvm.CreateVm();
            using var v0 = vm.CreateVcpu(0);
            using var v1 = vm.CreateVcpu(1);
            double khz = v0.TscKhz;
            const ulong Start = 1UL << 40;
            var since = Stopwatch.StartNew();
            v1.SetMsr(X86Msr.Tsc, Start);
            Thread.Sleep(waitMs);
            double cycles = (since.Elapsed.TotalSeconds + seconds) * khz * 1000;
            v0.SetMsr(X86Msr.Tsc, (ulong)((long)Start + (long)cycles));
            Assert.True((Math.Abs(seconds) < 1 ? Stable : KvmClockFlags.None) == Recomputed(vm),
                $"a write {seconds:+0.0;-0.0} s off vCPU 1's TSC, advanced by the time since, read flags {vm.GetClock().Flags}");
        }
    }

    [ConformanceCase(X86 + " kvm_synchronize_tsc: \"if (synchronizing && vcpu->arch.virtual_tsc_khz == kvm->arch.last_tsc_khz)\" — a vCPU whose rate (KVM_SET_TSC_KHZ, which itself synchronises nothing) differs from the last write's never joins; a new vCPU at the VM's rate joins only a generation last written at that rate")]
    public static void a_vcpu_at_another_rate_starts_a_generation(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var v0 = vm.CreateVcpu(0);
        using var v1 = vm.CreateVcpu(1);
        if (vm.SupportsTscScaling) CaseContext.Skip("KVM_CAP_TSC_CONTROL: this host scales the TSC");
        uint host = v1.TscKhz;
        v1.SetTscKhz(host + 1); // within the 250 ppm tolerance: accepted
        Assert.Equal(Stable, Recomputed(vm));
        v1.SetMsr(X86Msr.Tsc, 0);
        Assert.Equal(KvmClockFlags.None, Recomputed(vm));
        v0.SetMsr(X86Msr.Tsc, 0); // last_tsc_khz is vCPU 1's rate: vCPU 0 starts its own generation
        Assert.Equal(KvmClockFlags.None, Recomputed(vm));
        using var v2 = vm.CreateVcpu(2); // joins vCPU 0's generation, vCPU 1 is still out
        Assert.Equal(KvmClockFlags.None, Recomputed(vm));
        v1.SetTscKhz(host);
        v1.SetMsr(X86Msr.Tsc, 0);
        Assert.Equal(Stable, Recomputed(vm));
        v1.SetTscKhz(host + 1);
        v1.SetMsr(X86Msr.Tsc, 0);
        using var v3 = vm.CreateVcpu(3); // last written at vCPU 1's rate: a generation of its own
        Assert.Equal(KvmClockFlags.None, Recomputed(vm));
    }

    [ConformanceCase(X86 + " kvm_arch_tsc_set_attr: KVM_VCPU_TSC_OFFSET joins the generation only when the offset equals kvm->arch.last_tsc_offset (the last one synchronised on any vCPU) at the same rate; it sets user_set_tsc")]
    public static void tsc_offset_attribute_matches_the_last_offset(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var v0 = vm.CreateVcpu(0);
        using var v1 = vm.CreateVcpu(1);
        (Vcpu Vcpu, ulong Offset, KvmClockFlags Flags)[] steps =
        [
            (v0, 1UL << 44, KvmClockFlags.None), (v1, 1UL << 44, Stable), (v1, 5, KvmClockFlags.None), (v0, 5, Stable),
            (v0, 0, KvmClockFlags.None), (v1, 0, Stable), (v1, 0, Stable),
        ];
        foreach (var (vcpu, offset, flags) in steps)
        {
            vcpu.SetTscOffset(offset);
            Assert.True(flags == Recomputed(vm), $"offset 0x{offset:X} on vCPU {vcpu.Id}: flags {vm.GetClock().Flags}");
        }

        // user_set_tsc: after an offset write, a host write of the TSC a vCPU reads joins its generation.
        using var other = kvm.CreateVm();
        using var w0 = other.CreateVcpu(0);
        using var w1 = other.CreateVcpu(1);
        w1.SetTscOffset(0x777);
        Assert.Equal(KvmClockFlags.None, Recomputed(other));
        w0.SetMsr(X86Msr.Tsc, w1.GetMsr(X86Msr.Tsc));
        Assert.Equal(Stable, Recomputed(other));
    }

    [ConformanceCase(X86 + " kvm_arch_tsc_get_attr / kvm_arch_tsc_set_attr: the offset a vCPU reads back is kvm->arch.last_tsc_offset after its synchronisation, so writing it to another vCPU keeps the VM matched (what a VMM restoring one offset on every vCPU does)")]
    public static void tsc_offset_read_back_keeps_the_vcpus_matched(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool deviates = HostDeviations.KvmPvmTscOffsetReadBackStartsAGeneration(ctx.Target.IsReal);
        var expected = deviates ? KvmClockFlags.None : Stable;
        {
            using var vm = kvm.CreateVm();
            using var v0 = vm.CreateVcpu(0);
            using var v1 = vm.CreateVcpu(1);
            v0.SetTscOffset(v1.GetTscOffset());
            Assert.Equal(expected, Recomputed(vm));
        }
        {
            using var vm = kvm.CreateVm();
            using var v0 = vm.CreateVcpu(0);
            using var v1 = vm.CreateVcpu(1);
            v0.SetMsr(X86Msr.Tsc, 12345);
            v1.SetTscOffset(v0.GetTscOffset());
            Assert.Equal(expected, Recomputed(vm));
        }
    }

    [ConformanceCase(X86 + " kvm_track_tsc_matching (6.7+): KVM_REQ_MASTERCLOCK_UPDATE is made on the synchronised vCPU only, when use_master_clock would toggle or a new generation starts while it is on; vcpu_enter_guest serves it from that vCPU's KVM_RUN alone, and recomputes from the VM's state then")]
    public static void master_clock_follows_the_synchronised_vcpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        {
            using var vm = kvm.CreateVm();
            using var v0 = vm.CreateVcpu(0);
            using var v1 = vm.CreateVcpu(1);
            Assert.Equal(KvmClockFlags.None, vm.GetClock().Flags);
            Run(ctx, v1);
            Assert.Equal(Stable, vm.GetClock().Flags);
            Run(ctx, v0);
            Assert.Equal(Stable, vm.GetClock().Flags);
            v1.SetMsr(X86Msr.Tsc, 12345); // a new generation: requested on vCPU 1
            Assert.Equal(Stable, vm.GetClock().Flags);
            Run(ctx, v0);
            Assert.Equal(Stable, vm.GetClock().Flags);
            Run(ctx, v1);
            Assert.Equal(KvmClockFlags.None, vm.GetClock().Flags);
            v0.SetMsr(X86Msr.Tsc, 0); // joins vCPU 1's generation: requested on vCPU 0
            Run(ctx, v1);
            Assert.Equal(KvmClockFlags.None, vm.GetClock().Flags);
            Run(ctx, v0);
            Assert.Equal(Stable, vm.GetClock().Flags);
            v0.SetMsr(X86Msr.Tsc, 1UL << 42); // far from the last write: a new generation, requested on vCPU 0
            v1.SetMsr(X86Msr.Tsc, 0);  // joins it: matched again, nothing toggles, no request
            Run(ctx, v0);               // serves vCPU 0's request with the VM matched again
            Assert.Equal(Stable, vm.GetClock().Flags);
        }
        {
            using var vm = kvm.CreateVm();
            using var v0 = vm.CreateVcpu(0);
            using var v1 = vm.CreateVcpu(1);
            Run(ctx, v0);
            Run(ctx, v1);
            v0.SetMsr(X86Msr.Tsc, 0);       // same generation, master clock stays on: no request (before 6.7 there was one)
            v1.SetMsr(X86Msr.Tsc, 1UL << 45); // requested on vCPU 1
            Run(ctx, v0);
            Assert.Equal(Stable, vm.GetClock().Flags);
            Run(ctx, v1);
            Assert.Equal(KvmClockFlags.None, vm.GetClock().Flags);
            // KVM_SET_CLOCK recomputes at once and leaves the requests pending.
            v1.SetMsr(X86Msr.Tsc, 0); // joins vCPU 1's own generation again: nothing changes
            v0.SetMsr(X86Msr.Tsc, 0); // matched: requested on vCPU 0
            Assert.Equal(Stable, Recomputed(vm));
        }
    }

    [ConformanceCase(X86 + " kvm_set_msr_common MSR_IA32_TSC without host_initiated: a guest's WRMSR is adjust_tsc_offset_guest, its own offset only — no generation starts, the VM stays matched")]
    public static void guest_tsc_write_starts_no_generation(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a =>
        {
            a.mov(ecx, unchecked((int)X86Msr.Tsc));
            a.xor(eax, eax);
            a.mov(edx, 1 << 18); // 2^50
            a.wrmsr();
            a.hlt();
            a.hlt();
        });
        using var second = g.Vm.CreateVcpu(1);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Equal(Stable, g.Vm.GetClock().Flags);
        Assert.Equal(Stable, Recomputed(g.Vm));
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Equal(Stable, g.Vm.GetClock().Flags);
        if (HostDeviations.KvmPvmTscWriteIgnored(ctx.Target.IsReal)) return;
        ulong moved = g.Vcpu.GetMsr(X86Msr.Tsc);
        Assert.True(moved - (1UL << 50) < Slack, $"the guest's write of 2^50 reads 0x{moved:X}");
    }

    /// <summary>KVM_SET_CLOCK (pvclock_update_vm_gtod_copy decides use_master_clock again), then KVM_GET_CLOCK's flags.</summary>
    private static KvmClockFlags Recomputed(Vm vm)
    {
        vm.SetClock(1_000_000_000);
        return vm.GetClock().Flags;
    }

    /// <summary>A KVM_RUN that serves the vCPU's requests and fails at kvm_mmu_reload: no memory slot (ENOSPC).</summary>
    private static void Run(CaseContext ctx, Vcpu vcpu) =>
        CaseContext.AssertErrno(Errno.ENOSPC, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_RUN, 0UL), $"KVM_RUN of vCPU {vcpu.Id} without a memory slot");
}
