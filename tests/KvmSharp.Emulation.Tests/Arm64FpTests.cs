// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.A64SimdEncoder;
using static KvmSharp.Emulation.Tests.Arm64SimdTests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The A64 interpreter's scalar floating point (results, NZCV, FPSR cumulative flags, FPCR.DN/FZ), the CPACR_EL1.FPEN
/// trap (EC 0x07) and SIMD&amp;FP accesses to MMIO (no valid ISV). Emulator-only (the host is x86); the Arm ARM's
/// pseudocode (FPAdd, FPMul, FPDiv, FPCompare, FPToFixed, FPRoundBase, AArch64.CheckFPAdvSIMDEnabled) is the oracle,
/// and IEEE 754 round-to-nearest-even (.NET double) gives the expected values.
/// </summary>
public class Arm64FpTests
{
    private const uint Ioc = 1, Dzc = 2, Ofc = 4, Ufc = 8, Ixc = 16, Idc = 128;
    private const ulong DefaultNan = 0x7FF8_0000_0000_0000;

    private static ulong Bits(double d) => BitConverter.DoubleToUInt64Bits(d);

    /// <summary>
    /// d0 = <paramref name="a"/>, d1 = <paramref name="b"/> (FMOV from x2/x3), FPCR = <paramref name="fpcr"/>, FPSR = 0,
    /// then <paramref name="insn"/>; returns d2, x5, NZCV (MRS into x6) and FPSR.
    /// </summary>
    private static (ulong D2, ulong X5, ulong Nzcv, uint Fpsr) RunFp(ulong a, ulong b, uint insn, uint fpcr = 0)
    {
        using var s = RunToDone(g =>
        {
            g.MovImm(X(2), a);
            g.MovImm(X(3), b);
            g.MovImm(X(4), fpcr);
            g.Msr(FpcrReg, X(4));
            g.Msr(FpsrReg, Xzr);
            g.Emit(FpInt(sf: true, D, rmode: 0, opcode: 7, rd: 0, rn: 2)); // fmov d0, x2
            g.Emit(FpInt(sf: true, D, rmode: 0, opcode: 7, rd: 1, rn: 3)); // fmov d1, x3
            g.Emit(insn);
            g.Mrs(X(6), Nzcv);
        });
        var v = s.Vcpus[0];
        return ((ulong)V(v, 2), v.GetX(5), v.GetX(6), Fpsr(v));
    }

