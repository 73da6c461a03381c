// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.X86;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The kvmclock MSRs (uapi asm/kvm_para.h) as arch/x86/kvm/x86.c takes them without KVM_CAP_ENFORCE_PV_FEATURE_CPUID:
/// kvm_set_msr_common / kvm_get_msr_common, kvm_write_system_time (vcpu->arch.time, the pv_time cache, KVM_REQ_CLOCK_UPDATE),
/// kvm_guest_time_update / kvm_setup_guest_pvclock (struct pvclock_vcpu_time_info {u32 version, pad0; u64 tsc_timestamp;
/// u64 system_time; u32 tsc_to_system_mul; s8 tsc_shift; u8 flags; u8 pad[2]}) and kvm_write_wall_clock (struct
/// pvclock_wall_clock {u32 version, sec, nsec}). Time passes while a case runs: times are checked against KVM_GET_CLOCK
/// and the guest TSC with loose bounds, the scale and the versions exactly.
/// </summary>
public static class KvmClockMsrRules
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const uint WallClockNew = 0x4b56_4d00, SystemTimeNew = 0x4b56_4d01, SystemTimeOld = 0x12;
    private const ulong PvclockGpa = 0x1F_0000, WallClockGpa = 0x1F_1000;
    private const byte TscStableBit = 1, GuestStoppedBit = 2;
    /// <summary>Loose bound between a time the structure gives and one read around it (scheduling on a shared host).</summary>
    private const ulong Slack = 100_000_000;

    /// <summary>struct pvclock_vcpu_time_info as read from guest memory.</summary>
    private readonly record struct TimeInfo(uint Version, uint Pad0, ulong TscTimestamp, ulong SystemTime, uint Mul, sbyte Shift, byte Flags, ushort Pad)
    {
        public static TimeInfo Read(LongModeGuest g, ulong gpa)
        {
            var b = new byte[32];
            g.Memory.Read(gpa, b);
            return new TimeInfo(BinaryPrimitives.ReadUInt32LittleEndian(b), BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(4)),
                BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(8)), BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(16)),
                BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(24)), (sbyte)b[28], b[29], BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(30)));
        }

        /// <summary>pvclock_scale_delta: the nanoseconds <paramref name="tsc"/> is past tsc_timestamp, plus system_time.</summary>
        public ulong ClockAt(ulong tsc)
        {
            ulong delta = tsc - TscTimestamp;
            delta = Shift < 0 ? delta >> -Shift : delta << Shift;
            return SystemTime + (ulong)(((UInt128)delta * Mul) >> 32);
        }
    }

    /// <summary>kvm_get_time_scale(scaled_hz, base_hz, &amp;shift, &amp;mul) as x86.c computes it.</summary>
    private static (sbyte Shift, uint Mul) TimeScale(ulong scaledHz, ulong baseHz)
    {
        int shift = 0;
        ulong tps64 = baseHz, scaled64 = scaledHz;
        while (tps64 > scaled64 * 2 || (tps64 & 0xffff_ffff_0000_0000) != 0)
        {
            tps64 >>= 1;
            shift--;
        }
        uint tps32 = (uint)tps64;
        while (tps32 <= scaled64 || (scaled64 & 0xffff_ffff_0000_0000) != 0)
        {
            if ((scaled64 & 0xffff_ffff_0000_0000) != 0 || (tps32 & 0x8000_0000) != 0) scaled64 >>= 1;
            else tps32 <<= 1;
            shift++;
        }
        return ((sbyte)shift, (uint)((scaled64 << 32) / tps32));
    }

    /// <summary>A guest that halts again at every KVM_RUN.</summary>
    private static LongModeGuest HaltGuest(Kvm kvm) => LongModeGuest.Create(kvm, a =>
    {
        var top = a.CreateLabel();
        a.Label(ref top);
        a.hlt();
        a.jmp(top);
    });

    private static void RunToHlt(Vcpu vcpu) => Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);

    /// <summary>The structure's time extrapolated to the guest TSC now, against KVM_GET_CLOCK read right after.</summary>
    private static void AssertTimeMatchesGetClock(LongModeGuest g, TimeInfo info)
    {
        ulong tsc = g.Vcpu.GetMsr(MsrIndex.IA32_TSC);
        ulong clock = g.Vm.GetClock().Nanoseconds;
        Assert.True(info.TscTimestamp <= tsc, $"tsc_timestamp 0x{info.TscTimestamp:X} after the guest TSC 0x{tsc:X} read later");
        ulong fromStruct = info.ClockAt(tsc);
        Assert.True(fromStruct <= clock + Slack && clock <= fromStruct + Slack,
            $"pvclock time {fromStruct} ns at TSC 0x{tsc:X}, KVM_GET_CLOCK {clock} ns (system_time {info.SystemTime}, tsc_timestamp 0x{info.TscTimestamp:X})");
    }

    [ConformanceCase(X86 + " kvm_write_system_time from KVM_SET_MSRS (MSR_KVM_SYSTEM_TIME_NEW, enable bit 0): read back as written; the next KVM_RUN's kvm_guest_time_update writes pvclock_vcpu_time_info: version 2 from 0, pads 0, mul/shift = kvm_get_time_scale(NSEC_PER_SEC, tsc_khz * 1000), PVCLOCK_TSC_STABLE_BIT with the master clock, system_time + scaled TSC delta = KVM_GET_CLOCK")]
    public static void host_enabled_system_time_is_written_at_the_next_run(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = HaltGuest(kvm);
        g.Memory.Fill(PvclockGpa, 32, 0);
        g.Vcpu.SetMsr(SystemTimeNew, PvclockGpa | 1);
        Assert.Equal(PvclockGpa | 1, g.Vcpu.GetMsr(SystemTimeNew));
        Assert.Equal(0u, TimeInfo.Read(g, PvclockGpa).Version); // nothing before an entry: KVM_REQ_CLOCK_UPDATE
        RunToHlt(g.Vcpu);
        var info = TimeInfo.Read(g, PvclockGpa);
        Assert.Equal(2u, info.Version);
        Assert.Equal((0u, (ushort)0), (info.Pad0, info.Pad));
        var (shift, mul) = TimeScale(1_000_000_000, (ulong)g.Vcpu.TscKhz * 1000);
        Assert.Equal((shift, mul), (info.Shift, info.Mul));
        var reading = g.Vm.GetClock();
        Assert.Equal(reading.IsTscStable ? TscStableBit : (byte)0, info.Flags);
        AssertTimeMatchesGetClock(g, info);
        // Both system time MSRs are vcpu->arch.time.
        Assert.Equal(PvclockGpa | 1, g.Vcpu.GetMsr(SystemTimeOld));
    }

    [ConformanceCase(X86 + " a guest WRMSR of MSR_KVM_SYSTEM_TIME_NEW: KVM_REQ_CLOCK_UPDATE is served before the guest's next instruction (it reads version 2), RDMSR reads the value back")]
    public static void guest_enabled_system_time_is_there_at_the_next_instruction(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a =>
        {
            MsrAsm.Wrmsr(a, SystemTimeNew, PvclockGpa | 1);
            a.mov(ebx, __dword_ptr[PvclockGpa]);
            a.mov(ecx, SystemTimeNew);
            a.rdmsr();
            a.hlt();
        });
        g.Memory.Fill(PvclockGpa, 32, 0);
        RunToHlt(g.Vcpu);
        var regs = g.Vcpu.GetRegs();
        Assert.Equal(2UL, regs.rbx);
        Assert.Equal(PvclockGpa | 1, (regs.rdx << 32) | (uint)regs.rax);
        var info = TimeInfo.Read(g, PvclockGpa);
        Assert.Equal(2u, info.Version);
        AssertTimeMatchesGetClock(g, info);
    }

    [ConformanceCase(X86 + " kvm_write_system_time with bit 0 clear deactivates pv_time: KVM_RUN and KVM_SET_CLOCK's update write nothing; enabling again: version (old + 1) | 1 then + 1 over the guest's junk, PVCLOCK_GUEST_STOPPED kept from the guest's flags")]
    public static void disabled_system_time_is_not_written(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = HaltGuest(kvm);
        g.Memory.Fill(PvclockGpa, 32, 0);
        g.Vcpu.SetMsr(SystemTimeNew, PvclockGpa | 1);
        RunToHlt(g.Vcpu);
        Assert.Equal(2u, TimeInfo.Read(g, PvclockGpa).Version);

        g.Vcpu.SetMsr(SystemTimeNew, PvclockGpa);
        Assert.Equal(PvclockGpa, g.Vcpu.GetMsr(SystemTimeNew));
        g.Memory.Fill(PvclockGpa, 32, 0xAA);
        RunToHlt(g.Vcpu);
        g.Vm.SetClock(g.Vm.GetClock().Nanoseconds);
        RunToHlt(g.Vcpu);
        var junk = new byte[32];
        g.Memory.Read(PvclockGpa, junk);
        Assert.All(junk, b => Assert.Equal(0xAA, b));

        // 0xAAAAAAAA + 1 is odd already; flags 0xAA has GUEST_STOPPED (bit 1).
        g.Vcpu.SetMsr(SystemTimeNew, PvclockGpa | 1);
        RunToHlt(g.Vcpu);
        var info = TimeInfo.Read(g, PvclockGpa);
        Assert.Equal(0xAAAA_AAACu, info.Version);
        Assert.Equal((0u, (ushort)0), (info.Pad0, info.Pad));
        Assert.Equal((byte)((g.Vm.GetClock().IsTscStable ? TscStableBit : 0) | GuestStoppedBit), info.Flags);
    }

    [ConformanceCase(X86 + " kvm_write_system_time: the MSR takes any value (read back as written) — a structure crossing a 4 KiB page (kvm_gpc_activate -EINVAL) or outside every memslot is never written; an address not 32-byte aligned inside a page is")]
    public static void system_time_addresses(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = HaltGuest(kvm);
        g.Memory.Fill(PvclockGpa, 0x2000, 0);
        const ulong Crossing = PvclockGpa + 0xFF0;
        g.Vcpu.SetMsr(SystemTimeNew, Crossing | 1);
        Assert.Equal(Crossing | 1, g.Vcpu.GetMsr(SystemTimeNew));
        RunToHlt(g.Vcpu);
        var page = new byte[0x2000];
        g.Memory.Read(PvclockGpa, page);
        Assert.All(page, b => Assert.Equal(0, b));

        const ulong Unbacked = 0x4000_0000;
        g.Vcpu.SetMsr(SystemTimeNew, Unbacked | 1);
        Assert.Equal(Unbacked | 1, g.Vcpu.GetMsr(SystemTimeNew));
        RunToHlt(g.Vcpu);

        const ulong Unaligned = PvclockGpa + 0x106;
        g.Vcpu.SetMsr(SystemTimeNew, Unaligned | 1);
        RunToHlt(g.Vcpu);
        var info = TimeInfo.Read(g, Unaligned);
        Assert.Equal(2u, info.Version);
        AssertTimeMatchesGetClock(g, info);
    }

    [ConformanceCase(X86 + " kvm_write_system_time from the guest on vCPU 0 with the old MSR_KVM_SYSTEM_TIME: boot_vcpu_runs_old_kvmclock, a master clock update turns the master clock off — the structure's flags and KVM_GET_CLOCK's are 0")]
    public static void old_system_time_msr_turns_the_master_clock_off(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a =>
        {
            MsrAsm.Wrmsr(a, SystemTimeOld, PvclockGpa | 1);
            a.hlt();
        });
        g.Memory.Fill(PvclockGpa, 32, 0);
        RunToHlt(g.Vcpu);
        var info = TimeInfo.Read(g, PvclockGpa);
        Assert.Equal(2u, info.Version);
        Assert.Equal(0, info.Flags);
        Assert.False(g.Vm.GetClock().IsTscStable);
        AssertTimeMatchesGetClock(g, info);
        Assert.Equal(PvclockGpa | 1, g.Vcpu.GetMsr(SystemTimeNew));
    }

    [ConformanceCase(X86 + " kvm_write_wall_clock on MSR_KVM_WALL_CLOCK_NEW: written at once (no KVM_RUN): version 2 from 0 and 8 from junk 5 (stepped to 6, 7 while written), sec:nsec = realtime - kvmclock; read back as written; an address outside every memslot is kept and nothing is written")]
    public static void wall_clock_is_written_at_once(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = HaltGuest(kvm);
        g.Memory.Fill(WallClockGpa, 12, 0);
        g.Vcpu.SetMsr(WallClockNew, WallClockGpa);
        ulong realtime = (ulong)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        ulong kvmclock = g.Vm.GetClock().Nanoseconds;
        Assert.Equal(WallClockGpa, g.Vcpu.GetMsr(WallClockNew));
        Assert.Equal(WallClockGpa, g.Vcpu.GetMsr(0x11)); // both are kvm->arch.wall_clock
        Assert.Equal(2u, g.Memory.Read<uint>(WallClockGpa));
        uint sec = g.Memory.Read<uint>(WallClockGpa + 4), nsec = g.Memory.Read<uint>(WallClockGpa + 8);
        Assert.True(nsec < 1_000_000_000, $"nsec {nsec}");
        ulong epoch = sec * 1_000_000_000UL + nsec, expected = realtime - kvmclock;
        Assert.True(epoch <= expected + 1_000_000_000 && expected <= epoch + 1_000_000_000, $"wall clock {sec}.{nsec:D9}, realtime - kvmclock {expected} ns");

        g.Memory.Write(WallClockGpa, 5u);
        g.Vcpu.SetMsr(WallClockNew, WallClockGpa);
        Assert.Equal(8u, g.Memory.Read<uint>(WallClockGpa));

        g.Vcpu.SetMsr(WallClockNew, 0x4000_0000);
        Assert.Equal(0x4000_0000UL, g.Vcpu.GetMsr(WallClockNew));
        Assert.Equal(8u, g.Memory.Read<uint>(WallClockGpa));
    }
}
