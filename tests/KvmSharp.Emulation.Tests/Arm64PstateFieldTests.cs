// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Emulation.Tests.Arm64SveBf16Tests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// PSTATE.DIT (FEAT_DIT), SSBS (FEAT_SSBS2), UAO and PAN through MSR (immediate) and MRS/MSR (register)
/// (A64Interpreter.PstateFields.cs), what an exception to EL1 makes of them (enter_exception64), and the ID register
/// fields that say which a host has: DIT on V1/V2 only, SSBS 2 everywhere, LSE2 (MMFR2.AT) on V1/V2, BTI on V2.
/// </summary>
public class Arm64PstateFieldTests
{
    private const ulong Dit = 1UL << 24, Ssbs = 1UL << 12, Uao = 1UL << 23, Pan = 1UL << 22;

    private static readonly Arm64CpuModel[] AllPresets =
        [Arm64CpuModel.NeoverseN1, Arm64CpuModel.WithPointerAuth, Arm64CpuModel.NeoverseV1, Arm64CpuModel.NeoverseV2];

    private static readonly string[] Cases =
    [
        // Set, read back, clear, read back: each read lands in V0's lanes, which the digest compares.
        "msr dit, #1\nmrs x11, dit\nmsr dit, #0\nmrs x13, dit\nfmov d0, x11\nmov v0.d[1], x13",
        "msr ssbs, #1\nmrs x11, ssbs\nmsr ssbs, #0\nmrs x13, ssbs\nfmov d0, x11\nmov v0.d[1], x13",
        // The register forms move only their own bit: every other bit of the source is ignored and reads as zero.
        "mov x13, #-1\nmsr dit, x13\nmrs x11, dit\nmsr dit, xzr\nmrs x13, dit\nfmov d0, x11\nmov v0.d[1], x13",
        "mov x13, #-1\nmsr ssbs, x13\nmrs x11, ssbs\nmov x13, #0x1000\nmsr ssbs, xzr\nmrs x13, ssbs\nfmov d0, x11\nmov v0.d[1], x13",
        // The immediate is CRm<0> (qemu's handle_msr_i: crm & 1): CRm 1111 sets, 1110 clears (the assembler takes only
        // #0 and #1, so the words are given).
        ".inst 0xd5034f5f\nmrs x11, dit\n.inst 0xd5034e5f\nmrs x13, dit\nfmov d0, x11\nmov v0.d[1], x13",
        // NZCV is untouched by either.
        "mov x13, #0x90000000\nmsr nzcv, x13\nmsr dit, #1\nmsr ssbs, #1\nmsr dit, #0\nmsr ssbs, #0",
    ];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Built = new(() => Build(Cases, "pstate-fields"));

    [SkippableFact]
    public void Dit_and_ssbs_read_back_what_qemu_reads_back() =>
        Arm64Sve2Tests.CompareWithQemu(Built.Value, Names(Cases), 128, Arm64CpuModel.NeoverseV2);

    /// <summary>
    /// MSR DIT, #1 then MRS X0, DIT: X0 = PSTATE.DIT at bit 24 on V1 and V2 (ID_AA64PFR0_EL1.DIT = 1); on N1 (DIT 0)
    /// the MSR is UNDEFINED (an unallocated PSTATE field), and so is MRS DIT on its own (no such register).
    /// </summary>
    [Fact]
    public void Dit_runs_where_id_aa64pfr0_dit_offers_it_and_is_undefined_elsewhere()
    {
        foreach (var model in AllPresets)
        {
            using var s = Arm64TestVm.RunningWords(model, 0xD503_415F /* msr dit, #1 */, 0xD53B_42A0 /* mrs x0, dit */);
            var v = s.RunToUcall();
            if (model.Dit == 0)
            {
                Arm64TestVm.AssertUndefinedAt(v, Arm64Guest.CodeGpa);
                using var mrs = Arm64TestVm.RunningWords(model, 0xD53B_42A0);
                Arm64TestVm.AssertUndefinedAt(mrs.RunToUcall(), Arm64Guest.CodeGpa);
                continue;
            }
            Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
            Assert.Equal(Dit, v.GetOneReg(KvmArm64Regs.X(0)));
            Assert.Equal(Dit, v.GetOneReg(KvmArm64Regs.Pstate) & Dit);
        }
    }

    /// <summary>
    /// MSR SSBS, #1 / MSR SSBS, X1 / MRS X0, SSBS run on every preset (ID_AA64PFR1_EL1.SSBS = 2) and move bit 12 only.
    /// </summary>
    [Fact]
    public void Ssbs_runs_on_every_preset_and_moves_bit_12_only()
    {
        foreach (var model in AllPresets)
        {
            using var s = Arm64TestVm.RunningWords(model, 0xD503_413F /* msr ssbs, #1 */, 0xD53B_42C0 /* mrs x0, ssbs */,
                0xD51B_42C1 /* msr ssbs, x1 */, 0xD53B_42C2 /* mrs x2, ssbs */);
            var v = s.RunToUcall(v => v.SetOneReg(KvmArm64Regs.X(1), ~Ssbs));
            Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
            Assert.Equal(Ssbs, v.GetOneReg(KvmArm64Regs.X(0)));
            Assert.Equal(0UL, v.GetOneReg(KvmArm64Regs.X(2)));
            Assert.Equal(0UL, v.GetOneReg(KvmArm64Regs.Pstate) & (Ssbs | Dit));
        }
    }

