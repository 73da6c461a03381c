// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// x86 CPUID and MSR calls in the differential fuzzer (OpGenerator.X86State.cs): generated on a kernel without
/// guest_memfd, past the argument checks (entries processed, tables stored, guests reaching CPUID/RDMSR/WRMSR), never
/// on a kernel with guest_memfd, and the guests agree on both kernels over more seeds than a fuzz run reaches.
/// </summary>
public class X86StateFuzzingTests(ITestOutputHelper output)
{
    private static readonly OpKind[] s_kinds = [OpKind.MsrsIo, OpKind.CpuidRoundTrip, OpKind.SystemX86List, OpKind.X86GuestRun];

    private static List<(FuzzOp Op, string Outcome)> Generate(Func<IKernel> kernel, int sessions) => FuzzSessions.Generate(kernel, sessions);

    [KvmFact]
    public void The_x86_calls_get_past_the_argument_checks_on_the_real_kernel()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the x86 CPUID/MSR calls are drawn on a kernel without guest_memfd");
        AssertX86CallsGetThrough(FuzzKernels.Real);
    }

    [Fact]
    public void The_x86_calls_get_past_the_argument_checks() =>
        AssertX86CallsGetThrough(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)));

    private void AssertX86CallsGetThrough(Func<IKernel> kernel)
    {
        var calls = Generate(kernel, sessions: 25);
        foreach (var kind in s_kinds)
        {
            var list = calls.Where(c => c.Op.Kind == kind).Select(c => c.Outcome).ToList();
            output.WriteLine($"{kind,-16} {list.Count,5}: " + string.Join(", ", list.GroupBy(o => o.Length > 24 ? o[..24] : o).OrderByDescending(g => g.Count()).Take(10).Select(g => $"{g.Key} x{g.Count()}")));
        }
        var msrs = calls.Where(c => c.Op.Kind == OpKind.MsrsIo).Select(c => c.Outcome).ToList();
        var cpuid = calls.Where(c => c.Op.Kind == OpKind.CpuidRoundTrip).Select(c => c.Outcome).ToList();
        var lists = calls.Where(c => c.Op.Kind == OpKind.SystemX86List).Select(c => c.Outcome).ToList();
        var runs = calls.Where(c => c.Op.Kind == OpKind.X86GuestRun).Select(c => c.Outcome).ToList();
        Assert.InRange(msrs.Count + cpuid.Count + lists.Count + runs.Count, calls.Count / 30, calls.Count / 6);
        // MSRs: partial counts, whole lists, E2BIG, round trips that wrote something.
        Assert.Contains(msrs, o => o.StartsWith("set value ", StringComparison.Ordinal));
        Assert.Contains(msrs, o => o.StartsWith("set ok, get ok", StringComparison.Ordinal) || o.StartsWith("get value", StringComparison.Ordinal));
        Assert.Contains(msrs, o => o.Contains("E2BIG", StringComparison.Ordinal));
        // CPUID: tables stored and read back, refused (EINVAL: a virtual-address width; E2BIG), short GET buffers.
        Assert.Contains(cpuid, o => o.StartsWith("set ok, get ok", StringComparison.Ordinal) && o.Contains(':', StringComparison.Ordinal));
        Assert.Contains(cpuid, o => o.StartsWith("set EINVAL", StringComparison.Ordinal));
        Assert.Contains(cpuid, o => o.StartsWith("set E2BIG", StringComparison.Ordinal));
        Assert.Contains(cpuid, o => o.Contains("get E2BIG", StringComparison.Ordinal));
        Assert.Contains("ok nent written", lists);
        Assert.Contains("E2BIG nent kept", lists);
        Assert.Contains("E2BIG nmsrs written", lists);
        Assert.Contains("ok nmsrs written", lists);
        // Guests run their programs: some to HLT, some stopped by a refused RDMSR/WRMSR (#GP, no IDT: shutdown).
        Assert.Contains(runs, r => r.Contains("hlt", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains("exit 8", StringComparison.Ordinal));
    }

    [Fact]
    public void A_kernel_with_guest_memfd_gets_no_x86_state_calls()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var generator = new OpGenerator(DifferentialFuzzer.SessionSeed(seed, 0));
            for (int i = 0; i < 400; i++)
            {
                var op = generator.Next();
                Assert.DoesNotContain(op.Kind, s_kinds);
                generator.Observe(op, op.Kind is OpKind.OpenKvm or OpKind.CreateVm or OpKind.CreateGmem or OpKind.CreateVcpu ? "ok fd" : "ok");
            }
        }
    }

    [Theory]
    [InlineData(PlantedBug.SetMsrsCountShort)]
    [InlineData(PlantedBug.CpuidEaxBit)]
    public void A_planted_msr_or_cpuid_bug_is_found_and_reduced(PlantedBug bug)
    {
        Func<IKernel> kernel = () => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false));
        var fuzzer = new DifferentialFuzzer(kernel, () => new LyingKernel(kernel(), bug)) { MaxDivergences = 1 };
        var divergence = Assert.Single(fuzzer.Run(ops: 20000, seed: 1).Divergences);
        output.WriteLine(divergence.Op + "\n  " + divergence.Reference + "\n  " + divergence.Candidate + "\n  " + string.Join("\n  ", divergence.Reproducer));
        // open, KVM_CREATE_VM, KVM_CREATE_VCPU (maybe a CPUID table first), then the call; or open and a guest run.
        Assert.InRange(divergence.Reproducer.Count, 2, 6);
        Assert.Equal(divergence.Op, divergence.Reproducer[^1]);
        if (bug == PlantedBug.SetMsrsCountShort && divergence.Op.StartsWith("irqchip session", StringComparison.Ordinal))
        {
            // The irqchip stream's x2APIC calls (KernelSession.X2apic.cs) write MSRs too: the first call whose count differs
            // is a KVM_SET_MSRS ("set value N" against one less).
            string first = divergence.Reference.Split(", ").Zip(divergence.Candidate.Split(", ")).First(p => p.First != p.Second).First;
            Assert.Contains("set value", first, StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains(bug == PlantedBug.SetMsrsCountShort ? "KVM_SET_MSRS" : "CPUID", divergence.Op, StringComparison.Ordinal);
        }
    }

    [KvmFact]
    public void Cpuid_and_msr_guests_agree_on_both_kernels()
    {
        // Straight from TinyGuestRun on both kernels, more seeds than a fuzz run reaches in the same time.
        const int Count = 60;
        string[] Run(IKernel k)
        {
            using var session = new KernelSession(k);
            Assert.Equal("ok fd", session.Apply(new FuzzOp(OpKind.OpenKvm, Result: 0)));
            return Enumerable.Range(1, Count).Select(seed => session.Apply(new FuzzOp(OpKind.X86GuestRun, Target: 0, A: (ulong)seed))).ToArray();
        }
        string[] linux = Run(FuzzKernels.Real());
        string[] emulated = Run(FuzzKernels.EmulatorLikeThisMachine());
        for (int i = 0; i < Count; i++)
        {
            output.WriteLine($"seed {i + 1}: {linux[i]}");
            Assert.True(linux[i] == emulated[i], $"seed {i + 1}\nlinux:    {linux[i]}\nemulated: {emulated[i]}");
        }
    }
}