    [Fact]
    public void Scalar_double_and_single_arithmetic_conversions_and_compares()
    {
        // C7.2 FMOV (immediate, general), FADD/FSUB/FMUL/FDIV/FSQRT/FMADD/FNMUL/FNEG/FABS, FCVT, SCVTF, FCVTZS/ZU, FCMP, FCSEL.
        using var s = RunToDone(a =>
        {
            a.Emit(FmovImm(D, rd: 0, imm8: 0x78));                              // fmov d0, #1.5
            a.MovImm(X(2), Bits(0.1));
            a.Emit(FpInt(sf: true, D, rmode: 0, opcode: 7, rd: 1, rn: 2));      // fmov d1, x2
            a.Emit(Fp2(D, 0b0010, rd: 2, rn: 0, rm: 1));                         // fadd d2, d0, d1
            a.Emit(Fp2(D, 0b0011, rd: 3, rn: 0, rm: 1));                         // fsub d3, d0, d1
            a.Emit(Fp2(D, 0b0000, rd: 4, rn: 0, rm: 1));                         // fmul d4, d0, d1
            a.Emit(Fp2(D, 0b0001, rd: 5, rn: 0, rm: 1));                         // fdiv d5, d0, d1
            a.Emit(Fp1(D, 3, rd: 6, rn: 0));                                     // fsqrt d6, d0
            a.Emit(Fp3(D, o1: false, o0: false, rd: 7, rn: 0, rm: 1, ra: 0));    // fmadd d7, d0, d1, d0
            a.Emit(Fp2(D, 0b1000, rd: 8, rn: 0, rm: 1));                         // fnmul d8, d0, d1
            a.Emit(Fp1(D, 2, rd: 9, rn: 0));                                     // fneg d9, d0
            a.Emit(Fp1(D, 1, rd: 10, rn: 9));                                    // fabs d10, d9
            a.Emit(Fp1(D, 4, rd: 11, rn: 1));                                    // fcvt s11, d1
            a.Emit(Fp2(S, 0b0010, rd: 12, rn: 11, rm: 11));                      // fadd s12, s11, s11
            a.MovImm(X(3), unchecked((ulong)-7L));
            a.Emit(FpInt(sf: true, D, rmode: 0, opcode: 2, rd: 13, rn: 3));      // scvtf d13, x3
            a.Emit(FpInt(sf: true, D, rmode: 3, opcode: 0, rd: 4, rn: 5));       // fcvtzs x4, d5
            a.Emit(FpInt(sf: false, S, rmode: 3, opcode: 1, rd: 5, rn: 12));     // fcvtzu w5, s12
            a.Emit(Fp1(S, 5, rd: 15, rn: 12));                                   // fcvt d15, s12
            a.Emit(Fcmp(D, rn: 0, rm: 1));                                       // fcmp d0, d1
            a.Mrs(X(6), Nzcv);
            a.Emit(Fcsel(D, rd: 14, rn: 0, rm: 1, cond: 0b1100));                // fcsel d14, d0, d1, gt
            a.Emit(Fcmp(D, rn: 9, rm: 0, zero: true));                           // fcmp d9, #0.0
            a.Mrs(X(7), Nzcv);
            a.Emit(FpInt(sf: true, D, rmode: 0, opcode: 6, rd: 8, rn: 7));       // fmov x8, d7
        });
        var v = s.Vcpus[0];
        double x = 1.5, y = 0.1;
        float f = (float)y;
        Assert.Equal(Bits(x), (ulong)V(v, 0));
        Assert.Equal(Bits(x + y), (ulong)V(v, 2));
        Assert.Equal(Bits(x - y), (ulong)V(v, 3));
        Assert.Equal(Bits(x * y), (ulong)V(v, 4));
        Assert.Equal(Bits(x / y), (ulong)V(v, 5));
        Assert.Equal(Bits(Math.Sqrt(x)), (ulong)V(v, 6));
        Assert.Equal(Bits(Math.FusedMultiplyAdd(x, y, x)), (ulong)V(v, 7));
        Assert.Equal(Bits(-(x * y)), (ulong)V(v, 8));
        Assert.Equal(Bits(-x), (ulong)V(v, 9));
        Assert.Equal(Bits(x), (ulong)V(v, 10));
        // A scalar write zeroes the rest of the V register (S: bits 127:32).
        Assert.Equal((UInt128)BitConverter.SingleToUInt32Bits(f), V(v, 11));
        Assert.Equal((UInt128)BitConverter.SingleToUInt32Bits(f + f), V(v, 12));
        Assert.Equal(Bits(-7.0), (ulong)V(v, 13));
        Assert.Equal((ulong)(long)Math.Truncate(x / y), v.GetX(4));
        Assert.Equal((ulong)(uint)Math.Truncate(f + f), v.GetX(5));
        Assert.Equal(Bits(f + f), (ulong)V(v, 15));
        Assert.Equal(0b0010UL << 28, v.GetX(6));      // greater: C
        Assert.Equal(Bits(x), (ulong)V(v, 14));       // gt held
        Assert.Equal(0b1000UL << 28, v.GetX(7));      // -1.5 < 0: N
        Assert.Equal(Bits(Math.FusedMultiplyAdd(x, y, x)), v.GetX(8));
    }

    [Fact]
    public void Inexact_division_sets_ixc_only()
    {
        var r = RunFp(Bits(1.0), Bits(3.0), Fp2(D, 0b0001, rd: 2, rn: 0, rm: 1)); // fdiv d2, d0, d1
        Assert.Equal(Bits(1.0 / 3.0), r.D2);
        Assert.Equal(Ixc, r.Fpsr);
    }

    [Fact]
    public void Exact_addition_sets_no_flag()
    {
        var r = RunFp(Bits(1.0), Bits(2.0), Fp2(D, 0b0010, rd: 2, rn: 0, rm: 1)); // fadd d2, d0, d1
        Assert.Equal(Bits(3.0), r.D2);
        Assert.Equal(0u, r.Fpsr);
    }

