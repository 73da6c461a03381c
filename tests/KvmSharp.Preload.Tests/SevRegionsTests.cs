// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>
/// CPrograms/sev_regions.c: KVM_MEMORY_ENCRYPT_REG_REGION / _UNREG_REGION on an emulated SEV VM through
/// <c>kvmsharp exec</c> (arch/x86/kvm/svm/sev.c sev_mem_enc_register_region, sev_mem_enc_unregister_region) — what
/// QEMU's sev.c does for each RAM block. The requests are numbered _IOR but the kernel only reads their struct: the
/// bridge must hand it over (a zeroed one is a zero-size range, EINVAL).
/// </summary>
public sealed class SevRegionsTests
{
    private static readonly CProgram Program = CProgram.Get("sev_regions.c");

    [KvmFact]
    public void An_sev_vm_registers_and_unregisters_its_memory_through_the_bridge()
    {
        Skip.If(Program.Unavailable is not null, Program.Unavailable);
        var run = ExecRun.Of(["--kernel", "emulated", "--arch", "x86_64"], Program.Executable!);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(
            """
            reg before init2: Inappropriate ioctl for device
            init2: 0
            reg: 0
            reg size 0: Invalid argument
            unreg: 0
            unreg again: Invalid argument

            """.ReplaceLineEndings("\n"), run.Stdout);
    }
}
