// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The x86 in-kernel PIT: KVM_CREATE_PIT(2), KVM_GET/SET_PIT(2), KVM_REINJECT_CONTROL (arch/x86/kvm/x86.c
/// kvm_arch_vm_ioctl) and the i8254 a guest programs through ports 0x40–0x43 and 0x61 (arch/x86/kvm/i8254.c). Probed in
/// C on Linux 6.18 kvm_pvm first; none differs from upstream 6.18. Counts follow the host clock, so guests assert
/// ranges and that counts fall with time, never exact values.
/// </summary>
public static class PitRules
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const string I8254 = "arch/x86/kvm/i8254.c";

    /// <summary>The guest's report port (16-bit OUT) and its done port.</summary>
    private const byte Report = 0x10, Done = 0x11;

    /// <summary>How long the host waits at each report: at least this many PIT ticks pass (KVM_PIT_FREQ 1193182 Hz).</summary>
    private const int SleepMs = 6;

    private const long MinTicksPerSleep = SleepMs * 1193182L / 1000;

    private static long Ioctl<T>(Vm vm, uint request, ref T value) where T : unmanaged => vm.Kernel.Ioctl(vm.Handle, request, Raw(ref value));

    private static long CreatePit2(Vm vm, uint flags)
    {
        var cfg = new kvm_pit_config { flags = flags };
        return Ioctl(vm, KvmIoctls.KVM_CREATE_PIT2, ref cfg);
    }

    [ConformanceCase(X86 + " kvm_vm_ioctl_check_extension: KVM_CAP_PIT, KVM_CAP_PIT2, KVM_CAP_PIT_STATE2, KVM_CAP_REINJECT_CONTROL are 1 on /dev/kvm and the VM")]
    public static void pit_capabilities(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        foreach (int cap in new[] { KvmCaps.KVM_CAP_PIT, KvmCaps.KVM_CAP_PIT2, KvmCaps.KVM_CAP_PIT_STATE2, KvmCaps.KVM_CAP_REINJECT_CONTROL })
        {
            Assert.True(kvm.CheckExtension(cap) == 1, $"{KvmCaps.NameOf(cap)} on /dev/kvm: {kvm.CheckExtension(cap)}");
            Assert.True(vm.CheckExtension(cap) == 1, $"{KvmCaps.NameOf(cap)} on the VM: {vm.CheckExtension(cap)}");
        }
    }

    [ConformanceCase(X86 + " create_pit: copy_from_user (EFAULT) first; !pic_in_kernel → ENOENT (no irqchip, or a split one); after KVM_CREATE_IRQCHIP any flags are accepted, also after a vCPU exists; a second KVM_CREATE_PIT(2) → EEXIST")]
    public static void pit_creation_rules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var vm = kvm.CreateVm())
        {
            AssertErrno(Errno.EFAULT, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_PIT2, Span<byte>.Empty), "KVM_CREATE_PIT2 with NULL");
            AssertErrno(Errno.ENOENT, CreatePit2(vm, 0), "KVM_CREATE_PIT2 without an irqchip");
            AssertErrno(Errno.ENOENT, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_PIT, 0UL), "KVM_CREATE_PIT without an irqchip");
            AssertErrno(Errno.ENOENT, () => vm.CreatePit());
            // The failures left nothing behind: the irqchip and then the PIT can still be created.
            vm.CreateIrqchip();
            using var vcpu = vm.CreateVcpu(0);
            Assert.Equal(0, CreatePit2(vm, 0xfffffffe)); // flags beyond KVM_PIT_SPEAKER_DUMMY are not looked at
            AssertErrno(Errno.EEXIST, CreatePit2(vm, 0), "a second KVM_CREATE_PIT2");
            AssertErrno(Errno.EEXIST, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_PIT, 0UL), "KVM_CREATE_PIT after KVM_CREATE_PIT2");
        }
        using (var vm = kvm.CreateVm())
        {
            vm.EnableSplitIrqchip(24);
            AssertErrno(Errno.ENOENT, CreatePit2(vm, KvmConstants.KVM_PIT_SPEAKER_DUMMY), "KVM_CREATE_PIT2 with a split irqchip");
        }
    }

    [ConformanceCase(X86 + " KVM_GET_PIT/SET_PIT/SET_PIT2/REINJECT_CONTROL: copy_from_user (EFAULT) before !kvm->arch.vpit (ENXIO); KVM_GET_PIT2: ENXIO before any copy")]
    public static void pit_requests_without_a_pit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var ps = default(kvm_pit_state);
        var ps2 = default(kvm_pit_state2);
        var rc = default(kvm_reinject_control);
        foreach (uint request in new[] { KvmIoctls.KVM_GET_PIT, KvmIoctls.KVM_SET_PIT, KvmIoctls.KVM_SET_PIT2, KvmIoctls.KVM_REINJECT_CONTROL })
            AssertErrno(Errno.EFAULT, vm.Kernel.Ioctl(vm.Handle, request, Span<byte>.Empty), $"{KvmIoctls.NameOf(request)} with NULL");
        AssertErrno(Errno.ENXIO, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_PIT2, Span<byte>.Empty), "KVM_GET_PIT2 with NULL");
        AssertErrno(Errno.ENXIO, Ioctl(vm, KvmIoctls.KVM_GET_PIT, ref ps), "KVM_GET_PIT");
        AssertErrno(Errno.ENXIO, Ioctl(vm, KvmIoctls.KVM_SET_PIT, ref ps), "KVM_SET_PIT");
        AssertErrno(Errno.ENXIO, Ioctl(vm, KvmIoctls.KVM_GET_PIT2, ref ps2), "KVM_GET_PIT2");
        AssertErrno(Errno.ENXIO, Ioctl(vm, KvmIoctls.KVM_SET_PIT2, ref ps2), "KVM_SET_PIT2");
        AssertErrno(Errno.ENXIO, Ioctl(vm, KvmIoctls.KVM_REINJECT_CONTROL, ref rc), "KVM_REINJECT_CONTROL");
    }

    [ConformanceCase(I8254 + " kvm_pit_reset, kvm_vm_ioctl_get/set_pit(2): a new PIT has mode 0xff, count 0x10000, gates 1/1/0, flags 0 and count_load_time only on channels 1 and 2; SET stores every field and flag as given (KVM_GET_PIT leaves flags/reserved untouched, GET_PIT2 zeroes reserved), then pit_load_count turns a 0 count into 0x10000 and stamps channels 1 and 2 with ktime_get")]
    public static void pit_state_round_trip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        Assert.Equal(0, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_PIT, 0UL));
        var fresh = new kvm_pit_state2 { flags = 0xaaaaaaaa };
        fresh.reserved[3] = 0xaaaaaaaa;
        Assert.Equal(0, Ioctl(vm, KvmIoctls.KVM_GET_PIT2, ref fresh));
        Assert.Equal((0u, 0u), (fresh.flags, fresh.reserved[3]));
        for (int i = 0; i < 3; i++)
        {
            var c = fresh.channels[i];
            Assert.True(c is { count: 0x10000, mode: 0xff, latched_count: 0, count_latched: 0, status_latched: 0, status: 0, read_state: 0, write_state: 0, rw_mode: 0, bcd: 0 },
                $"channel {i}: count 0x{c.count:x} mode 0x{c.mode:x} rw {c.rw_mode}");
            Assert.Equal(i == 2 ? 0 : 1, c.gate);
        }
        Assert.Equal(0, fresh.channels[0].count_load_time);
        Assert.True(fresh.channels[1].count_load_time > 0 && fresh.channels[2].count_load_time >= fresh.channels[1].count_load_time);

        // KVM_GET_PIT copies the 72 channel bytes only.
        var wide = new byte[112];
        Array.Fill(wide, (byte)0xaa);
        Assert.Equal(0, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_PIT, wide.AsSpan(0, 72)));
        Assert.All(wide[72..], b => Assert.Equal(0xaa, b));

        var set = new kvm_pit_state2 { flags = 0xfffffff2 };
        set.reserved[0] = 9;
        for (int i = 0; i < 3; i++)
        {
            set.channels[i] = new kvm_pit_channel_state
            {
                count = i == 1 ? 0x20000u : 0, latched_count = 0x1234, count_latched = 3, status_latched = 1, status = 0x55,
                read_state = 4, write_state = 9, write_latch = 0x77, rw_mode = 3, mode = (byte)(i == 2 ? 7 : 2), bcd = 1, gate = 5,
                count_load_time = 12345,
            };
        }
        long before = fresh.channels[2].count_load_time;
        Assert.Equal(0, Ioctl(vm, KvmIoctls.KVM_SET_PIT2, ref set));
        var got = default(kvm_pit_state2);
        Assert.Equal(0, Ioctl(vm, KvmIoctls.KVM_GET_PIT2, ref got));
        Assert.Equal(0xfffffff2u, got.flags);
        Assert.Equal(0u, got.reserved[0]);
        for (int i = 0; i < 3; i++)
        {
            var want = set.channels[i];
            want.count = i == 1 ? 0x20000u : 0x10000u;
            if (i != 0)
            {
                Assert.True(got.channels[i].count_load_time >= before, $"channel {i} is stamped with the time of the SET");
                want.count_load_time = got.channels[i].count_load_time;
            }
            Assert.Equal(want, got.channels[i]);
        }

        // KVM_SET_PIT leaves the flags alone.
        var ps = default(kvm_pit_state);
        ps.channels[0] = set.channels[0];
        Assert.Equal(0, Ioctl(vm, KvmIoctls.KVM_SET_PIT, ref ps));
        Assert.Equal(0, Ioctl(vm, KvmIoctls.KVM_GET_PIT2, ref got));
        Assert.Equal(0xfffffff2u, got.flags);
        Assert.Equal(0x10000u, got.channels[1].count);
    }

    [ConformanceCase(I8254 + " kvm_vm_ioctl_reinject: any pit_reinject value is accepted (non-zero is on), the reserved bytes are not looked at")]
    public static void pit_reinject_control(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        vm.CreatePit(PitFlags.None);
        var rc = new kvm_reinject_control { pit_reinject = 0 };
        rc.reserved[5] = 0xff;
        Assert.Equal(0, Ioctl(vm, KvmIoctls.KVM_REINJECT_CONTROL, ref rc));
        rc.pit_reinject = 0x80;
        Assert.Equal(0, Ioctl(vm, KvmIoctls.KVM_REINJECT_CONTROL, ref rc));
        vm.SetPitReinject(false);
        vm.SetPitReinject(true);
    }

    /// <summary>Reads a word count through <c>dx</c> (low byte then high) and reports it.</summary>
    private static void ReadWordAndReport(Assembler a)
    {
        a.@in(al, dx);
        a.mov(bl, al);
        a.@in(al, dx);
        a.mov(bh, al);
        a.mov(ax, bx);
        a.@out(Report, ax);
    }

    private static void ProgramChannel(Assembler a, int channel)
    {
        a.mov(dx, (ushort)(0x40 + channel));
        a.mov(al, (byte)((channel << 6) | 0x30 | (2 << 1))); // word access, mode 2, binary
        a.@out(0x43, al);
        a.mov(al, 0xff);
        a.@out(dx, al);
        a.@out(dx, al); // count 0xffff
        ReadWordAndReport(a); // R0
        ReadWordAndReport(a); // R1, at least SleepMs later
        a.mov(al, (byte)(channel << 6)); // counter latch
        a.@out(0x43, al);
        a.mov(ax, 0xaaaa);
        a.@out(Report, ax); // the host sleeps with the count latched
        ReadWordAndReport(a); // L: the latched count
        ReadWordAndReport(a); // R2: live again
        a.mov(al, (byte)(0xc0 | 0x20 | (2 << channel))); // read-back: status only
        a.@out(0x43, al);
        a.@in(al, dx);
        a.movzx(ax, al);
        a.@out(Report, ax); // status
        a.mov(al, (byte)((channel << 6) | 0x30 | (7 << 1) | 1)); // mode 7 (= 3), BCD
        a.@out(0x43, al);
        a.mov(al, (byte)(0xc0 | 0x20 | (2 << channel)));
        a.@out(0x43, al);
        a.@in(al, dx);
        a.movzx(ax, al);
        a.@out(Report, ax); // status
    }

    private static List<ushort> RunReports(Vcpu vcpu, Action<int>? atReport = null)
    {
        var reports = new List<ushort>();
        for (int n = 0; n < 64; n++)
        {
            var exit = vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut, $"after {reports.Count} reports: {exit.ToString()}");
            if (exit.IoPort == Done) return reports;
            Assert.True(exit.IoPort == Report && exit.IoSize == 2, $"after {reports.Count} reports: {exit.ToString()}");
            reports.Add((ushort)(exit.IoData[0] | (exit.IoData[1] << 8)));
            atReport?.Invoke(reports.Count - 1);
            Thread.Sleep(SleepMs);
        }
        throw new Xunit.Sdk.XunitException("the guest did not finish within 64 exits");
    }

    /// <summary>Ticks from <paramref name="earlier"/> to <paramref name="later"/> of a mode 2 counter of 0xffff.</summary>
    private static long TicksBetween(ushort earlier, ushort later) => ((earlier - later) % 0xffff + 0xffff) % 0xffff;

    private static void AssertChannelReports(List<ushort> r, int at, int channel)
    {
        ushort r0 = r[at], r1 = r[at + 1], marker = r[at + 2], latched = r[at + 3], r2 = r[at + 4], status = r[at + 5], status7 = r[at + 6];
        string all = string.Join(' ', r.Skip(at).Take(7).Select(v => v.ToString("x4")));
        Assert.True(r0 is > 0 and <= 0xffff, $"channel {channel}: R0 {all}");
        // The counter wraps every 55 ms (0xffff at 1193182 Hz): a host sleep that a loaded machine stretches past that
        // makes the distance modulo a period, so only "it fell" is asserted between live reads.
        Assert.True(TicksBetween(r0, r1) > 0, $"channel {channel}: the count falls with time: {all}");
        Assert.Equal(0xaaaa, marker);
        Assert.True(TicksBetween(r1, latched) > 0, $"channel {channel}: latched after R1's sleep: {all}");
        // Without the latch L would be read microseconds before R2. One run on kvm_pvm (channel 0, hrtimer-based) saw
        // only 2.6 ms between them for a 6 ms sleep, so a quarter of the sleep is asserted.
        Assert.True(TicksBetween(latched, r2) >= MinTicksPerSleep / 4, $"channel {channel}: the latch held across the sleep: {all}");
        Assert.True((status & 0x7f) == 0x34, $"channel {channel}: status 0x{status:x2} is word access, mode 2, binary (OUT bit 7 free)");
        Assert.True((status7 & 0x7f) == 0x37, $"channel {channel}: status 0x{status7:x2} is word access, mode 7 stored as 3, BCD");
    }

    [ConformanceCase(I8254 + " pit_ioport_write/read, pit_get_count, pit_latch_count/status: a guest programs channels 2 and 0 (word access, mode 2, count 0xffff) through ports 0x43/0x42/0x40, its counts fall with the host clock, a latch holds the count until both bytes are read, read-back returns the status byte and modes 6/7 are stored as 2/3; no port exits to userspace")]
    public static void pit_guest_programs_and_reads_counters(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, VmType.Default, GuestMemoryBacking.HostMemory, vm =>
        {
            vm.CreateIrqchip();
            vm.CreatePit(PitFlags.SpeakerDummy);
        }, a =>
        {
            a.cli();
            ProgramChannel(a, 2);
            ProgramChannel(a, 0);
            a.@out(Done, al);
            a.hlt();
        });
        var r = RunReports(g.Vcpu);
        Assert.Equal(14, r.Count);
        AssertChannelReports(r, 0, 2);
        AssertChannelReports(r, 7, 0);
        var s = g.Vm.GetPit();
        Assert.Equal((0xffffu, (byte)3, true), (s.Channel0.Count, s.Channel0.Mode, s.Channel0.Bcd));
        Assert.Equal((0xffffu, (byte)3, (byte)3), (s.Channel2.Count, s.Channel2.Mode, s.Channel2.AccessMode));
    }

    [ConformanceCase(I8254 + " speaker_ioport_write/read with KVM_PIT_SPEAKER_DUMMY: port 0x61 bit 0 is channel 2's gate and bit 1 KVM_PIT_FLAGS_SPEAKER_DATA_ON, read back in the same bits; without the flag port 0x61 is not the kernel's (KVM_EXIT_IO)")]
    public static void pit_speaker_port(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var states = new List<PitState>();
        using (var g = LongModeGuest.Create(kvm, VmType.Default, GuestMemoryBacking.HostMemory, vm =>
        {
            vm.CreateIrqchip();
            vm.CreatePit(PitFlags.SpeakerDummy);
        }, a =>
        {
            a.cli();
            a.mov(al, 3);
            a.@out(0x61, al);
            a.@in(al, 0x61);
            a.movzx(ax, al);
            a.@out(Report, ax);
            a.mov(al, 0);
            a.@out(0x61, al);
            a.@in(al, 0x61);
            a.movzx(ax, al);
            a.@out(Report, ax);
            a.@out(Done, al);
            a.hlt();
        }))
        {
            var r = RunReports(g.Vcpu, _ => states.Add(g.Vm.GetPit()));
            Assert.Equal(2, r.Count);
            Assert.True((r[0] & 3) == 3, $"port 0x61 after writing 3: 0x{r[0]:x2}");
            Assert.True((r[1] & 3) == 0, $"port 0x61 after writing 0: 0x{r[1]:x2}");
            Assert.True((r[0] & 0xffc0) == 0 && (r[1] & 0xffc0) == 0, "only bits 0, 1, 4 and 5 are ever set");
            Assert.Equal((PitStateFlags.SpeakerDataOn, (byte)1), (states[0].Flags, states[0].Channel2.Gate));
            Assert.Equal((PitStateFlags.None, (byte)0), (states[1].Flags, states[1].Channel2.Gate));
        }

        using var plain = LongModeGuest.Create(kvm, VmType.Default, GuestMemoryBacking.HostMemory, vm =>
        {
            vm.CreateIrqchip();
            vm.CreatePit(PitFlags.None);
        }, a =>
        {
            a.@in(al, 0x61);
            a.@in(al, 0x40);
            a.@out(Done, al);
            a.hlt();
        });
        var exit = plain.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && !exit.IoIsOut && exit.IoPort == 0x61, $"IN from 0x61 without the dummy speaker: {exit.ToString()}");
        exit = plain.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == Done, $"IN from 0x40 is the kernel's: {exit.ToString()}");
    }
}
