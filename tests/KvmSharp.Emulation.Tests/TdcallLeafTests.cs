// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// What the emulator's TDX module does not model says so: TDCALL leaves it does not model (here TDG.SYS.RD)
/// end KVM_RUN with an emulation failure instead of a made-up answer (X86/Emulate/X86Emulator.Tdcall.cs). The
/// TDG.VP.VMCALL rules themselves are conformance cases (Conformance/Cases/TdVmcallRules.cs).
/// </summary>
public sealed class TdcallLeafTests
{
    [Fact]
    public void Tdcall_leaves_other_than_vmcall_are_an_emulation_failure()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            a.mov(eax, 11); // TDG.SYS.RD
            a.tdcall();
        });
        var exit = td.Vcpu.RunBounded();
        Assert.Equal((KvmExitReason.KVM_EXIT_INTERNAL_ERROR, 1u), (exit.Reason, exit.InternalSuberror)); // KVM_INTERNAL_ERROR_EMULATION
    }
}
