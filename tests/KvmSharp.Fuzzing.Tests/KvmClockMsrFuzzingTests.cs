// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// The kvmclock MSRs in the differential fuzzer (OpKind.KvmClockMsrs, KvmClockMsrOps.cs): KVM_SET_MSRS and
/// KVM_GET_MSRS of MSR_KVM_WALL_CLOCK(_NEW) and MSR_KVM_SYSTEM_TIME(_NEW) are drawn and read back what was stored —
/// the wall clock VM-wide, the system time per vCPU.
/// </summary>
public sealed class KvmClockMsrFuzzingTests(ITestOutputHelper output)
{
    [Fact]
    public void The_generator_draws_kvmclock_msr_writes_that_read_back()
    {
        var calls = NewUapiOps.Drawn(25, OpKind.KvmClockMsrs);
        foreach (var (op, outcome) in calls.Take(8)) output.WriteLine($"{op}: {outcome}");
        Assert.Contains(calls, c => c.Outcome.StartsWith("set value ", StringComparison.Ordinal) && c.Outcome.Contains("other vcpu", StringComparison.Ordinal));
        Assert.Contains(calls, c => c.Outcome.StartsWith("get value ", StringComparison.Ordinal));
        Assert.Contains(calls, c => c.Op.Target != -1 && c.Outcome.StartsWith("set EBADF", StringComparison.Ordinal) || c.Outcome.StartsWith("set ENOTTY", StringComparison.Ordinal));
    }

    [Fact]
    public void The_wall_clock_is_the_vms_and_the_system_time_the_vcpus()
    {
        using var session = new KernelSession(NewUapiOps.Emulator());
        foreach (var op in NewUapiOps.Prefix) session.Apply(op);
        // Seeds whose first entry alone (nmsrs = entries) is written on vCPU 0 and read on vCPU 1.
        var wall = Enumerable.Range(0, 200).First(s => KvmClockMsrOps.Entries((ulong)s) is [{ index: KvmClockMsrOps.WallClock, data: not 0 }]);
        var time = Enumerable.Range(0, 200).First(s => KvmClockMsrOps.Entries((ulong)s) is [{ index: KvmClockMsrOps.SystemTime, data: not 0 }]);
        string wallText = session.Apply(new FuzzOp(OpKind.KvmClockMsrs, Target: 2, Other: 3, A: (ulong)wall, E: 1));
        string timeText = session.Apply(new FuzzOp(OpKind.KvmClockMsrs, Target: 2, Other: 3, A: (ulong)time, E: 1));
        output.WriteLine(wallText);
        output.WriteLine(timeText);
        ulong w = KvmClockMsrOps.Entries((ulong)wall)[0].data, t = KvmClockMsrOps.Entries((ulong)time)[0].data;
        Assert.Equal($"set value 1, get value 1 11={w:X}, other vcpu value 1 11={w:X}", wallText);
        Assert.Equal($"set value 1, get value 1 12={t:X}, other vcpu value 1 12=0", timeText);
    }

    [KvmFact]
    public void Kvmclock_msr_calls_agree_on_both_kernels()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "these calls are drawn on a kernel without guest_memfd");
        var ops = Enumerable.Range(0, 40).Select(i => new FuzzOp(OpKind.KvmClockMsrs, Target: 2 + i % 2, Other: 3 - i % 2, A: (ulong)(i * 104729), E: i % 4 == 0 ? 0 : 1));
        NewUapiOps.AssertAgree(output.WriteLine, ops);
    }
}
