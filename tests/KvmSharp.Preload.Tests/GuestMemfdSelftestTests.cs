// SPDX-License-Identifier: MIT
using System.Text.RegularExpressions;

namespace KvmSharp.Preload.Tests;

/// <summary>
/// Upstream's own guest_memfd selftest (tools/testing/selftests/kvm/guest_memfd_test.c, ported to plain C in
/// CPrograms/guest_memfd_test.c with the same functions and cases) as a C program: unchanged, it runs on the real
/// kernel and, through <c>kvmsharp exec</c>, on the emulated kernel's presets — the emulator exact enough that a
/// C VMM's own tests pass on it, private-page SIGBUS included.
/// </summary>
public sealed class GuestMemfdSelftestTests
{
    private static readonly CProgram Selftest = CProgram.Get("guest_memfd_test.c");

    [KvmFact]
    public void The_selftest_passes_or_skips_with_its_reason_on_the_real_kernel()
    {
        Skip.If(Selftest.Unavailable is not null, Selftest.Unavailable);
        var run = ExecRun.Of(["--kernel", "linux"], Selftest.Executable!);
        var totals = run.TapTotals();
        Assert.True(run.ExitCode == 0 && totals.Fail == 0, run.ToString());
        // Without guest_memfd in this kernel every case skips, each with its reason: then nothing was shown here.
        Skip.If(totals.Pass == 0, $"the real kernel ran no case ({totals.Skip} skipped): {FirstSkipReason(run)}");
    }

    [KvmTheory]
    [InlineData("--arch x86_64", 120, 5)]                           // 6.18 with every x86 VM type
    [InlineData("--arch x86_64 --in-place-conversion", 150, 5)]     // + the v8 series: INIT_SHARED for CoCo types too
    [InlineData("--arch arm64", 25, 1)]                             // the x86 guest case skips there
    public void The_selftest_passes_on_the_emulated_kernel(string preset, int minimumPassed, int minimumPrivateFaultCases)
    {
        Skip.If(Selftest.Unavailable is not null, Selftest.Unavailable);
        var run = ExecRun.Of(["--kernel", "emulated", .. preset.Split(' ')], Selftest.Executable!);
        var totals = run.TapTotals();
        Assert.True(run.ExitCode == 0 && totals.Fail == 0, run.ToString());
        Assert.True(totals.Pass >= minimumPassed, $"only {totals.Pass} cases passed\n{run}");
        // test_fault_private: touching a page of a guest_memfd without INIT_SHARED must raise SIGBUS (the bridge's
        // PROT_NONE + SIGSEGV→SIGBUS path), once per VM type that offers MMAP without INIT_SHARED.
        int privateFaults = run.Lines.Count(l => l.StartsWith("ok ", StringComparison.Ordinal) && l.EndsWith("/test_fault_private", StringComparison.Ordinal));
        Assert.True(privateFaults >= minimumPrivateFaultCases, $"test_fault_private passed {privateFaults} times\n{run}");
        Assert.Contains(run.Lines, l => l.StartsWith("ok ", StringComparison.Ordinal) && l.EndsWith("/test_fault_overflow", StringComparison.Ordinal));
    }

    [KvmFact]
    public void The_guest_case_reads_and_writes_guest_memfd_memory_through_a_vcpu_on_the_emulated_kernel()
    {
        Skip.If(Selftest.Unavailable is not null, Selftest.Unavailable);
        var run = ExecRun.Of(["--kernel", "emulated", "--arch", "x86_64"], Selftest.Executable!);
        Assert.Contains(run.Lines, l => Regex.IsMatch(l, @"^ok \d+ .*test_guest_memfd_guest$"));
    }

    [KvmFact]
    public void Like_this_host_the_emulated_kernel_skips_every_case_for_the_reason_the_real_kernel_gives()
    {
        Skip.If(Selftest.Unavailable is not null, Selftest.Unavailable);
        var real = ExecRun.Of(["--kernel", "linux"], Selftest.Executable!);
        var emulated = ExecRun.Of(["--kernel", "emulated"], Selftest.Executable!);
        Assert.Equal(real.Stdout, emulated.Stdout);
        Assert.Equal(real.ExitCode, emulated.ExitCode);
    }

    private static string FirstSkipReason(ExecRun run) =>
        run.Lines.Select(l => l.Split("# SKIP ", 2)).FirstOrDefault(p => p.Length == 2)?[1] ?? "(no reason printed)";
}
