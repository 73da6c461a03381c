// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Halt polling on the emulator (KvmMain/HaltPolling.cs; virt/kvm/kvm_main.c 6.18): grow_halt_poll_ns /
/// shrink_halt_poll_ns, the module parameters each preset has, KVM_CAP_HALT_POLL's override of halt_poll_ns on both
/// arches, and an x86 vCPU halting on its APIC timer under different maxima. What both kernels show is in
/// Conformance/Cases/HaltPollingRules.cs.
/// </summary>
public sealed class HaltPollingTests
{
    private static readonly HaltPollParameters Upstream = HaltPollParameters.X86Default;

    [Theory]
    // grow_halt_poll_ns: "val *= grow; if (val < grow_start) val = grow_start;"
    [InlineData(0u, 10_000u)]
    [InlineData(5_000u, 10_000u)]
    [InlineData(10_000u, 20_000u)]
    [InlineData(150_000u, 300_000u)]
    public void Grow_multiplies_and_starts_at_grow_start(uint from, uint to) => Assert.Equal(to, HaltPolling.Grow(from, Upstream));

    [Fact]
    public void Grow_0_leaves_the_poll_time_and_products_wrap_as_unsigned_int()
    {
        Assert.Equal(40_000u, HaltPolling.Grow(40_000, Upstream with { Grow = 0 }));
        // 0x80000000 * 2 is 0 in unsigned int, below grow_start.
        Assert.Equal(10_000u, HaltPolling.Grow(0x8000_0000, Upstream));
    }

    [Theory]
    // shrink_halt_poll_ns: "if (shrink == 0) val = 0; else val /= shrink; if (val < grow_start) val = 0;"
    [InlineData(400_000u, 2u, 200_000u)]
    [InlineData(20_000u, 2u, 10_000u)]
    [InlineData(15_000u, 2u, 0u)]
    [InlineData(400_000u, 0u, 0u)]
    [InlineData(400_000u, 4u, 100_000u)]
    public void Shrink_divides_and_drops_below_grow_start_to_0(uint from, uint shrink, uint to) =>
        Assert.Equal(to, HaltPolling.Shrink(from, Upstream with { Shrink = shrink }));

    [Fact]
    public void Presets_have_the_arch_defaults_and_like_this_host_reads_the_module()
    {
        // KVM_HALT_POLL_NS_DEFAULT: x86 200000, arm64 500000; grow 2, grow_start 10000, shrink 2.
        Assert.Equal(new HaltPollParameters(200_000, 2, 10_000, 2), HaltPolling.Parameters(new EmulatedKernel(EmulatorConfig.X86_64())));
        Assert.Equal(new HaltPollParameters(500_000, 2, 10_000, 2), HaltPolling.Parameters(new EmulatedKernel(EmulatorConfig.Arm64())));
        var host = EmulatorConfig.LikeThisHost().HaltPoll;
        const string Dir = "/sys/module/kvm/parameters";
        if (!File.Exists(Path.Combine(Dir, "halt_poll_ns")))
        {
            Assert.Null(host);
            return;
        }
        uint Read(string name) => uint.Parse(File.ReadAllText(Path.Combine(Dir, name)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(new HaltPollParameters(Read("halt_poll_ns"), Read("halt_poll_ns_grow"), Read("halt_poll_ns_grow_start"),
            Read("halt_poll_ns_shrink")), host);
    }

    [Fact]
    public void Parameters_are_read_from_a_module_directory_with_fallbacks()
    {
        string dir = Directory.CreateTempSubdirectory("haltpoll").FullName;
        try
        {
            Assert.Null(HaltPollParameters.ReadFrom(dir, Upstream));
            File.WriteAllText(Path.Combine(dir, "halt_poll_ns"), "123456\n");
            File.WriteAllText(Path.Combine(dir, "halt_poll_ns_shrink"), "0\n");
            File.WriteAllText(Path.Combine(dir, "halt_poll_ns_grow"), "not a number\n");
            Assert.Equal(new HaltPollParameters(123_456, 2, 10_000, 0), HaltPollParameters.ReadFrom(dir, Upstream));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Enable_cap_takes_a_u32_with_no_flags_on_both_arches(bool arm64)
    {
        using var kvm = Kvm.Open(new EmulatedKernel(arm64 ? EmulatorConfig.Arm64() : EmulatorConfig.X86_64()));
        using var vm = kvm.CreateVm();
        vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, 0xffff_ffff, ulong.MaxValue);
        vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, 0);
        var big = Assert.ThrowsAny<KvmException>(() => vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, 1UL << 32));
        Assert.Equal(Errno.EINVAL, big.Errno);
        var flags = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_HALT_POLL, flags = 1 };
        var withFlags = Assert.ThrowsAny<KvmException>(() => vm.EnableCapability(flags));
        Assert.Equal(Errno.EINVAL, withFlags.Errno);
    }

