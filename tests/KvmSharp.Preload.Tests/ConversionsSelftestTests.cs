// SPDX-License-Identifier: MIT
namespace KvmSharp.Preload.Tests;

/// <summary>
/// The in-place conversion series' own selftest (x86/guest_memfd_conversions_test.c of [PATCH v8], ported to C in
/// CPrograms/guest_memfd_conversions_test.c after the suite's C# port) as a C program through <c>kvmsharp exec</c>:
/// KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd, a guest that reads and writes the pages, and the host's touches of
/// a page converted to private raising SIGBUS at its address — the bridge's PROT_NONE protection following each
/// conversion.
/// </summary>
public sealed class ConversionsSelftestTests
{
    private static readonly CProgram Selftest = CProgram.Get("guest_memfd_conversions_test.c");

    [KvmFact]
    public void The_conversions_selftest_passes_on_the_emulated_in_place_conversion_series()
    {
        Skip.If(Selftest.Unavailable is not null, Selftest.Unavailable);
        var run = ExecRun.Of(["--kernel", "emulated", "--arch", "x86_64", "--in-place-conversion"], Selftest.Executable!);
        var (pass, fail, _) = run.TapTotals();
        Assert.True(run.ExitCode == 0 && fail == 0 && pass >= 8, run.ToString());
        foreach (string name in new[] { "init_private", "init_shared", "indexing", "truncate", "forked_accesses" })
            Assert.Contains(run.Lines, l => l.StartsWith("ok ", StringComparison.Ordinal) && l.Contains(name, StringComparison.Ordinal) && !l.Contains("# SKIP", StringComparison.Ordinal));
    }

    [KvmTheory]
    [InlineData("linux")]
    [InlineData("emulated")]
    public void Without_the_series_every_case_skips_with_the_reason(string kernel)
    {
        Skip.If(Selftest.Unavailable is not null, Selftest.Unavailable);
        string[] options = kernel == "linux" ? ["--kernel", "linux"] : ["--kernel", "emulated", "--arch", "x86_64"];
        var run = ExecRun.Of(options, Selftest.Executable!);
        var (pass, fail, skip) = run.TapTotals();
        Assert.True(run.ExitCode == 0 && pass == 0 && fail == 0 && skip > 0, run.ToString());
        Assert.All(run.Lines.Where(l => l.StartsWith("ok ", StringComparison.Ordinal)),
            l => Assert.Contains("KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES", l, StringComparison.Ordinal));
    }
}
