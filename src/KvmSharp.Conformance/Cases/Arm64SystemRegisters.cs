// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using Xunit;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// arm64 EL1/EL0 system registers (arch/arm64/kvm/sys_regs.c): their reset values through KVM_GET_ONE_REG
/// (kvm_reset_sys_regs: reset_val, reset_unknown, reset_mpidr), KVM_SET_ONE_REG, the ENOENT of an id no descriptor
/// matches, and a guest that programs VBAR_EL1, reads CurrentEL/MPIDR_EL1, takes an UNDEFINED exception to its own
/// vector and returns with ERET. This host is x86_64: every case is skipped on the real kernel.
/// </summary>
public static class Arm64SystemRegisters
{
    private const string SysRegsC = "arch/arm64/kvm/sys_regs.c";

    private static ulong Enc(int op0, int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(op0, op1, crn, crm, op2);

    [ConformanceCase(SysRegsC + " kvm_reset_sys_regs (SCTLR_EL1 0x00C50078, VBAR_EL1/TCR_EL1 0, TTBR0_EL1 reset_unknown, MPIDR_EL1 from the " +
                     "vcpu_id), kvm_sys_reg_set_user, and ENOENT for an id no sys_reg_desc matches", Profile = EmulatedProfile.Arm64)]
    public static void arm64_sysreg_reset_and_one_reg(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu0 = vm.CreateVcpu(0);
        using var vcpu17 = vm.CreateVcpu(17);
        vcpu0.InitPreferred();
        vcpu17.InitPreferred();
        Assert.Equal(0x00C5_0078UL, vcpu0.GetOneReg(KvmArm64SysRegs.SCTLR_EL1));
        Assert.Equal(0UL, vcpu0.GetOneReg(KvmArm64SysRegs.VBAR_EL1));
        Assert.Equal(0UL, vcpu0.GetOneReg(KvmArm64SysRegs.TCR_EL1));
        Assert.Equal(0x1de7_ec7e_dbad_c0deUL, vcpu0.GetOneReg(KvmArm64SysRegs.TTBR0_EL1));
        // reset_mpidr: Aff0 = vcpu_id[3:0], Aff1 = vcpu_id[11:4], bit 31 RES1.
        Assert.Equal(0x8000_0000UL, vcpu0.GetOneReg(KvmArm64SysRegs.MPIDR_EL1));
        Assert.Equal(0x8000_0101UL, vcpu17.GetOneReg(KvmArm64SysRegs.MPIDR_EL1));
        vcpu0.SetOneReg(KvmArm64SysRegs.VBAR_EL1, 0x4000);
        Assert.Equal(0x4000UL, vcpu0.GetOneReg(KvmArm64SysRegs.VBAR_EL1));
        Assert.Equal(0UL, vcpu17.GetOneReg(KvmArm64SysRegs.VBAR_EL1));
        // S3_7_C15_C15_7 (IMPLEMENTATION DEFINED, no descriptor) and a 32-bit id in the sysreg space: -ENOENT.
        AssertErrno(Errno.ENOENT, () => vcpu0.GetOneReg(KvmArm64SysRegs.ARM64_SYS_REG(3, 7, 15, 15, 7)));
        ulong narrow = (KvmArm64SysRegs.VBAR_EL1 & ~KvmArm64Regs.KVM_REG_SIZE_MASK) | KvmArm64Regs.KVM_REG_SIZE_U32;
        AssertErrno(Errno.ENOENT, () => vcpu0.GetOneReg(narrow));
        // KVM_ARM_VCPU_INIT again resets them.
        vcpu0.InitPreferred();
        Assert.Equal(0UL, vcpu0.GetOneReg(KvmArm64SysRegs.VBAR_EL1));
    }

    /// <summary>
    /// The guest sets VBAR_EL1 to its own table, reads CurrentEL (EL1 = 4) and MPIDR_EL1, writes and reads TPIDR_EL0,
    /// then executes UDF: the exception goes to VBAR_EL1 + 0x200 (current EL, SP_ELx), whose handler records ESR_EL1 and
    /// ELR_EL1, steps ELR_EL1 past the UDF and ERETs back.
    /// </summary>
    [ConformanceCase("Arm ARM: MRS/MSR of EL1 system registers, exception entry through VBAR_EL1 and ERET (not trapped by KVM: " + SysRegsC +
                     " keeps the guest's values)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_guest_sysregs_and_its_own_vector(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        const ulong Vector = 0x4000;
        using var kvm = ctx.OpenKvm();
        void Program(A64Assembler a)
        {
            a.MovImm(X(1), Vector);
            a.Msr(Enc(3, 0, 12, 0, 0), X(1));          // VBAR_EL1
            a.Mrs(X(2), Enc(3, 0, 4, 2, 2));           // CurrentEL
            a.Mrs(X(3), Enc(3, 0, 0, 0, 5));           // MPIDR_EL1
            a.MovImm(X(4), 0x1234_5678);
            a.Msr(Enc(3, 3, 13, 0, 2), X(4));          // TPIDR_EL0
            a.Mrs(X(5), Enc(3, 3, 13, 0, 2));
            a.Udf(7);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
            Arm64Guest.SystemOff(a);
        }
        byte[] code = Arm64Guest.Assemble(Program);
        int udfWord = Enumerable.Range(0, code.Length / 4).First(i => BitConverter.ToUInt32(code, 4 * i) == 7);
        using var guest = Arm64Guest.Create(kvm, Program);
        // The handler at Vector + 0x200 (synchronous, current EL with SP_ELx).
        byte[] handler = Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(6), Enc(3, 0, 5, 2, 0));           // ESR_EL1
            a.Mrs(X(7), Enc(3, 0, 4, 0, 1));           // ELR_EL1
            a.AddImm(X(8), X(7), 4);
            a.Msr(Enc(3, 0, 4, 0, 1), X(8));
            a.Eret();
        });
        if (guest.Memfd is { } memfd)
        {
            using var map = memfd.Map();
            map.Write(Vector + 0x200, handler);
        }
        else
        {
            guest.Host!.Write(Vector + 0x200, handler);
        }
        Arm64Guests.AssertUcall(guest.Vcpu, Arm64Guest.UcallDone, () => "no ucall");
        var vcpu = guest.Vcpu;
        Assert.Equal(4UL, vcpu.GetX(2));
        Assert.Equal(0x8000_0000UL, vcpu.GetX(3));
        Assert.Equal(0x1234_5678UL, vcpu.GetX(5));
        Assert.Equal(0x1234_5678UL, vcpu.GetOneReg(KvmArm64SysRegs.TPIDR_EL0));
        Assert.Equal(Vector, vcpu.GetOneReg(KvmArm64SysRegs.VBAR_EL1));
        // ESR_EL1: EC 0 (unknown reason) with IL; ELR_EL1: the UDF itself; the handler resumed after it.
        Assert.Equal(0UL, vcpu.GetX(6) >> 26);
        Assert.Equal(1UL << 25, vcpu.GetX(6) & (1UL << 25));
        Assert.Equal(vcpu.GetX(6), vcpu.GetOneReg(KvmArm64SysRegs.ESR_EL1));
        Assert.Equal(Arm64Guest.CodeGpa + 4 * (ulong)udfWord, vcpu.GetX(7));
        Arm64Guests.AssertSystemOff(vcpu);
    }

    /// <summary>
    /// Architectural UNDEFINED system-register writes, each taken to VBAR_EL1 (0) + 0x200, the guest helper's sync
    /// vector: MSR to the read-only MPIDR_EL1 and to CurrentEL.
    /// </summary>
    [ConformanceCase("Arm ARM C5.2: MSR MPIDR_EL1 and MSR CurrentEL are UNDEFINED (EC 0 to the current-EL vector), the register keeps its value",
        Profile = EmulatedProfile.Arm64)]
    public static void arm64_read_only_sysregs_are_undefined_to_write(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        foreach (ulong encoding in new[] { Enc(3, 0, 0, 0, 5), Enc(3, 0, 4, 2, 2) })
        {
            using var guest = Arm64Guest.Create(kvm,
                a =>
                {
                    a.Movz(X(1), 0x42);
                    a.Msr(encoding, X(1));
                    Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
                },
                syncVector: a =>
                {
                    a.Mrs(X(2), Enc(3, 0, 0, 0, 5));
                    Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
                    Arm64Guest.SystemOff(a);
                });
            Arm64Guests.AssertUcall(guest.Vcpu, Arm64Guest.UcallDone, () => $"MSR 0x{encoding:X4} did not trap as UNDEFINED");
            Assert.Equal(Arm64Guest.CodeGpa + 4, guest.Vcpu.GetOneReg(KvmArm64Regs.ElrEl1));
            Assert.Equal(0UL, guest.Vcpu.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
            Assert.Equal(0x8000_0000UL, guest.Vcpu.GetX(2));
        }
    }
}