    [Fact]
    public void Division_by_zero_gives_infinity_and_dzc()
    {
        var r = RunFp(Bits(-1.0), Bits(0.0), Fp2(D, 0b0001, rd: 2, rn: 0, rm: 1)); // fdiv d2, d0, d1
        Assert.Equal(Bits(double.NegativeInfinity), r.D2);
        Assert.Equal(Dzc, r.Fpsr);
    }

    [Fact]
    public void Zero_divided_by_zero_gives_the_positive_default_nan_and_ioc()
    {
        // FPDefaultNaN is positive (x86's "indefinite" is negative: the emulator must not leak it).
        var r = RunFp(Bits(0.0), Bits(0.0), Fp2(D, 0b0001, rd: 2, rn: 0, rm: 1));
        Assert.Equal(DefaultNan, r.D2);
        Assert.Equal(Ioc, r.Fpsr);
    }

    [Fact]
    public void Overflow_gives_infinity_with_ofc_and_ixc()
    {
        var r = RunFp(Bits(double.MaxValue), Bits(2.0), Fp2(D, 0b0000, rd: 2, rn: 0, rm: 1)); // fmul
        Assert.Equal(Bits(double.PositiveInfinity), r.D2);
        Assert.Equal(Ofc | Ixc, r.Fpsr);
    }

    [Fact]
    public void A_signalling_nan_operand_is_quietened_with_ioc_and_the_first_signalling_nan_wins()
    {
        // FPProcessNaNs: a signalling NaN in op2 beats a quiet NaN in op1.
        const ulong snan = 0x7FF0_0000_0000_1234, qnan = 0xFFF8_0000_0000_0042;
        var r = RunFp(qnan, snan, Fp2(D, 0b0010, rd: 2, rn: 0, rm: 1));
        Assert.Equal(snan | (1UL << 51), r.D2);
        Assert.Equal(Ioc, r.Fpsr);
        // FPCR.DN (bit 25): the default NaN instead.
        r = RunFp(qnan, snan, Fp2(D, 0b0010, rd: 2, rn: 0, rm: 1), fpcr: 1u << 25);
        Assert.Equal(DefaultNan, r.D2);
        Assert.Equal(Ioc, r.Fpsr);
        // Two quiet NaNs: the first operand's, no flag.
        r = RunFp(qnan, DefaultNan, Fp2(D, 0b0000, rd: 2, rn: 0, rm: 1));
        Assert.Equal(qnan, r.D2);
        Assert.Equal(0u, r.Fpsr);
    }

    [Fact]
    public void Fcmp_with_a_quiet_nan_is_unordered_and_only_fcmpe_signals_ioc()
    {
        var r = RunFp(Bits(1.0), DefaultNan, Fcmp(D, rn: 0, rm: 1));
        Assert.Equal(0b0011UL << 28, r.Nzcv);
        Assert.Equal(0u, r.Fpsr);
        r = RunFp(Bits(1.0), DefaultNan, Fcmp(D, rn: 0, rm: 1, signaling: true));
        Assert.Equal(0b0011UL << 28, r.Nzcv);
        Assert.Equal(Ioc, r.Fpsr);
        r = RunFp(Bits(2.0), Bits(2.0), Fcmp(D, rn: 0, rm: 1, signaling: true));
        Assert.Equal(0b0110UL << 28, r.Nzcv);
        Assert.Equal(0u, r.Fpsr);
    }

    [Fact]
    public void Fcvtzs_saturates_out_of_range_and_nan_with_ioc_and_truncation_sets_ixc()
    {
        uint fcvtzsW = FpInt(sf: false, D, rmode: 3, opcode: 0, rd: 5, rn: 0); // fcvtzs w5, d0
        var r = RunFp(Bits(1e10), 0, fcvtzsW);
        Assert.Equal(0x7FFF_FFFFUL, r.X5);
        Assert.Equal(Ioc, r.Fpsr);
        r = RunFp(Bits(-1e10), 0, fcvtzsW);
        Assert.Equal(0x8000_0000UL, r.X5);
        r = RunFp(DefaultNan, 0, fcvtzsW);
        Assert.Equal(0UL, r.X5);
        Assert.Equal(Ioc, r.Fpsr);
        r = RunFp(Bits(-2.75), 0, fcvtzsW);
        Assert.Equal(0xFFFF_FFFEUL, r.X5);
        Assert.Equal(Ixc, r.Fpsr);
        // FCVTZU of a negative value saturates to 0.
        r = RunFp(Bits(-3.0), 0, FpInt(sf: true, D, rmode: 3, opcode: 1, rd: 5, rn: 0));
        Assert.Equal(0UL, r.X5);
        Assert.Equal(Ioc, r.Fpsr);
    }