    private sealed record Counts(ulong Halts, ulong Attempted, ulong Successful, ulong SuccessHist, ulong FailHist, ulong WaitHist, ulong Invalid);

    private static ulong Sum(ReadOnlySpan<ulong> values)
    {
        ulong sum = 0;
        foreach (ulong v in values) sum += v;
        return sum;
    }

    /// <summary>
    /// An x86 vCPU with an in-kernel APIC halting <paramref name="halts"/> times ("cli; arm a one-shot APIC timer of
    /// <paramref name="timerNs"/> ns; sti; hlt"), on a kernel with <paramref name="parameters"/> and, when given,
    /// KVM_CAP_HALT_POLL's <paramref name="capMax"/>.
    /// </summary>
    private static Counts RunHalts(HaltPollParameters parameters, uint? capMax, int halts, int timerNs)
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.X86_64() with { HaltPoll = parameters }));
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        if (capMax is uint max) vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, max);
        using var mem = vm.AllocateMemory(HaltTimerGuest.MemSize);
        vm.AddMemorySlot(0, 0, mem);
        HaltTimerGuest.Load(mem, HaltTimerGuest.HaltLoop(halts, HaltTimerGuest.TimerVector, HaltTimerGuest.OneShot(timerNs)));
        using var v = vm.CreateVcpu(0);
        HaltTimerGuest.SetUp(v);
        using var stats = v.OpenStatistics();
        var exit = v.RunBounded();
        Assert.Equal((KvmExitReason.KVM_EXIT_IO, (ushort)HaltTimerGuest.DonePort), (exit.Reason, exit.IoPort));
        var st = stats.Read();
        Assert.Equal(0UL, st["blocking"]);
        return new Counts(mem.Read<uint>(HaltTimerGuest.Count), st["halt_attempted_poll"], st["halt_successful_poll"],
            Sum(st.GetValues("halt_poll_success_hist")), Sum(st.GetValues("halt_poll_fail_hist")), Sum(st.GetValues("halt_wait_hist")),
            st["halt_poll_invalid"]);
    }

    [Fact]
    public void Halt_poll_ns_0_means_no_polling_until_the_cap_overrides_it()
    {
        var noPolling = Upstream with { HaltPollNs = 0 };
        // kvm_vcpu_max_halt_poll_ns = halt_poll_ns = 0: vcpu->halt_poll_ns is reset to 0 after every halt.
        var c = RunHalts(noPolling, null, 20, 100_000);
        Assert.Equal((20UL, 0UL, 0UL, 0UL, 0UL), (c.Halts, c.Attempted, c.Successful, c.SuccessHist, c.FailHist));
        Assert.InRange(c.WaitHist, 1UL, 20UL); // a halt whose timer had not yet fired slept
        // KVM_CAP_HALT_POLL's 1 s overrides the module's 0: the first halt grows halt_poll_ns (10 µs), then every halt
        // polls; the window doubles until it outlasts the 100 µs timer, after which polls succeed.
        c = RunHalts(noPolling, 1_000_000_000, 20, 100_000);
        Assert.Equal(20UL, c.Halts);
        Assert.InRange(c.Attempted, 1UL, 19UL); // never the first halt: a new vCPU's halt_poll_ns is 0
        Assert.True(c.Successful >= 1, c.ToString());
        Assert.Equal((c.Successful, c.Attempted - c.Successful, 0UL), (c.SuccessHist, c.FailHist, c.Invalid));
        // A failed poll slept; a halt that polls successfully did not.
        Assert.InRange(c.WaitHist, c.Attempted - c.Successful, 20UL - c.Successful);
    }

    [Fact]
    public void A_cap_of_0_disables_polling_whatever_the_module_says()
    {
        var c = RunHalts(Upstream with { HaltPollNs = 1_000_000_000 }, 0, 20, 100_000);
        Assert.Equal((20UL, 0UL, 0UL), (c.Halts, c.Attempted, c.Successful));
        Assert.InRange(c.WaitHist, 1UL, 20UL);
    }

    [Fact]
    public void The_module_maximum_applies_without_the_cap()
    {
        // halt_poll_ns 1 s, no cap: as the cap's 1 s above.
        var c = RunHalts(Upstream with { HaltPollNs = 1_000_000_000 }, null, 20, 100_000);
        Assert.Equal(20UL, c.Halts);
        Assert.InRange(c.Attempted, 1UL, 19UL);
        Assert.True(c.Successful >= 1, c.ToString());
    }
}
