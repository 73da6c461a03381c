// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Emulation.Tests.Arm64SveBf16Tests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// FEAT_FlagM / FlagM2 (CFINV, RMIF, SETF8, SETF16, AXFLAG, XAFLAG: A64Interpreter.FlagM.cs), FEAT_RNG (RNDR, RNDRRS)
/// and FEAT_SB (SB: A64Interpreter.RngSb.cs) and FEAT_LRCPC2 (LDAPUR*/STLUR*: A64Interpreter.Rcpc2.cs): against
/// qemu-aarch64 -cpu max on the Neoverse V2-like preset (NZCV, the registers moved to V0 and the stores into the
/// harness's scratch buffer, bit for bit), and the decode gates of ID_AA64ISAR0_EL1.TS / RNDR and ID_AA64ISAR1_EL1.SB /
/// LRCPC on the presets.
/// </summary>
public class Arm64FlagMRngSbRcpc2Tests
{
    private const string Load = "ldp x11, x13, [x11]\nmsr nzcv, x13\n";

    private static IEnumerable<string> FlagCases()
    {
        // Every NZCV value into CFINV, XAFLAG and AXFLAG.
        foreach (string insn in new[] { "cfinv", "xaflag", "axflag" })
        {
            for (int nzcv = 0; nzcv < 16; nzcv++) yield return $"mov x13, #0x{nzcv:x}0000000\nmsr nzcv, x13\n{insn}";
        }
        // RMIF over the data windows' X11 with the flags from X13: several rotations and masks.
        foreach (var (lsb, mask) in new[] { (0, 0xF), (1, 0xF), (3, 0x5), (4, 0xA), (31, 0x8), (32, 0x1), (60, 0xF), (61, 0x6), (63, 0xF), (17, 0x0) })
            yield return Load + $"rmif x11, #{lsb}, #0x{mask:x}\nfmov d0, x11";
        // SETF8/SETF16 over the windows (edge bytes 0x00, 0x7F, 0x80, 0xFF … come often) and over fixed values.
        yield return Load + "setf8 w11";
        yield return Load + "setf16 w11";
        yield return Load + "lsr x11, x11, #7\nsetf8 w11";
        yield return Load + "lsr x11, x11, #15\nsetf16 w11";
        foreach (string value in new[] { "0", "0x7f", "0x80", "0xff", "0x100", "0x17f", "0x180", "0x1ff", "0x7fff", "0x8000", "0xffff", "0x10000", "0x18000", "0xffff0000" })
        {
            yield return $"mov x13, #0xf0000000\nmsr nzcv, x13\nmov x11, #{value}\nsetf8 w11";
            yield return $"mov x13, #0x20000000\nmsr nzcv, x13\nmov x11, #{value}\nsetf16 w11";
        }
    }

    private static readonly string[] RngSbCases =
    [
        // Only NZCV goes into the digest: a random number gives 0000 whatever the flags were.
        "mov x13, #0xf0000000\nmsr nzcv, x13\nmrs x11, s3_3_c2_c4_0",
        "mov x13, #0x40000000\nmsr nzcv, x13\nmrs x11, s3_3_c2_c4_1",
        Load + "sb\nfmov d0, x11",
    ];