    [Fact]
    public void Flush_to_zero_flushes_denormal_inputs_with_idc_and_tiny_results_with_ufc()
    {
        const uint fz = 1u << 24;
        // A denormal input is a zero: 0 + denormal = +0 exactly, IDC.
        var r = RunFp(Bits(0.0), 1, Fp2(D, 0b0010, rd: 2, rn: 0, rm: 1), fz);
        Assert.Equal(0UL, r.D2);
        Assert.Equal(Idc, r.Fpsr);
        // A tiny product is flushed to a zero of its sign with UFC alone (no IXC).
        r = RunFp(Bits(-1e-200), Bits(1e-200), Fp2(D, 0b0000, rd: 2, rn: 0, rm: 1), fz);
        Assert.Equal(1UL << 63, r.D2);
        Assert.Equal(Ufc, r.Fpsr);
        // Without FZ the same product underflows to a denormal-or-zero result: inexact and tiny, UFC | IXC.
        r = RunFp(Bits(1e-300), Bits(1e-300), Fp2(D, 0b0000, rd: 2, rn: 0, rm: 1));
        Assert.Equal(Bits(1e-300 * 1e-300), r.D2);
        Assert.Equal(Ufc | Ixc, r.Fpsr);
    }

    [Fact]
    public void Fpcr_keeps_only_its_implemented_fields_and_fpsr_its_flags()
    {
        using var s = RunToDone(a =>
        {
            a.MovImm(X(2), ulong.MaxValue);
            a.Msr(FpcrReg, X(2));
            a.Msr(FpsrReg, X(2));
            a.Mrs(X(3), FpcrReg);
            a.Mrs(X(4), FpsrReg);
        });
        var v = s.Vcpus[0];
        Assert.Equal(0x07C8_0000UL, v.GetX(3)); // AHP, DN, FZ, RMode, FZ16
        Assert.Equal(0x0800_009FUL, v.GetX(4)); // QC, IDC, IXC, UFC, OFC, DZC, IOC
    }

