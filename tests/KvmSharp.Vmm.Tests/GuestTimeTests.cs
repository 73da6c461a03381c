// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// A guest's only clock is the TSC (GUEST-ABI.md, "CPUID"): CPUID leaf 0x40000010 gives its rate, so ticks become time.
/// The rate is checked against the host's clock: a guest measures, in TSC ticks, a host function that sleeps.
/// </summary>
public sealed class GuestTimeTests
{
    private const uint SleepId = 1;

    /// <summary>
    /// <c>measure()</c>: CPUID.0x40000010 EAX (kHz) into R13, RDTSC, host call <see cref="SleepId"/>, RDTSC; returns
    /// the elapsed ticks × 1000 / kHz, i.e. microseconds.
    /// </summary>
    private static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), measure = p.Export("measure");
        p.Place(ref start);
        p.ExitWith(0);
        p.Place(ref measure);
        a.push(rbx);
        a.push(r12);
        a.push(r13);
        a.mov(eax, GuestCpuid.TimingLeaf);
        a.xor(ecx, ecx);
        a.cpuid();
        a.mov(r13d, eax);
        a.rdtsc();
        a.shl(rdx, 32);
        a.or(rax, rdx);
        a.mov(r12, rax);
        p.HostCall(SleepId);
        a.rdtsc();
        a.shl(rdx, 32);
        a.or(rax, rdx);
        a.sub(rax, r12);
        a.mov(ecx, 1000);
        a.mul(rcx);
        a.div(r13); // kHz 0 would be #DE: the call then ends with an exception outcome
        a.pop(r13);
        a.pop(r12);
        a.pop(rbx);
        a.ret();
        return p.Build(start);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void The_tsc_rate_in_cpuid_turns_the_guests_ticks_into_the_hosts_time(string kernel)
    {
        const int SleepMs = 60;
        using var k = TestKernel.Open(kernel);
        var functions = new HostFunctions();
        functions.Add(SleepId, "sleep", _ =>
        {
            Thread.Sleep(SleepMs);
            return 0;
        });
        using var vm = MicroVm.Create(Image(), k.Options(null) with { HostFunctions = functions, Timeout = TimeSpan.FromSeconds(10) });
        var watch = System.Diagnostics.Stopwatch.StartNew();
        CallResult r = vm.Call("measure");
        double hostMs = watch.Elapsed.TotalMilliseconds;
        Assert.True(r.IsSuccess, r.ToString());
        double guestMs = r.Value!.Value / 1000.0;
        // The guest's interval lies inside the call and contains the sleep (5 % for a TSC rate rounded to kHz).
        Assert.True(guestMs >= SleepMs * 0.95 && guestMs <= hostMs * 1.05, $"{k}: the guest measured {guestMs:F1} ms around a {SleepMs} ms sleep in a {hostMs:F1} ms call");
    }
}
