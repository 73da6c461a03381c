// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>
/// bench/c-reference-vmm's vmm_ref, a micro-VM VMM in C (create, call a guest function through port I/O, tear
/// down), unchanged on both kernels: on the emulated 6.18 kernel it backs its guests with guest_memfd alone
/// (MMAP|INIT_SHARED, as it picks when KVM_CAP_GUEST_MEMFD_FLAGS offers them), which this host cannot.
/// </summary>
public sealed class VmmReferenceTests
{
    private static readonly CProgram Vmm = CProgram.Get("bench/c-reference-vmm/vmm_ref.c", "-DVMM_REF_MAIN");

    [KvmFact]
    public void A_c_vmm_runs_its_guests_in_guest_memfd_memory_on_the_emulated_kernel()
    {
        Skip.If(Vmm.Unavailable is not null, Vmm.Unavailable);
        var run = ExecRun.Of(["--kernel", "emulated", "--arch", "x86_64"], Vmm.Executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("guest memory:            guest_memfd (MMAP|INIT_SHARED)", run.Stdout, StringComparison.Ordinal);
        // The last call of each of the three phases returned the guest function's 42.
        Assert.Equal(3, run.Lines.Count(l => l.EndsWith("(result 42)", StringComparison.Ordinal)));
    }

    [KvmFact]
    public void The_same_vmm_gets_the_same_results_from_the_real_kernel_and_the_emulated_one_like_it()
    {
        Skip.If(Vmm.Unavailable is not null, Vmm.Unavailable);
        var real = ExecRun.Of(["--kernel", "linux"], Vmm.Executable!);
        var emulated = ExecRun.Of(["--kernel", "emulated"], Vmm.Executable!);
        Assert.True(real.ExitCode == 0 && emulated.ExitCode == 0, $"{real}\n{emulated}");
        // Timings differ; what each phase computed and which memory it chose must not.
        Assert.Equal(Results(real), Results(emulated));
        Assert.Equal(4, Results(real).Length);
    }

    // "guest memory: …" and each phase's "(result N)", without the time.
    private static string[] Results(ExecRun run) =>
    [
        .. run.Lines.Where(l => l.StartsWith("guest memory:", StringComparison.Ordinal)),
        .. run.Lines.Where(l => l.Contains("(result ", StringComparison.Ordinal)).Select(l => l[..l.IndexOf(':', StringComparison.Ordinal)] + " " + l[l.IndexOf("(result ", StringComparison.Ordinal)..]),
    ];
}
