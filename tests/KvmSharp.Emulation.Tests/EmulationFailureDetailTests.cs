// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// A guest instruction the kernel cannot emulate ends the call as <see cref="GuestOutcome.InternalError"/>, and the
/// outcome names it: <see cref="VcpuExit.EmulationFailureInstruction"/> (kvm_run.emulation_failure.insn_bytes) is
/// disassembled at the vCPU's PC. The same x87 guest on both kernels: kvm_pvm cannot run x87 (an emulation failure
/// with the 15 bytes fetched from RIP), and the emulator's interpreter has no x87 transcendentals (the instruction's
/// own bytes).
/// </summary>
public sealed class EmulationFailureDetailTests
{
    private static GuestImage X87Image()
    {
        var p = new GuestProgram();
        Label start = p.Export("_start");
        p.Place(ref start);
        p.Asm.fsin();
        p.Asm.hlt();
        return p.Build(start);
    }

    private const string X87Detail = "KVM_EXIT_INTERNAL_ERROR suberror=1 (emulation failure) of fsin (d9fe) at 0x";

    private static CallResult RunX87(IKernel kernel)
    {
        using var kvm = Kvm.Open(kernel);
        using var vm = MicroVm.Create(X87Image(), new MicroVmOptions { Kvm = kvm, Timeout = TimeSpan.FromSeconds(10), Memory = null });
        return vm.Run();
    }

    [KvmFact]
    public void The_real_kernels_emulation_failure_names_the_instruction()
    {
        CallResult r = RunX87(LinuxKernel.Instance);
        Skip.If(r.Outcome != GuestOutcome.InternalError, $"this kernel runs x87 itself ({r.Outcome}): only kvm_pvm-like hosts fail to emulate it");
        Assert.Equal(Layout.ImageBase, r.Rip);
        Assert.Equal(X87Detail + $"{Layout.ImageBase:X}", r.Detail);
    }

    [Fact]
    public void The_emulators_emulation_failure_names_the_instruction()
    {
        using var kernel = new EmulatedKernel(HostMatching.LikeThisHostAsItIs());
        CallResult r = RunX87(kernel);
        Assert.Equal(GuestOutcome.InternalError, r.Outcome);
        Assert.Equal(Layout.ImageBase, r.Rip);
        Assert.Equal(X87Detail + $"{Layout.ImageBase:X}", r.Detail);
    }
}
