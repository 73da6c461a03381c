// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// What the arm64 interpreter refuses rather than gets wrong: a guest that turns its stage-1 MMU on (MSR SCTLR_EL1 with
/// M set) or touches a system register outside the modelled set stops with an emulation failure at that instruction,
/// and the register keeps its value.
/// </summary>
public class Arm64SystemInstructionTests
{
    private static (uint Insn, ulong Pc) RunToFailure(Action<A64Assembler> program, out ulong sctlr)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using var kvm = Kvm.Open(kernel);
        using var guest = Arm64Guest.Create(kvm, program);
        var exit = guest.Vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
        sctlr = guest.Vcpu.GetOneReg(Abi.Arm64.KvmArm64SysRegs.SCTLR_EL1);
        ulong pc = guest.Vcpu.GetOneReg(Abi.Arm64.KvmArm64Regs.Pc);
        byte[] code = Arm64Guest.Assemble(program);
        return (BitConverter.ToUInt32(code, (int)(pc - Arm64Guest.CodeGpa)), pc);
    }

    [Fact]
    public void Turning_the_mmu_on_with_tcr_el1_at_reset_is_an_emulation_failure_before_the_write()
    {
        // TCR_EL1 resets to 0: TG1 = 0b00 is a reserved encoding and only the 4 KiB granule is modelled
        // (A64Interpreter.Mmu.cs RefusesMmuConfig), so the MSR that would enable stage 1 stops the run unexecuted.
        var (insn, pc) = RunToFailure(a =>
        {
            a.Mrs(X(1), Abi.Arm64.KvmArm64SysRegs.Encoding(3, 0, 1, 0, 0));
            a.Movz(X(2), 1);
            a.Orr(X(1), X(1), X(2));
            a.Msr(Abi.Arm64.KvmArm64SysRegs.Encoding(3, 0, 1, 0, 0), X(1));
        }, out ulong sctlr);
        Assert.Equal(Arm64Guest.CodeGpa + 12, pc);
        Assert.Equal(0xD518_1001u, insn); // MSR SCTLR_EL1, X1
        Assert.Equal(0x00C5_0078UL, sctlr);
    }

    [Fact]
    public void A_register_outside_the_model_is_an_emulation_failure()
    {
        // MRS X0, DBGAUTHSTATUS_EL1 (2, 0, 7, 14, 6): KVM returns the host's value (trap_dbgauthstatus_el1), which the
        // emulator does not model. (PMCR_EL0, used here before, is now modelled: hidden without KVM_ARM_VCPU_PMU_V3, so UNDEF.)
        var (insn, pc) = RunToFailure(a => a.Mrs(X(0), Abi.Arm64.KvmArm64SysRegs.Encoding(2, 0, 7, 14, 6)), out _);
        Assert.Equal(Arm64Guest.CodeGpa, pc);
        Assert.Equal(0xD530_7EC0u, insn);
    }
}