    private static readonly string[] Rcpc2Cases =
    [
        "add x11, x11, #64\nldapurb w11, [x11, #-61]\nfmov d0, x11",
        "ldapursb x11, [x11, #7]\nfmov d0, x11",
        "ldapursb w11, [x11, #15]\nfmov d0, x11",
        "ldapurh w11, [x11, #6]\nfmov d0, x11",
        "ldapursh x11, [x11, #14]\nfmov d0, x11",
        "add x11, x11, #64\nldapursh w11, [x11, #-2]\nfmov d0, x11",
        "ldapur w11, [x11, #4]\nfmov d0, x11",
        "ldapursw x11, [x11, #12]\nfmov d0, x11",
        "add x11, x11, #256\nldapur x11, [x11, #-256]\nfmov d0, x11",
        "ldapur x11, [x11, #8]\nfmov d0, x11",
        // A W load replaces the whole X register (upper half zeroed), the signed-to-32 forms too.
        "ldr x13, [x11, #8]\nldapur w13, [x11]\nfmov d0, x13",
        "ldr x13, [x11, #8]\nldapursb w13, [x11, #3]\nfmov d0, x13",
        "ldr x13, [x11, #8]\nldapursh w13, [x11, #2]\nfmov d0, x13",
        // Stores into the scratch buffer (all of it goes into the digest).
        "ldr x11, [x11]\nstlurb w11, [x13, #255]",
        "ldr x11, [x11]\nadd x13, x13, #512\nstlurb w11, [x13, #-256]",
        "ldr x11, [x11]\nstlurh w11, [x13, #30]",
        "ldr x11, [x11]\nadd x13, x13, #512\nstlurh w11, [x13, #-2]",
        "ldr x11, [x11]\nstlur w11, [x13, #252]",
        "ldr x11, [x11]\nadd x13, x13, #512\nstlur x11, [x13, #-256]",
        "ldr x11, [x11]\nstlur x11, [x13, #248]",
    ];

    private static readonly string[] Cases = [.. FlagCases(), .. RngSbCases, .. Rcpc2Cases];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Built = new(() => Build(Cases, "flagm-rng-sb-rcpc2"));

    [SkippableFact]
    public void Flag_manipulation_random_numbers_sb_and_ldapur_stlur_give_what_qemu_gives() =>
        Arm64Sve2Tests.CompareWithQemu(Built.Value, Names(Cases), 128, Arm64CpuModel.NeoverseV2);

    public static TheoryData<string, uint, ulong, ulong> FlagGateRows => new()
    {
        // name, instruction, NZCV before, NZCV after (on a preset that has the feature).
        { "cfinv", 0xD500_401F, 0x6, 0x4 },
        { "xaflag", 0xD500_403F, 0x0, 0x8 },
        { "axflag", 0xD500_405F, 0x5, 0x4 },
        { "rmif x1, #4, #15", 0xBA02_042F, 0x0, 0xA },
        { "setf8 w1", 0x3A00_082D, 0x2, 0x8 | 0x2 },
        { "setf16 w1", 0x3A00_482D, 0x0, 0x4 },
    };

