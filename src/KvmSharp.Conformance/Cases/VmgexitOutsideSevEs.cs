// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// VMGEXIT (F3 0F 01 D9, "rep vmmcall") outside an SEV-ES guest: AMD APM Vol. 3 VMGEXIT — without SEV-ES it executes as
/// VMMCALL, the REP prefix ignored; KVM's emulator decodes it the same way (arch/x86/kvm/emulate.c group7_rm3:
/// em_hypercall; a REP prefix only matters for string instructions). So it is a KVM hypercall whose completion skips
/// the 4-byte instruction. Inside a protected SEV-ES/SNP vCPU it is the GHCB exit instead (emulator-only:
/// tests/KvmSharp.Emulation.Tests/SevEsGhcbTests.cs).
/// </summary>
public static class VmgexitOutsideSevEs
{
    [ConformanceCase("AMD APM Vol. 3 VMGEXIT; arch/x86/kvm/emulate.c group7_rm3 em_hypercall: outside SEV-ES, VMGEXIT is VMMCALL — KVM_HC_MAP_GPA_RANGE from 64-bit mode exits with KVM_EXIT_HYPERCALL and ret lands in RAX with RIP past the 4 bytes")]
    public static void vmgexit_outside_sev_es_is_a_vmmcall_hypercall(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = LongModeGuest.Create(kvm, a =>
        {
            a.db(0xF3, 0x0F, 0x01, 0xD9);
            a.hlt();
        });
        var regs = guest.Vcpu.GetRegs();
        regs.rax = KvmPara.KVM_HC_MAP_GPA_RANGE;
        regs.rbx = 0x2000;
        regs.rcx = 1;
        regs.rdx = KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED;
        guest.Vcpu.SetRegs(regs);
        guest.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        if (HostDeviations.KvmPvmHypercallLoops(ctx.Target.IsReal))
        {
            // As VMCALL/VMMCALL in 64-bit mode on this host: KVM_RUN returns only when kicked, RIP and RAX unchanged.
            using (var kick = new Timer(_ => guest.Vcpu.Kick(), null, 200, Timeout.Infinite))
            {
                var spun = guest.Vcpu.Run();
                Assert.True(spun.Interrupted, $"expected VMGEXIT to spin until kicked, got {spun.ToString()}");
            }
            guest.Vcpu.ImmediateExit = false;
            var after = guest.Vcpu.GetRegs();
            Assert.Equal((regs.rip, regs.rax), (after.rip, after.rax));
            return;
        }
        var exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_HYPERCALL, exit.Reason);
        Assert.Equal(KvmPara.KVM_HC_MAP_GPA_RANGE, exit.HypercallNr);
        Assert.Equal([0x2000UL, 1UL, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED], exit.HypercallArgs[..3].ToArray());
        Assert.Equal(KvmPara.KVM_EXIT_HYPERCALL_LONG_MODE, exit.HypercallFlags);
        exit.HypercallReturn = 0x77;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        var done = guest.Vcpu.GetRegs();
        Assert.Equal((0x77UL, LongModeGuest.CodeGpa + 5), (done.rax, done.rip));
    }
}
