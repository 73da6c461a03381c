// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Pointer-authentication instructions in the A64 interpreter (Emulation/Arm64/A64Interpreter.PointerAuth.cs,
/// Arm64PacCipher.cs): QARMA5 against the published QARMA-64 test vector, PAC/AUT/XPAC/PACGA/RETAA with the guest's
/// keys, the Auth failure without FEAT_FPAC (error code in bits 62:61) and with it (EC 0x1C), and the vCPU without the
/// features (HCR_EL2.API clear: an enabled key traps and KVM injects UNDEF) or a host without FEAT_PAuth.
/// </summary>
public class Arm64PointerAuthTests
{
    private const ulong Undef = 3;
    private const ulong Ptr = 0x0000_1234_5678_9AB0, Stack = 0x8000;
    private const ulong KeyLo = 0x0123_4567_89AB_CDEF, KeyHi = 0xFEDC_BA98_7654_3210;

    private static ulong Enc(int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(3, op1, crn, crm, op2);

    private static readonly ulong Sctlr = Enc(0, 1, 0, 0), ApiaLo = Enc(0, 2, 1, 0), ApiaHi = Enc(0, 2, 1, 1),
        ApgaLo = Enc(0, 2, 3, 0), ApgaHi = Enc(0, 2, 3, 1), EsrEl1 = Enc(0, 5, 2, 0), ElrEl1 = Enc(0, 4, 0, 1);

    // Encodings (Arm ARM C6.2).
    private const uint Paciasp = 0xD503_233F, Autiasp = 0xD503_23BF, Xpaclri = 0xD503_20FF, Retaa = 0xD65F_0BFF;

    private static uint Pacia(int rd, int rn) => 0xDAC1_0000u | ((uint)rn << 5) | (uint)rd;

    private static uint Autia(int rd, int rn) => 0xDAC1_1000u | ((uint)rn << 5) | (uint)rd;

    private static uint Xpaci(int rd) => 0xDAC1_43E0u | (uint)rd;

    private static uint Pacga(int rd, int rn, int rm) => 0x9AC0_3000u | ((uint)rm << 16) | ((uint)rn << 5) | (uint)rd;

    private static EmulatorConfig Host(Arm64CpuModel model) => EmulatorConfig.Arm64() with { Arm64Cpu = model };

    private const uint PtrAuthFeatures =
        (1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_ADDRESS) | (1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_GENERIC);

    /// <summary>A one-vCPU VM whose synchronous vector (EL1h, 0x200) records ESR_EL1/ELR_EL1 in x25/x26 and ucalls 3.</summary>
    private static (Arm64TestVm Vm, ulong Code) Run(Action<A64Assembler> program, Arm64CpuModel model, bool features)
    {
        var s = new Arm64TestVm(program, Host(model));
        s.Host.Write(0x200, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(25), EsrEl1);
            a.Mrs(X(26), ElrEl1);
            Arm64Guest.Ucall(a, Undef);
        }));
        var vcpu = s.AddVcpu(features ? PtrAuthFeatures : 0);
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        return (s, BitConverter.ToUInt64(exit.MmioData));
    }

    /// <summary>The IA key, SCTLR_EL1.EnIA (and EnIB) and SP = <see cref="Stack"/>.</summary>
    private static void Prologue(A64Assembler a, bool enable = true)
    {
        a.MovImm(X(1), KeyLo);
        if (enable)
        {
            a.Msr(ApiaLo, X(1));
            a.MovImm(X(1), KeyHi);
            a.Msr(ApiaHi, X(1));
        }
        a.Mrs(X(1), Sctlr);
        a.MovImm(X(2), enable ? (1UL << 31) | (1UL << 30) : 0);
        a.Orr(X(1), X(1), X(2));
        a.Msr(Sctlr, X(1));
        a.MovImm(X(3), Stack);
        a.AddImm(Sp, X(3), 0);
    }

    /// <summary>AddPAC for TCR_EL1 = 0 (no TBI, 48-bit VA: PAC in bits 63:56 and 54:48) of a canonical low pointer.</summary>
    private static ulong Signed(ulong ptr, ulong modifier) =>
        ptr | (Arm64PacCipher.ComputePac(ptr, modifier, KeyHi, KeyLo) & 0xFF7F_0000_0000_0000UL);

    [Fact]
    public void Qarma5_matches_the_published_qarma64_test_vector()
    {
        // Avanzi, "The QARMA Block Cipher Family", ToSC 2017(1), test vectors: P = fb623599da6e8127,
        // T = 477d469dec0b8762, w0 = 84be85ce9804e94b, k0 = ec2802d4e0a488e9, QARMA-64 with sigma2 and r = 5
        // (Arm's PACSub is sigma2; ComputePAC's key0 = w0, key1 = k0): C = c003b93999b33765.
        Assert.Equal(0xc003b93999b33765UL,
            Arm64PacCipher.ComputePac(0xfb623599da6e8127, 0x477d469dec0b8762, 0x84be85ce9804e94b, 0xec2802d4e0a488e9));
    }

    [Fact]
    public void Paciasp_signs_lr_and_autiasp_restores_it_or_corrupts_it()
    {
        var (s, code) = Run(a =>
        {
            Prologue(a);
            a.MovImm(X(30), Ptr);
            a.Emit(Paciasp);
            a.Mov(X(20), X(30));
            a.Emit(Autiasp);
            a.Mov(X(21), X(30));
            a.Mov(X(30), X(20));
            a.MovImm(X(3), Stack + 0x10);
            a.AddImm(Sp, X(3), 0);                          // another modifier
            a.Emit(Autiasp);
            a.Mov(X(22), X(30));
            a.Emit(Xpaclri);                                // strips the corrupted pointer's PAC bits too
            a.Mov(X(23), X(30));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.WithPointerAuth, features: true);
        using (s)
        {
            Assert.Equal(Arm64Guest.UcallDone, code);
            var v = s.Vcpus[0];
            ulong signed = Signed(Ptr, Stack);
            Assert.NotEqual(Ptr, signed);
            Assert.Equal(signed, v.GetX(20));
            Assert.Equal(Ptr, v.GetX(21));
            // Auth without FEAT_PAuth2: error_code = keynumber:NOT(keynumber) = 01 in bits 62:61 (no TBI).
            Assert.Equal(Ptr | (1UL << 61), v.GetX(22));
            // XPACLRI: bits 63:48 take ptr<55>.
            Assert.Equal(Ptr, v.GetX(23));
        }
    }

    [Fact]
    public void Pacia_autia_xpaci_and_retaa_use_the_register_forms()
    {
        var (s, code) = Run(a =>
        {
            Prologue(a);
            a.MovImm(X(5), Ptr);
            a.MovImm(X(6), 0x42);
            a.Emit(Pacia(5, 6));                            // PACIA x5, x6
            a.Mov(X(20), X(5));
            a.Emit(Xpaci(5));
            a.Mov(X(21), X(5));
            a.Mov(X(5), X(20));
            a.Emit(Autia(5, 6));
            a.Mov(X(22), X(5));
            // BL to a function that signs LR with SP and returns with RETAA.
            var function = a.CreateLabel();
            var after = a.CreateLabel();
            a.Bl(function);
            a.MovImm(X(24), 1);
            a.B(after);
            a.Bind(function);
            a.Emit(Paciasp);
            a.Emit(Retaa);
            a.Bind(after);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.WithPointerAuth, features: true);
        using (s)
        {
            Assert.Equal(Arm64Guest.UcallDone, code);
            var v = s.Vcpus[0];
            Assert.Equal(Signed(Ptr, 0x42), v.GetX(20));
            Assert.Equal(Ptr, v.GetX(21));
            Assert.Equal(Ptr, v.GetX(22));
            Assert.Equal(1UL, v.GetX(24));
        }
    }

    [Fact]
    public void A_retaa_with_a_wrong_modifier_branches_to_a_corrupted_address_that_faults()
    {
        var (s, code) = Run(a =>
        {
            Prologue(a);
            var function = a.CreateLabel();
            a.Bl(function);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
            a.Bind(function);
            a.Emit(Paciasp);
            a.AddImm(Sp, Sp, 0x10);                         // the modifier changes before the return
            a.Emit(Retaa);
        }, Arm64CpuModel.WithPointerAuth, features: true);
        using (s)
        {
            // Without FEAT_FPAC the branch goes to the original pointer with error code 01 in bits 62:61; fetching it
            // is an instruction abort at EL1 (EC 0x21), ELR_EL1 the corrupted address.
            Assert.Equal(Undef, code);
            var v = s.Vcpus[0];
            ulong lr = Arm64Guest.CodeGpa + (ulong)(Arm64Guest.Assemble(a => Prologue(a)).Length + 4);
            Assert.Equal(0x21UL, v.GetX(25) >> 26);
            Assert.Equal(lr | (1UL << 61), v.GetX(26));
        }
    }

    [Fact]
    public void Pacga_is_the_top_half_of_computepac_with_the_ga_key()
    {
        var (s, code) = Run(a =>
        {
            a.MovImm(X(1), KeyLo);
            a.Msr(ApgaLo, X(1));
            a.MovImm(X(1), KeyHi);
            a.Msr(ApgaHi, X(1));
            a.MovImm(X(2), 0x1122_3344_5566_7788);
            a.MovImm(X(3), 0x99);
            a.Emit(Pacga(4, 2, 3));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.WithPointerAuth, features: true);
        using (s)
        {
            Assert.Equal(Arm64Guest.UcallDone, code);
            ulong expected = Arm64PacCipher.ComputePac(0x1122_3344_5566_7788, 0x99, KeyHi, KeyLo) & 0xFFFF_FFFF_0000_0000UL;
            Assert.Equal(expected, s.Vcpus[0].GetX(4));
        }
    }

    [Fact]
    public void The_keys_are_the_guests_and_userspaces_registers()
    {
        var s = new Arm64TestVm(a =>
        {
            a.Mrs(X(1), ApiaLo);
            a.MovImm(X(2), 0x5555);
            a.Msr(ApiaHi, X(2));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Host(Arm64CpuModel.WithPointerAuth));
        using (s)
        {
            var v = s.AddVcpu(PtrAuthFeatures);
            v.SetOneReg(KvmArm64PtrAuth.APIAKEYLO_EL1, 0xABCD);
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
            Assert.Equal(0xABCDUL, v.GetX(1));
            Assert.Equal(0x5555UL, v.GetOneReg(KvmArm64PtrAuth.APIAKEYHI_EL1));
        }
    }

    [Fact]
    public void With_fpac_a_failed_aut_takes_the_pac_fail_exception()
    {
        var model = new Arm64CpuModel { Name = "fpac", Apa = 4, Gpa = 1 };
        int autOffset = 0;
        var (s, code) = Run(a =>
        {
            Prologue(a);
            a.MovImm(X(5), Ptr);
            a.MovImm(X(6), 0x42);
            a.Emit(Pacia(5, 6));
            a.Mov(X(20), X(5));
            a.Emit(Autia(5, 6));                            // succeeds: PAuth2 XORs the PAC out again
            a.Mov(X(21), X(5));
            a.Mov(X(5), X(20));
            a.MovImm(X(6), 0x43);
            autOffset = a.Position;
            a.Emit(Autia(5, 6));                            // fails: EC 0x1C, ISS 0 (instruction key A)
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, model, features: true);
        using (s)
        {
            Assert.Equal(Undef, code);
            var v = s.Vcpus[0];
            Assert.Equal(Ptr, v.GetX(21));
            Assert.Equal(0x1CUL, v.GetX(25) >> 26);
            Assert.Equal(0UL, v.GetX(25) & 0x1FF_FFFF);
            Assert.Equal(Arm64Guest.CodeGpa + (ulong)autOffset, v.GetX(26));
        }
    }

    [Fact]
    public void Without_the_vcpu_features_a_disabled_key_is_a_nop_and_an_enabled_one_undefs()
    {
        // AArch64.AddPACIA: "if Enable == '0' then return X; elsif TrapEL2 then TrapPACUse(EL2)" → kvm_handle_ptrauth
        // → kvm_inject_undefined.
        var (s, code) = Run(a =>
        {
            Prologue(a, enable: false);
            a.MovImm(X(30), Ptr);
            a.Emit(Paciasp);
            a.MovImm(X(5), Ptr);
            a.Emit(Pacia(5, 6));
            a.Mov(X(20), X(30));
            a.Mov(X(21), X(5));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.WithPointerAuth, features: false);
        using (s)
        {
            Assert.Equal(Arm64Guest.UcallDone, code);
            Assert.Equal(Ptr, s.Vcpus[0].GetX(20));
            Assert.Equal(Ptr, s.Vcpus[0].GetX(21));
        }
        (s, code) = Run(a =>
        {
            a.Mrs(X(1), Sctlr);
            a.MovImm(X(2), 1UL << 31);
            a.Orr(X(1), X(1), X(2));
            a.Msr(Sctlr, X(1));
            a.Emit(Paciasp);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.WithPointerAuth, features: false);
        using (s)
        {
            Assert.Equal(Undef, code);
            Assert.Equal(0UL, s.Vcpus[0].GetX(25) >> 26);
        }
        // PACGA has no enable: always trapped (UNDEF) without the features.
        (s, code) = Run(a =>
        {
            a.Emit(Pacga(4, 2, 3));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.WithPointerAuth, features: false);
        using (s) Assert.Equal(Undef, code);
    }

    [Fact]
    public void Without_feat_pauth_the_hint_forms_are_nops_and_the_others_undefined()
    {
        var (s, code) = Run(a =>
        {
            a.MovImm(X(30), Ptr);
            a.Emit(Paciasp);
            a.Emit(Xpaclri);
            a.Mov(X(20), X(30));
            a.Emit(Xpaci(30));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.NeoverseN1, features: false);
        using (s)
        {
            Assert.Equal(Undef, code);
            Assert.Equal(Ptr, s.Vcpus[0].GetX(20));
            Assert.Equal(0UL, s.Vcpus[0].GetX(25) >> 26);
        }
    }
}