    private static (ulong Esr, ulong Elr, ulong X7) RunTrapped(Action<A64Assembler> program, Action<Arm64TestVm>? setUp = null)
    {
        // The vector handlers (current EL with SP_ELx at 0x200, lower EL at 0x400): ESR_EL1 → x20, ELR_EL1 → x21.
        static void Handler(A64Assembler h)
        {
            h.Mrs(X(20), KvmArm64SysRegs.Encoding(3, 0, 5, 2, 0));
            h.Mrs(X(21), KvmArm64SysRegs.Encoding(3, 0, 4, 0, 1));
            Arm64Guest.Ucall(h, Arm64Guest.UcallFail);
        }
        using var s = new Arm64TestVm(program);
        s.Host.Write(Arm64Guest.SyncVectorGpa, Arm64Guest.Assemble(Handler));
        s.Host.Write(0x400, Arm64Guest.Assemble(Handler));
        setUp?.Invoke(s);
        var v = s.AddVcpu();
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallFail, BitConverter.ToUInt64(exit.MmioData));
        return (v.GetX(20), v.GetX(21), v.GetX(7));
    }

    // ESR_EL1: EC 0x07 (bits 31:26), IL, ISS CV = 1 and COND = 0b1110 (ConditionSyndrome for AArch64).
    private const ulong FpTrapEsr = (0x07UL << 26) | (1UL << 25) | (1UL << 24) | (0xEUL << 20);

    [Fact]
    public void With_fpen_at_reset_an_fp_instruction_at_el1_takes_ec_0x07_at_the_instruction()
    {
        // CPACR_EL1 resets to 0 (FPEN 0b00 traps EL1 and EL0): AArch64.CheckFPAdvSIMDEnabled → EC 0x07, ELR = the insn.
        var (esr, elr, _) = RunTrapped(a =>
        {
            a.Nop();
            a.Emit(Fp2(D, 0b0010, rd: 0, rn: 0, rm: 0)); // fadd d0, d0, d0 at CodeGpa + 4
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        Assert.Equal(FpTrapEsr, esr);
        Assert.Equal(Arm64Guest.CodeGpa + 4, elr);
    }

    [Fact]
    public void A_simd_load_and_mrs_fpcr_trap_too_before_any_memory_access()
    {
        uint ldrQ = LdrStrUnsigned(load: true, scale: 4, rt: 0, rn: 2, offset: 0); // ldr q0, [x2]
        void Program(A64Assembler a)
        {
            a.MovImm(X(2), 0x0200_0000); // would be MMIO: the trap comes first
            a.Emit(ldrQ);
        }
        var (esr, elr, _) = RunTrapped(Program);
        Assert.Equal(FpTrapEsr, esr);
        byte[] code = Arm64Guest.Assemble(Program);
        Assert.Equal(ldrQ, BitConverter.ToUInt32(code, (int)(elr - Arm64Guest.CodeGpa)));
        var (esr2, _, _) = RunTrapped(a => a.Mrs(X(3), FpcrReg));
        Assert.Equal(FpTrapEsr, esr2);
    }

    [Fact]
    public void Fpen_0b01_allows_el1_and_traps_el0()
    {
        // FPEN 0b01: EL1 runs FP (x7 = FPCR via MRS), then ERET to EL0t at 0x3000 where MRS FPCR traps to 0x400.
        var (esr, elr, _) = RunTrapped(a =>
        {
            SetFpen(a, 1);
            a.Emit(FmovImm(D, rd: 0, imm8: 0x70)); // fmov d0, #1.0 at EL1: no trap
            a.Mrs(X(7), FpcrReg);
            a.MovImm(X(2), 0x3000);
            a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 1), X(2)); // ELR_EL1
            a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 0), Xzr);  // SPSR_EL1 = EL0t
            a.Eret();
        }, s => s.Host.Write(0x3000, Arm64Guest.Assemble(e => e.Mrs(X(3), FpcrReg))));
        Assert.Equal(FpTrapEsr, esr);
        Assert.Equal(0x3000UL, elr);
    }

    private const ulong MmioGpa = 0x0200_0010;

    private static void StoreQToMmio(A64Assembler a)
    {
        SetFpen(a, 3);
        a.MovImm(X(2), MmioGpa);
        a.Emit(LdrStrUnsigned(load: false, scale: 4, rt: 0, rn: 2, offset: 0)); // str q0, [x2]
        Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
    }

    [Fact]
    public void A_simd_store_to_mmio_has_no_valid_syndrome_enosys_without_the_cap_and_arm_nisv_with_it()
    {
        // The Arm ARM gives ISV = 1 only for single general-purpose register accesses; mmio.c io_mem_abort then asks
        // userspace (KVM_EXIT_ARM_NISV) with KVM_CAP_ARM_NISV_TO_USER, else fails KVM_RUN with -ENOSYS.
        using (var s = new Arm64TestVm(StoreQToMmio))
        {
            var v = s.AddVcpu();
            Assert.Equal(Errno.ENOSYS, Assert.Throws<KvmException>(() => v.RunBounded()).Errno);
        }
        using (var s = new Arm64TestVm(StoreQToMmio))
        {
            s.Vm.EnableCapability(KvmArm64Constants.KVM_CAP_ARM_NISV_TO_USER);
            var v = s.AddVcpu();
            ulong before = v.GetPc();
            var exit = v.RunBounded();
            Assert.True(exit.IsArmNisv, exit.ToString());
            Assert.Equal((1UL << 6) | 0x07, exit.ArmNisvEsrIss); // WnR | translation fault level 3
            Assert.Equal(MmioGpa, exit.ArmNisvFaultIpa);
            Assert.NotEqual(before, v.GetPc());
            byte[] code = Arm64Guest.Assemble(StoreQToMmio);
            Assert.Equal(LdrStrUnsigned(load: false, scale: 4, rt: 0, rn: 2, offset: 0),
                         BitConverter.ToUInt32(code, (int)(v.GetPc() - Arm64Guest.CodeGpa)));
        }
    }

    [Fact]
    public void A_vector_fp_instruction_outside_the_subset_is_an_emulation_failure()
    {
        // FSCALE v0.4s, v0.4s, v0.4s (FEAT_FP8, Arm ARM C7.2 FSCALE: 0 Q 1 01110 1 sz 1 Rm 111111 Rn Rd = 0x6ea0fc00):
        // Advanced SIMD three same, U 1, size 1x, opcode 11111 — a slot the interpreter leaves to Unsupported
        // (A64Interpreter.SimdFp.cs), and no emulated preset offers FEAT_FP8. aarch64-linux-gnu-objdump 2.40 (older than
        // FEAT_FP8) prints ".inst 0x6ea0fc00 ; undefined". (FRECPS until session 26 and FCADD in session 27 are emulated now.)
        const uint fscale = 0x6EA0_FC00;
        using var s = new Arm64TestVm(a =>
        {
            SetFpen(a, 3);
            a.Emit(fscale);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.NeoverseV2 });
        var v = s.AddVcpu();
        Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, v.RunBounded().Reason);
    }

    [Theory]
    [InlineData(8u, -2.5, -2.0)]   // FRINTN: ties to even
    [InlineData(9u, -2.5, -2.0)]   // FRINTP: toward +∞
    [InlineData(10u, -2.5, -3.0)]  // FRINTM: toward −∞
    [InlineData(11u, -2.5, -2.0)]  // FRINTZ: toward zero
    [InlineData(12u, -2.5, -3.0)]  // FRINTA: ties away
    [InlineData(11u, -0.5, -0.0)]  // a zero result keeps the operand's sign
    public void Frint_rounds_in_its_own_mode_without_ixc(uint opcode, double input, double expected)
    {
        // C7.2 FRINT<r> (scalar): FPRoundInt(op, FPCR, rounding, exact = FALSE).
        var r = RunFp(Bits(input), 0, Fp1(D, opcode, rd: 2, rn: 0));
        Assert.Equal(Bits(expected), r.D2);
        Assert.Equal(0u, r.Fpsr);
    }

    [Fact]
    public void Frintx_uses_fpcr_rmode_and_signals_ixc()
    {
        // FPCR.RMode 0b10 (bits 23:22, round toward −∞): FRINTX 2.5 → 2.0 with IXC; FRINTI the same without IXC.
        var r = RunFp(Bits(2.5), 0, Fp1(D, 14, rd: 2, rn: 0), fpcr: 2u << 22);
        Assert.Equal(Bits(2.0), r.D2);
        Assert.Equal(Ixc, r.Fpsr);
        r = RunFp(Bits(2.5), 0, Fp1(D, 15, rd: 2, rn: 0), fpcr: 2u << 22);
        Assert.Equal(Bits(2.0), r.D2);
        Assert.Equal(0u, r.Fpsr);
    }

    [Fact]
    public void Directed_rounding_rounds_inexact_results_and_a_subnormal_double_product_is_an_emulation_failure()
    {
        // FPCR.RMode = RP (0b01): 1/3 rounds up to 0x3FD5555555555556 with IXC; 1/4 is exact in every mode.
        var r = RunFp(Bits(1.0), Bits(3.0), Fp2(D, 0b0001, rd: 2, rn: 0, rm: 1), fpcr: 1u << 22);
        Assert.Equal(0x3FD5_5555_5555_5556UL, r.D2);
        Assert.Equal(Ixc, r.Fpsr);
        Assert.Equal(Bits(0.25), RunFp(Bits(1.0), Bits(4.0), Fp2(D, 0b0001, rd: 2, rn: 0, rm: 1), fpcr: 3u << 22).D2);
        // [D] 2^-1000 × 2^-60 = 2^-1060 (subnormal): its FMA residual could have underflowed, so RZ is refused.
        using var s = new Arm64TestVm(a =>
        {
            SetFpen(a, 3);
            a.MovImm(X(4), 3u << 22);
            a.Msr(FpcrReg, X(4));
            a.MovImm(X(2), Bits(Math.ScaleB(1.0, -1000)));
            a.MovImm(X(3), Bits(Math.ScaleB(1.0, -60)));
            a.Emit(FpInt(sf: true, D, rmode: 0, opcode: 7, rd: 0, rn: 2)); // fmov d0, x2
            a.Emit(FpInt(sf: true, D, rmode: 0, opcode: 7, rd: 1, rn: 3)); // fmov d1, x3
            a.Emit(Fp2(D, 0b0000, rd: 2, rn: 0, rm: 1));                  // fmul d2, d0, d1
        });
        Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, s.AddVcpu().RunBounded().Reason);
    }
}
