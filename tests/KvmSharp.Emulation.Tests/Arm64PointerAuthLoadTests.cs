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
/// LDRAA / LDRAB in the A64 interpreter (A64Interpreter.PointerAuth.cs LoadWithAuth; Arm ARM C6.2 "LDRAA, LDRAB"):
/// the base authenticated with the DA / DB key and a zero modifier, the scaled signed 10-bit offset, the pre-indexed
/// writeback form, a failed authentication (a corrupted address without FEAT_FPAC, the PAC Fail exception with
/// FEAT_FPACCOMBINE since the load is a combined instruction), a disabled key and a host without FEAT_PAuth.
/// </summary>
public class Arm64PointerAuthLoadTests
{
    private const ulong Exception = 3;
    private const ulong Data = 0x6000;
    private const ulong KeyLo = 0x0F1E_2D3C_4B5A_6978, KeyHi = 0x8796_A5B4_C3D2_E1F0;

    private static ulong Enc(int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(3, op1, crn, crm, op2);

    private static readonly ulong Sctlr = Enc(0, 1, 0, 0), ApdaLo = Enc(0, 2, 2, 0), ApdaHi = Enc(0, 2, 2, 1),
        ApdbLo = Enc(0, 2, 2, 2), ApdbHi = Enc(0, 2, 2, 3), EsrEl1 = Enc(0, 5, 2, 0), ElrEl1 = Enc(0, 4, 0, 1);

    private const uint PtrAuthFeatures =
        (1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_ADDRESS) | (1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_GENERIC);

    /// <summary>LDRAA/LDRAB Xt, [Xn, #offset]{!}: 11111000 M S 1 imm9 W 1 Rn Rt, offset = S:imm9 * 8.</summary>
    private static uint Ldra(int rt, int rn, int offset, bool keyB = false, bool writeback = false)
    {
        uint imm10 = (uint)(offset / 8) & 0x3FF;
        return 0xF820_0400u | (keyB ? 1u << 23 : 0) | ((imm10 >> 9) << 22) | ((imm10 & 0x1FF) << 12) |
            (writeback ? 1u << 11 : 0) | ((uint)rn << 5) | (uint)rt;
    }

    /// <summary>PACDZA Xd (opcode 001010, Rn = 11111): sign Xd with the DA key and a zero modifier.</summary>
    private static uint Pacdza(int rd) => 0xDAC1_2BE0u | (uint)rd;

    /// <summary>PACDZB Xd (opcode 001011).</summary>
    private static uint Pacdzb(int rd) => 0xDAC1_2FE0u | (uint)rd;

    /// <summary>The DA and DB keys, SCTLR_EL1.EnDA (27) and EnDB (13) when <paramref name="enable"/>.</summary>
    private static void Prologue(A64Assembler a, bool enable = true)
    {
        a.MovImm(X(1), KeyLo);
        a.MovImm(X(2), KeyHi);
        if (enable)
        {
            a.Msr(ApdaLo, X(1));
            a.Msr(ApdaHi, X(2));
            a.Msr(ApdbLo, X(2));
            a.Msr(ApdbHi, X(1));
        }
        a.Mrs(X(1), Sctlr);
        a.MovImm(X(2), enable ? (1UL << 27) | (1UL << 13) : 0);
        a.Orr(X(1), X(1), X(2));
        a.Msr(Sctlr, X(1));
        a.MovImm(X(1), 0);
        a.MovImm(X(2), 0);
    }

    /// <summary>A one-vCPU VM with 8-byte values i * 0x1111 at Data + 8 * (i - 8) for i in 0..16 and a recording sync vector.</summary>
    private static (Arm64TestVm Vm, ulong Code) Run(Action<A64Assembler> program, Arm64CpuModel model, bool features = true)
    {
        var s = new Arm64TestVm(program, EmulatorConfig.Arm64() with { Arm64Cpu = model });
        for (int i = 0; i <= 16; i++) s.Host.Write(Data - 64 + (ulong)(8 * i), BitConverter.GetBytes((ulong)i * 0x1111));
        s.Host.Write(Arm64Guest.SyncVectorGpa, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(25), EsrEl1);
            a.Mrs(X(26), ElrEl1);
            Arm64Guest.Ucall(a, Exception);
        }));
        var vcpu = s.AddVcpu(features ? PtrAuthFeatures : 0);
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        return (s, BitConverter.ToUInt64(exit.MmioData));
    }

    /// <summary>The value the set-up stored at <paramref name="gpa"/>.</summary>
    private static ulong ValueAt(ulong gpa) => (gpa - (Data - 64)) / 8 * 0x1111;

    [Fact]
    public void Ldraa_and_ldrab_load_through_a_signed_pointer_with_offset_and_writeback()
    {
        var (s, code) = Run(a =>
        {
            Prologue(a);
            a.MovImm(X(5), Data);
            a.Emit(Pacdza(5));
            a.Mov(X(20), X(5));
            a.Emit(Ldra(1, 5, 16));                              // LDRAA x1, [x5, #16]
            a.Emit(Ldra(2, 5, -24, writeback: true));            // LDRAA x2, [x5, #-24]!
            a.Mov(X(21), X(5));
            a.MovImm(X(6), Data);
            a.Emit(Pacdzb(6));
            a.Emit(Ldra(3, 6, 0, keyB: true));                   // LDRAB x3, [x6]
            a.Emit(Ldra(4, 6, 4088, keyB: true, writeback: true)); // the largest offset: 511 * 8
            a.Mov(X(22), X(6));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.WithPointerAuth);
        using (s)
        {
            Assert.Equal(Arm64Guest.UcallDone, code);
            var v = s.Vcpus[0];
            Assert.NotEqual(Data, v.GetX(20));                   // the PAC is in the pointer
            Assert.Equal(ValueAt(Data + 16), v.GetX(1));
            Assert.Equal(ValueAt(Data - 24), v.GetX(2));
            Assert.Equal(Data - 24, v.GetX(21));                 // writeback: the authenticated address + offset
            Assert.Equal(ValueAt(Data), v.GetX(3));
            Assert.Equal(Data + 4088, v.GetX(22));
            Assert.Equal(0UL, v.GetX(4));                        // Data + 4088 holds no test value
        }
    }

    [Fact]
    public void A_wrong_key_without_fpac_corrupts_the_address_and_the_load_faults()
    {
        int loadOffset = 0;
        var (s, code) = Run(a =>
        {
            Prologue(a);
            a.MovImm(X(5), Data);
            a.Emit(Pacdza(5));
            a.Mov(X(20), X(5));
            loadOffset = a.Position;
            a.Emit(Ldra(1, 5, 0, keyB: true, writeback: true)); // LDRAB on a DA-signed pointer
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.WithPointerAuth);
        using (s)
        {
            Assert.Equal(Exception, code);
            var v = s.Vcpus[0];
            // A data abort at the load (error code 10 in bits 62:61 makes the address non-canonical); nothing
            // loaded, no writeback.
            Assert.Equal(0x25UL, v.GetX(25) >> 26);
            Assert.Equal(Arm64Guest.CodeGpa + (ulong)loadOffset, v.GetX(26));
            Assert.Equal(0UL, v.GetX(1));
            Assert.Equal(v.GetX(20), v.GetX(5));
        }
    }

    [Fact]
    public void With_fpaccombine_a_failed_ldraa_takes_the_pac_fail_exception()
    {
        int loadOffset = 0;
        var (s, code) = Run(a =>
        {
            Prologue(a);
            a.MovImm(X(5), Data);
            a.Emit(Pacdza(5));
            a.Emit(Ldra(1, 5, 8));                               // succeeds
            a.Mov(X(21), X(1));
            a.MovImm(X(6), 0x55);
            a.Eor(X(5), X(5), X(6));                             // no longer the signed pointer
            loadOffset = a.Position;
            a.Emit(Ldra(2, 5, 0));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, new Arm64CpuModel { Name = "fpaccombine", Apa = 5, Gpa = 1 });
        using (s)
        {
            Assert.Equal(Exception, code);
            var v = s.Vcpus[0];
            Assert.Equal(ValueAt(Data + 8), v.GetX(21));
            // EC 0x1C, ISS<1> = 1 (data key), ISS<0> = 0 (key A); the preferred return is the LDRAA.
            Assert.Equal(0x1CUL, v.GetX(25) >> 26);
            Assert.Equal(2UL, v.GetX(25) & 0x1FF_FFFF);
            Assert.Equal(Arm64Guest.CodeGpa + (ulong)loadOffset, v.GetX(26));
        }
    }

    [Fact]
    public void A_disabled_key_loads_from_the_unauthenticated_address()
    {
        var (s, code) = Run(a =>
        {
            Prologue(a, enable: false);
            a.MovImm(X(5), Data);
            a.Emit(Ldra(1, 5, -64, writeback: true));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.WithPointerAuth, features: false);
        using (s)
        {
            Assert.Equal(Arm64Guest.UcallDone, code);
            Assert.Equal(ValueAt(Data - 64), s.Vcpus[0].GetX(1));
            Assert.Equal(Data - 64, s.Vcpus[0].GetX(5));
        }
    }

    [Fact]
    public void An_enabled_key_without_the_vcpu_features_and_a_host_without_pauth_undef()
    {
        // HCR_EL2.API clear: the enabled DA key traps and KVM injects UNDEF (EC 0).
        var (s, code) = Run(a =>
        {
            a.Mrs(X(1), Sctlr);
            a.MovImm(X(2), 1UL << 27);
            a.Orr(X(1), X(1), X(2));
            a.Msr(Sctlr, X(1));
            a.MovImm(X(5), Data);
            a.Emit(Ldra(1, 5, 0));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.WithPointerAuth, features: false);
        using (s)
        {
            Assert.Equal(Exception, code);
            Assert.Equal(0UL, s.Vcpus[0].GetX(25) >> 26);
        }
        // "if !IsFeatureImplemented(FEAT_PAuth) then UNDEFINED".
        (s, code) = Run(a =>
        {
            a.MovImm(X(5), Data);
            a.Emit(Ldra(1, 5, 0));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, Arm64CpuModel.NeoverseN1, features: false);
        using (s)
        {
            Assert.Equal(Exception, code);
            Assert.Equal(0UL, s.Vcpus[0].GetX(25) >> 26);
        }
    }
}