    /// <summary>
    /// MSR UAO, #1 and MRS X0, UAO (ID_AA64MMFR2_EL1.UAO = 1 on every preset), and MRS X1, PAN after MSR PAN, #1
    /// (MMFR1.PAN = 2): each reads its bit at its PSTATE position (UAO 23, PAN 22).
    /// </summary>
    [Fact]
    public void Uao_and_pan_read_back_at_their_pstate_positions()
    {
        foreach (var model in AllPresets)
        {
            using var s = Arm64TestVm.RunningWords(model, 0xD500_417F /* msr uao, #1 */, 0xD538_4280 /* mrs x0, uao */,
                0xD500_419F /* msr pan, #1 */, 0xD538_4261 /* mrs x1, pan */);
            var v = s.RunToUcall();
            Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
            Assert.Equal(Uao, v.GetOneReg(KvmArm64Regs.X(0)));
            Assert.Equal(Pan, v.GetOneReg(KvmArm64Regs.X(1)));
        }
    }

    /// <summary>
    /// An exception to EL1 (UDF, taken at EL1): SPSR_EL1 keeps DIT, SSBS and UAO as they were; PSTATE keeps DIT
    /// ("PSTATE.DIT is unchanged"), takes SSBS from SCTLR_EL1.DSSBS (bit 44) and clears UAO
    /// (arch/arm64/kvm/hyp/exception.c enter_exception64, AArch64.TakeException). Both DSSBS values, on V2.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_exception_keeps_dit_clears_uao_and_takes_ssbs_from_sctlr_dssbs(bool dssbs)
    {
        // msr dit, #1; msr uao, #1; msr ssbs, #(!dssbs); udf #0
        uint ssbsInsn = dssbs ? 0xD503_403Fu /* msr ssbs, #0 */ : 0xD503_413Fu /* msr ssbs, #1 */;
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseV2, 0xD503_415F, 0xD500_417F, ssbsInsn, 0x0000_0000);
        var v = s.RunToUcall(v =>
        {
            ulong sctlr = v.GetOneReg(KvmArm64SysRegs.SCTLR_EL1);
            v.SetOneReg(KvmArm64SysRegs.SCTLR_EL1, dssbs ? sctlr | (1UL << 44) : sctlr & ~(1UL << 44));
        });
        Arm64TestVm.AssertUndefinedAt(v, Arm64Guest.CodeGpa + 12);
        ulong spsr = v.GetOneReg(KvmArm64Regs.SpsrEl1), pstate = v.GetOneReg(KvmArm64Regs.Pstate);
        Assert.Equal(Dit | Uao | (dssbs ? 0 : Ssbs), spsr & (Dit | Uao | Ssbs));
        Assert.Equal(Dit | (dssbs ? Ssbs : 0), pstate & (Dit | Uao | Ssbs));
    }

    /// <summary>
    /// The presets' ID registers as a vCPU reads them: ID_AA64PFR0_EL1.DIT (51:48) 1 on V1/V2, 0 on N1;
    /// ID_AA64PFR1_EL1.SSBS (7:4) 2 everywhere, BT (3:0) 1 on V2 only; ID_AA64MMFR2_EL1.AT (35:32) 1 on V1/V2.
    /// </summary>
    [Fact]
    public void The_presets_id_registers_carry_dit_ssbs_bti_and_lse2_as_the_parts_do()
    {
        foreach (var model in AllPresets)
        {
            using var s = Arm64TestVm.RunningWords(model);
            var v = s.AddVcpu();
            bool v8dot4 = model == Arm64CpuModel.NeoverseV1 || model == Arm64CpuModel.NeoverseV2;
            Assert.Equal(v8dot4 ? 1UL : 0UL, (v.GetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1) >> 48) & 0xF);
            ulong pfr1 = v.GetOneReg(KvmArm64IdRegs.ID_AA64PFR1_EL1);
            Assert.Equal(2UL, (pfr1 >> 4) & 0xF);
            Assert.Equal(model == Arm64CpuModel.NeoverseV2 ? 1UL : 0UL, pfr1 & 0xF);
            Assert.Equal(v8dot4 ? 1UL : 0UL, (v.GetOneReg(KvmArm64IdRegs.ID_AA64MMFR2_EL1) >> 32) & 0xF);
        }
    }
    /// <summary>
    /// HLT #0 (halting debug, which a guest never has enabled: EDSCR.HDE = 0) is UNDEFINED on every preset, EC 0x00 at
    /// the instruction.
    /// </summary>
    [Fact]
    public void Hlt_is_undefined_without_halting_debug()
    {
        foreach (var model in AllPresets)
        {
            using var s = Arm64TestVm.RunningWords(model, 0xD440_0000);
            Arm64TestVm.AssertUndefinedAt(s.RunToUcall(), Arm64Guest.CodeGpa);
        }
    }
}
