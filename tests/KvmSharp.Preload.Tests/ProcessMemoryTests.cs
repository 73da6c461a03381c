// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>
/// CPrograms/process_memory.c: a C VMM reprotects, unmaps, maps again and mremaps its own guest memory under a
/// running VM. Through <c>kvmsharp exec</c> the emulated kernel uses such memory directly (ProcessMemory.cs), which is
/// only safe if each of these changes reaches it first: a missed munmap would crash the process, a missed remap would
/// show the guest stale bytes.
/// </summary>
public sealed class ProcessMemoryTests
{
    private static readonly CProgram Program = CProgram.Get("process_memory.c");

    // Upstream's answers (virt/kvm/kvm_main.c hva_to_pfn: a write to a read-only or unmapped hva finds no pfn →
    // arch/x86/kvm/mmu/mmu.c kvm_handle_error_pfn: kvm_mmu_prepare_memory_fault_exit + -EFAULT; the MMU notifier
    // makes the next fault see the new mapping).
    private const string Upstream = """
        slot 0: 0
        slot 1: 0
        read: run 0 exit_reason=2 port=0x10 data=0x11
        write: run 0 exit_reason=5
        host sees 0x5a
        mprotect(PROT_READ): 0
        read, read-only: run 0 exit_reason=2 port=0x10 data=0x5a
        write, read-only: run -1 EFAULT exit_reason=39 gpa=0x10000 size=0x1000
        mprotect(PROT_READ|PROT_WRITE): 0
        write again: run 0 exit_reason=5
        host sees 0x5a
        munmap: 0
        read, unmapped: run -1 EFAULT exit_reason=39 gpa=0x10000 size=0x1000
        mmap again at the same address: yes
        read, new memory: run 0 exit_reason=2 port=0x10 data=0x22
        write, new memory: run 0 exit_reason=5
        host sees 0x5a
        mremap: ok
        read, after mremap moved it: run -1 EFAULT exit_reason=39 gpa=0x10000 size=0x1000

        """;

    // kvm_pvm (probed on this host, 6.18.44): an access it cannot map exits as MMIO (exit_reason 6) instead of the
    // memory fault, and after munmap + a new mapping at the same address its shadow MMU still gives the guest the old
    // (zero) page until the guest writes — HostDeviations' "unreachable hva is MMIO" family.
    private static readonly Dictionary<string, string> KvmPvm = new()
    {
        ["write, read-only: "] = "write, read-only: run 0 exit_reason=6",
        ["read, unmapped: "] = "read, unmapped: run 0 exit_reason=6",
        ["read, new memory: "] = "read, new memory: run 0 exit_reason=2 port=0x10 data=0x00",
        ["read, after mremap moved it: "] = "read, after mremap moved it: run 0 exit_reason=6",
    };

    [KvmFact]
    public void The_emulated_kernel_follows_the_programs_memory_as_upstreams_mmu_notifier_does()
    {
        Skip.If(Program.Unavailable is not null, Program.Unavailable);
        var run = ExecRun.Of(["--kernel", "emulated"], Program.Executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(Upstream.ReplaceLineEndings("\n"), run.Stdout);
    }

    [KvmFact]
    public void The_real_kernel_answers_the_same_but_for_kvm_pvms_named_deviations()
    {
        Skip.If(Program.Unavailable is not null, Program.Unavailable);
        var run = ExecRun.Of(["--kernel", "linux"], Program.Executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        string[] expected = [.. Upstream.ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => KvmHost.IsKvmPvm && KvmPvm.FirstOrDefault(d => l.StartsWith(d.Key, StringComparison.Ordinal)).Value is string deviation ? deviation : l)];
        Assert.Equal(expected, run.Lines);
    }
}