    /// <summary>
    /// CFINV, RMIF and SETF8/16 need ID_AA64ISAR0_EL1.TS ≥ 1 (V1, V2), AXFLAG/XAFLAG TS ≥ 2 (V2): they run there with
    /// the pseudocode's flags (X1 = 0x1A0: RMIF #4 takes bits 7:4 = 1010; SETF8: N = bit 7 = 1, Z 0, V = bit 8 ^ bit 7 =
    /// 0, C kept; SETF16 with X1 = 0x1_0000_0000: W1 = 0, so Z 1, N 0, V 0), UNDEFINED on N1 and N1+PAuth.
    /// </summary>
    [Theory]
    [MemberData(nameof(FlagGateRows))]
    public void Flag_manipulation_runs_where_id_aa64isar0_ts_offers_it_and_is_undefined_elsewhere(string name, uint insn, ulong before, ulong after)
    {
        bool flagM2 = name.EndsWith("flag", StringComparison.Ordinal);
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.WithPointerAuth, Arm64CpuModel.NeoverseV1, Arm64CpuModel.NeoverseV2 })
        {
            using var s = Arm64TestVm.RunningWords(model, insn);
            var v = s.RunToUcall(v =>
            {
                v.SetOneReg(KvmArm64Regs.X(1), name == "setf16 w1" ? 0x1_0000_0000UL : 0x1A0UL);
                v.SetOneReg(KvmArm64Regs.Pstate, (v.GetOneReg(KvmArm64Regs.Pstate) & ~0xF000_0000UL) | (before << 28));
            });
            bool offered = model.Ts >= (flagM2 ? 2 : 1);
            if (!offered)
            {
                Arm64TestVm.AssertUndefinedAt(v, Arm64Guest.CodeGpa);
                continue;
            }
            Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
            Assert.Equal(after, v.GetOneReg(KvmArm64Regs.Pstate) >> 28 & 0xF);
        }
    }

    /// <summary>
    /// The unallocated encodings around them stay UNDEFINED on V2, which has FlagM2: RMIF with sf 0 or o2 1, SETF8 with
    /// sf 1 or another mask, SETF16 with opcode2 ≠ 0, and CFINV/AXFLAG with CRm ≠ 0 (CONSTRAINED UNPREDICTABLE: UNDEFINED).
    /// </summary>
    [Theory]
    [InlineData(0x3A02_042Fu)] // rmif with sf = 0
    [InlineData(0xBA02_043Fu)] // rmif with o2 = 1
    [InlineData(0xFA02_042Fu)] // rmif with op = 1
    [InlineData(0xBA00_082Du)] // setf8 with sf = 1
    [InlineData(0x3A00_082Cu)] // setf8 with mask 1100
    [InlineData(0x3A00_882Du)] // setf8 with opcode2 000001
    [InlineData(0x3A00_483Du)] // setf16 with o3 = 1
    [InlineData(0xD500_411Fu)] // cfinv with CRm 0001
    [InlineData(0xD500_4F5Fu)] // axflag with CRm 1111
    [InlineData(0xD503_31FFu)] // sb with CRm 0001
    [InlineData(0xD9C0_0020u)] // size 11 opc 11: unallocated in the LDAPR/STLR (unscaled) group
    [InlineData(0xD980_0020u)] // size 11 opc 10
    [InlineData(0x99C0_0020u)] // size 10 opc 11
    public void Unallocated_neighbours_are_undefined_on_neoverse_v2(uint insn)
    {
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseV2, insn);
        Arm64TestVm.AssertUndefinedAt(s.RunToUcall(v => v.SetOneReg(KvmArm64Regs.X(1), 0x8000)), Arm64Guest.CodeGpa);
    }

    /// <summary>
    /// MRS RNDR / RNDRRS (FEAT_RNG, V1 and V2): 64 random bits and NZCV = 0000 (the flags were 1111), two reads differ;
    /// UNDEFINED on N1 and N1+PAuth, and MSR to RNDR is UNDEFINED everywhere.
    /// </summary>
    [Fact]
    public void Rndr_and_rndrrs_give_random_numbers_with_nzcv_clear_where_feat_rng_is_offered()
    {
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.WithPointerAuth, Arm64CpuModel.NeoverseV1, Arm64CpuModel.NeoverseV2 })
        {
            using var s = Arm64TestVm.RunningWords(model, 0xD53B_2400 /* mrs x0, rndr */, 0xD53B_2421 /* mrs x1, rndrrs */);
            var v = s.RunToUcall(v => v.SetOneReg(KvmArm64Regs.Pstate, v.GetOneReg(KvmArm64Regs.Pstate) | 0xF000_0000UL));
            if (model.Rndr == 0)
            {
                Arm64TestVm.AssertUndefinedAt(v, Arm64Guest.CodeGpa);
                continue;
            }
            Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
            Assert.Equal(0UL, v.GetOneReg(KvmArm64Regs.Pstate) & 0xF000_0000UL);
            Assert.NotEqual(v.GetOneReg(KvmArm64Regs.X(0)), v.GetOneReg(KvmArm64Regs.X(1)));
        }
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.NeoverseV2 })
        {
            using var s = Arm64TestVm.RunningWords(model, 0xD51B_2400 /* msr rndr, x0 */);
            Arm64TestVm.AssertUndefinedAt(s.RunToUcall(), Arm64Guest.CodeGpa);
        }
    }

    /// <summary>SB (FEAT_SB): runs on V2 (ID_AA64ISAR1_EL1.SB = 1), UNDEFINED on V1 and N1 (SB = 0).</summary>
    [Fact]
    public void Sb_runs_on_neoverse_v2_and_is_undefined_without_feat_sb()
    {
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.NeoverseV1, Arm64CpuModel.NeoverseV2 })
        {
            using var s = Arm64TestVm.RunningWords(model, 0xD503_30FF);
            var v = s.RunToUcall();
            if (model.Sb == 0) Arm64TestVm.AssertUndefinedAt(v, Arm64Guest.CodeGpa);
            else Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        }
    }

    private const ulong DataGpa = 0x8000;

    /// <summary>
    /// LDAPUR X0, [X1, #8] and STLURH W0, [X1, #2] (FEAT_LRCPC2: ID_AA64ISAR1_EL1.LRCPC = 2 on V1 and V2): the
    /// doubleword at X1 + 8 loaded, its low halfword stored at X1 + 2; UNDEFINED on N1 and N1+PAuth (LRCPC = 1).
    /// </summary>
    [Fact]
    public void Ldapur_and_stlur_run_where_lrcpc_is_2_and_are_undefined_elsewhere()
    {
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.WithPointerAuth, Arm64CpuModel.NeoverseV1, Arm64CpuModel.NeoverseV2 })
        {
            using var s = Arm64TestVm.RunningWords(model, 0xD940_8020 /* ldapur x0, [x1, #8] */, 0x5900_2020 /* stlurh w0, [x1, #2] */);
            s.Host.Write(DataGpa, BitConverter.GetBytes(0x1111_2222_3333_4444UL));
            s.Host.Write(DataGpa + 8, BitConverter.GetBytes(0x8899_AABB_CCDD_EEFFUL));
            var v = s.RunToUcall(v => v.SetOneReg(KvmArm64Regs.X(1), DataGpa));
            if (model.Lrcpc < 2)
            {
                Arm64TestVm.AssertUndefinedAt(v, Arm64Guest.CodeGpa);
                continue;
            }
            Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
            Assert.Equal(0x8899_AABB_CCDD_EEFFUL, v.GetOneReg(KvmArm64Regs.X(0)));
            byte[] stored = new byte[8];
            s.Host.Read(DataGpa, stored);
            Assert.Equal(0x1111_2222_EEFF_4444UL, BitConverter.ToUInt64(stored));
        }
    }

    private const ulong L0 = 0x4000, L1 = 0x5000, L2 = 0x6000;

    /// <summary>
    /// An LDAPUR/STLUR not aligned to its size that crosses a 16-byte boundary takes the alignment fault (EC 0x25, DFSC
    /// 0x21, WnR for the store, FAR = the address) on Normal memory with SCTLR_EL1.A and SCTLR_EL1.nAA clear, where the
    /// same LDUR works: V2 has FEAT_LSE2, and AArch64.UnalignedAccessFaults is then "SCTLR_ELx[].nAA == '0' &amp;&amp;
    /// !AllInAlignedQuantity(address, size, 16)" for acquire-PC/release accesses (Arm64Lse2Tests covers the rest). A
    /// byte access is always aligned. (With the MMU off every data access is Device memory, which faults any unaligned
    /// access anyway.)
    /// </summary>
    [Theory]
    [InlineData(0xD95F_D020u, DataGpa + 0x40 - 3, false)] // ldapur x0, [x1, #-3]
    [InlineData(0x5900_F020u, DataGpa + 0x40 + 15, true)] // stlurh w0, [x1, #15]
    [InlineData(0x9980_D020u, DataGpa + 0x40 + 13, false)] // ldapursw x0, [x1, #13]
    [InlineData(0x1940_1020u, null, false)]               // ldapurb w0, [x1, #1]: runs
    [InlineData(0xF85F_D020u, null, false)]               // ldur x0, [x1, #-3]: runs (no ordering, no check)
    public void A_misaligned_ldapur_or_stlur_takes_the_alignment_fault_on_normal_memory(uint insn, ulong? far, bool write)
    {
        using var s = new Arm64TestVm(a =>
        {
            // T0SZ 16, TG0 4K, EPD1, IPS 40 bits; MAIR Attr0 Normal WB; SCTLR_EL1.M set, .A and .nAA (bit 6, set by KVM's
            // reset value 0x00C50078) clear.
            Arm64MmuSetup.Emit(a, 16 | (1UL << 23) | (2UL << 30) | (2UL << 32), L0, set: Arm64MmuSetup.SctlrM, clear: Arm64MmuSetup.SctlrA | (1UL << 6));
            a.MovImm(A64Register.X(20), 0xDEAD);
            a.MovImm(A64Register.X(1), DataGpa + 0x40);
            ulong resume = Arm64Guest.CodeGpa + (ulong)a.Position + 12;
            a.Movz(A64Register.X(24), (ushort)resume);
            a.Movk(A64Register.X(24), (ushort)(resume >> 16), 16);
            a.Emit(insn);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.NeoverseV2 });
        static ulong Block(ulong oa) => oa | 1 | (1UL << 10);
        s.Host.Write(L0, BitConverter.GetBytes(L1 | 3));
        s.Host.Write(L1, BitConverter.GetBytes(L2 | 3));
        s.Host.Write(L2, BitConverter.GetBytes(Block(0)));
        s.Host.Write(L2 + 64, BitConverter.GetBytes(Block(Arm64Guest.UcallMmioGpa)));
        // The EL1h synchronous vector: X20 = ESR_EL1, X21 = FAR_EL1, resume at X24.
        s.Host.Write(0x200, Arm64Guest.Assemble(a =>
        {
            a.Mrs(A64Register.X(20), KvmArm64SysRegs.Encoding(3, 0, 5, 2, 0));
            a.Mrs(A64Register.X(21), KvmArm64SysRegs.Encoding(3, 0, 6, 0, 0));
            a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 1), A64Register.X(24));
            a.Eret();
        }));
        var v = s.RunToUcall();
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        ulong esr = v.GetOneReg(KvmArm64Regs.X(20));
        if (far is null)
        {
            Assert.Equal(0xDEADUL, esr);
            return;
        }
        Assert.Equal(0x25UL, esr >> 26);
        Assert.Equal(0x21UL, esr & 0x3F);
        Assert.Equal(write, (esr & (1UL << 6)) != 0);
        Assert.Equal(far, v.GetOneReg(KvmArm64Regs.X(21)));
    }

    /// <summary>
    /// They are EL0 instructions (no EL or SCTLR_EL1 control on any of them, unlike MSR DAIFSet): from EL0 they run on
    /// V2 and are UNDEFINED on N1 (taken to EL1 from EL0: VBAR_EL1 + 0x400, EC 0).
    /// </summary>
    [Theory]
    [InlineData(0xD500_401Fu)] // cfinv
    [InlineData(0xD500_405Fu)] // axflag
    [InlineData(0xBA02_042Fu)] // rmif x1, #4, #15
    [InlineData(0x3A00_482Du)] // setf16 w1
    [InlineData(0xD53B_2400u)] // mrs x0, rndr
    [InlineData(0xD503_30FFu)] // sb
    [InlineData(0xD940_8020u)] // ldapur x0, [x1, #8]
    public void They_run_at_el0(uint insn)
    {
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.NeoverseV2 })
        {
            const ulong El0Code = 0x3000;
            using var s = new Arm64TestVm(a =>
            {
                a.MovImm(A64Register.X(0), El0Code);
                a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 1), A64Register.X(0)); // ELR_EL1
                a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 0), A64Register.Xzr);  // SPSR_EL1 = EL0t
                a.Eret();
            }, EmulatorConfig.Arm64() with { Arm64Cpu = model });
            s.Host.Write(El0Code, Arm64Guest.Assemble(a =>
            {
                a.Emit(insn);
                Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
            }));
            // Lower EL using AArch64, synchronous: X20 = ESR_EL1, then "fail".
            s.Host.Write(0x400, Arm64Guest.Assemble(a =>
            {
                a.Mrs(A64Register.X(20), KvmArm64SysRegs.Encoding(3, 0, 5, 2, 0));
                Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
            }));
            var v = s.RunToUcall(v =>
            {
                v.SetOneReg(KvmArm64Regs.X(1), DataGpa);
                v.SetOneReg(KvmArm64Regs.X(20), 0xDEAD);
            });
            if (model == Arm64CpuModel.NeoverseN1)
            {
                Assert.Equal(Arm64Guest.UcallFail, v.GetOneReg(KvmArm64Regs.X(9)));
                Assert.Equal(0UL, v.GetOneReg(KvmArm64Regs.X(20)) >> 26);
                Assert.Equal(El0Code, v.GetOneReg(KvmArm64Regs.ElrEl1));
                continue;
            }
            Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
            Assert.Equal(0xDEADUL, v.GetOneReg(KvmArm64Regs.X(20)));
        }
    }

    /// <summary>
    /// STLUR/LDAPUR on MMIO: a single register without writeback, so the abort has a valid syndrome (ESR_ELx.ISV,
    /// "including those with Acquire/Release semantics") and KVM_RUN exits with KVM_EXIT_MMIO of the access's size.
    /// </summary>
    [Fact]
    public void Stlur_and_ldapur_on_mmio_exit_with_their_size()
    {
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseV2, 0x5900_2020 /* stlurh w0, [x1, #2] */, 0x9980_4020 /* ldapursw x0, [x1, #4] */);
        var v = s.AddVcpu();
        v.SetOneReg(KvmArm64Regs.X(0), 0x1234_5678_9ABC_DEF0);
        v.SetOneReg(KvmArm64Regs.X(1), 0x0200_0000);
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal((0x0200_0002UL, true), (exit.MmioAddress, exit.MmioIsWrite));
        Assert.Equal(new byte[] { 0xF0, 0xDE }, exit.MmioData.ToArray());
        exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal((0x0200_0004UL, false, 4), (exit.MmioAddress, exit.MmioIsWrite, exit.MmioData.Length));
        BitConverter.GetBytes(0x8765_4321u).CopyTo(exit.MmioData);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        Assert.Equal(0xFFFF_FFFF_8765_4321UL, v.GetOneReg(KvmArm64Regs.X(0)));
    }

    /// <summary>
    /// LDAR/STLR (Armv8.0, every preset) likewise: a single-register access with acquire/release semantics has a valid
    /// syndrome (ESR_ELx.ISV), so MMIO exits KVM_EXIT_MMIO with its size — before session 27 they stopped as
    /// KVM_EXIT_ARM_NISV / ENOSYS. The loaded value lands in Rt, zero-extended.
    /// </summary>
    [Fact]
    public void Stlr_and_ldar_on_mmio_exit_with_their_size()
    {
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseN1, 0x889F_FC20 /* stlr w0, [x1] */, 0x48DF_FC22 /* ldarh w2, [x1] */,
            0xC8DF_FC20 /* ldar x0, [x1] */);
        var v = s.AddVcpu();
        v.SetOneReg(KvmArm64Regs.X(0), 0x1234_5678_9ABC_DEF0);
        v.SetOneReg(KvmArm64Regs.X(1), 0x0200_0010);
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal((0x0200_0010UL, true), (exit.MmioAddress, exit.MmioIsWrite));
        Assert.Equal(new byte[] { 0xF0, 0xDE, 0xBC, 0x9A }, exit.MmioData.ToArray());
        exit = v.RunBounded();
        Assert.Equal((KvmExitReason.KVM_EXIT_MMIO, false, 2), (exit.Reason, exit.MmioIsWrite, exit.MmioData.Length));
        BitConverter.GetBytes((ushort)0xBEEF).CopyTo(exit.MmioData);
        exit = v.RunBounded();
        Assert.Equal((KvmExitReason.KVM_EXIT_MMIO, false, 8), (exit.Reason, exit.MmioIsWrite, exit.MmioData.Length));
        BitConverter.GetBytes(0x0102_0304_0506_0708UL).CopyTo(exit.MmioData);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        Assert.Equal(0xBEEFUL, v.GetOneReg(KvmArm64Regs.X(2)));
        Assert.Equal(0x0102_0304_0506_0708UL, v.GetOneReg(KvmArm64Regs.X(0)));
    }
}
