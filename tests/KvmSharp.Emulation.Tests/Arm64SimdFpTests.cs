// SPDX-License-Identifier: MIT
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.A64SimdEncoder;
using static KvmSharp.Emulation.Tests.Arm64SimdTests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The A64 interpreter's Advanced SIMD floating point (vector arithmetic, compares, pairwise and across-lanes
/// reductions, vector and fixed-point conversions, half-precision FCVT). Emulator-only (the host is x86); the Arm ARM
/// pseudocode (FPAdd, FPMulAdd, FPCompareEQ/GE/GT, FPToFixed, FixedToFP, FPConvert) is the oracle, with .NET's IEEE 754
/// round-to-nearest-even arithmetic giving the expected values.
/// </summary>
public class Arm64SimdFpTests
{
    private const uint Ioc = 1, Ofc = 4, Ufc = 8, Ixc = 16;

    internal static UInt128 F4(float a, float b, float c, float d) =>
        U128(((ulong)BitConverter.SingleToUInt32Bits(d) << 32) | BitConverter.SingleToUInt32Bits(c),
             ((ulong)BitConverter.SingleToUInt32Bits(b) << 32) | BitConverter.SingleToUInt32Bits(a));

    internal static UInt128 D2(double a, double b) => U128(BitConverter.DoubleToUInt64Bits(b), BitConverter.DoubleToUInt64Bits(a));

    /// <summary>
    /// v0, v1, … = <paramref name="inputs"/> (LDR Qn from <see cref="Arm64SimdTests.Src"/>), FPCR = <paramref name="fpcr"/>,
    /// FPSR = 0, then <paramref name="body"/>. The caller disposes the VM.
    /// </summary>
    internal static Arm64TestVm RunVectors(UInt128[] inputs, Action<A64Assembler> body, uint fpcr = 0, Action<Arm64TestVm>? setUp = null) =>
        RunToDone(a =>
        {
            a.MovImm(X(2), Src);
            for (int i = 0; i < inputs.Length; i++)
                a.Emit(LdrStrUnsigned(load: true, scale: 4, rt: i, rn: 2, offset: 16 * i)); // ldr qi, [x2, #16*i]
            a.MovImm(X(4), fpcr);
            a.Msr(FpcrReg, X(4));
            a.Msr(FpsrReg, Xzr);
            body(a);
        }, vm =>
        {
            byte[] image = new byte[16 * inputs.Length];
            for (int i = 0; i < inputs.Length; i++)
            {
                BitConverter.TryWriteBytes(image.AsSpan(16 * i), (ulong)inputs[i]);
                BitConverter.TryWriteBytes(image.AsSpan(16 * i + 8), (ulong)(inputs[i] >> 64));
            }
            vm.Host.Write(Src, image);
            setUp?.Invoke(vm);
        });

    [Fact]
    public void Vector_single_arithmetic_matches_ieee_round_to_nearest()
    {
        // C7.2 FADD, FSUB, FMUL, FDIV, FMLA, FMLS, FABD, FMAX/FMIN, FMAXNM (vector, .4s): FPAdd/FPMul/FPDiv/FPMulAdd per lane.
        float[] a = [1.5f, -2f, 0.1f, 1e30f], b = [0.3f, 4f, 3f, 1e5f], c = [10f, 20f, 30f, 40f];
        using var s = RunVectors([F4(a[0], a[1], a[2], a[3]), F4(b[0], b[1], b[2], b[3]), F4(c[0], c[1], c[2], c[3])], g =>
        {
            g.Emit(VecFp3(q: true, u: false, a: false, dbl: false, 0x1A, rd: 3, rn: 0, rm: 1)); // fadd v3.4s, v0.4s, v1.4s
            g.Emit(VecFp3(q: true, u: false, a: true, dbl: false, 0x1A, rd: 4, rn: 0, rm: 1));  // fsub v4.4s, v0.4s, v1.4s
            g.Emit(VecFp3(q: true, u: true, a: false, dbl: false, 0x1B, rd: 5, rn: 0, rm: 1));  // fmul v5.4s, v0.4s, v1.4s
            g.Emit(VecFp3(q: true, u: true, a: false, dbl: false, 0x1F, rd: 6, rn: 0, rm: 1));  // fdiv v6.4s, v0.4s, v1.4s
            g.Emit(VecFp3(q: true, u: false, a: false, dbl: false, 0x19, rd: 2, rn: 0, rm: 1)); // fmla v2.4s, v0.4s, v1.4s
            g.Emit(VecFp3(q: true, u: true, a: true, dbl: false, 0x1A, rd: 7, rn: 1, rm: 0));   // fabd v7.4s, v1.4s, v0.4s
            g.Emit(VecFp3(q: false, u: false, a: false, dbl: false, 0x1E, rd: 8, rn: 0, rm: 1)); // fmax v8.2s, v0.2s, v1.2s
            g.Emit(VecFp3(q: true, u: false, a: true, dbl: false, 0x1E, rd: 9, rn: 0, rm: 1));  // fmin v9.4s, v0.4s, v1.4s
        });
        var v = s.Vcpus[0];
        Assert.Equal(F4(a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]), V(v, 3));
        Assert.Equal(F4(a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]), V(v, 4));
        Assert.Equal(F4(a[0] * b[0], a[1] * b[1], a[2] * b[2], a[3] * b[3]), V(v, 5));
        Assert.Equal(F4(a[0] / b[0], a[1] / b[1], a[2] / b[2], a[3] / b[3]), V(v, 6));
        Assert.Equal(F4(MathF.FusedMultiplyAdd(a[0], b[0], c[0]), MathF.FusedMultiplyAdd(a[1], b[1], c[1]),
                        MathF.FusedMultiplyAdd(a[2], b[2], c[2]), MathF.FusedMultiplyAdd(a[3], b[3], c[3])), V(v, 2));
        Assert.Equal(F4(MathF.Abs(b[0] - a[0]), MathF.Abs(b[1] - a[1]), MathF.Abs(b[2] - a[2]), MathF.Abs(b[3] - a[3])), V(v, 7));
        Assert.Equal(F4(1.5f, 4f, 0, 0), V(v, 8)); // the 64-bit form zeroes the top half
        Assert.Equal(F4(0.3f, -2f, 0.1f, 1e5f), V(v, 9));
        Assert.Equal(Ixc, Fpsr(v)); // 0.1 + 3 and friends are inexact; nothing else is raised
    }

    [Fact]
    public void Vector_double_arithmetic_sqrt_abs_neg_and_pairwise_add()
    {
        // C7.2 FADD/FDIV/FMULX (vector, .2d), FSQRT/FABS/FNEG (vector), FADDP (vector and scalar), FMAXNMP.
        using var s = RunVectors([D2(2.0, -9.0), D2(0.1, 3.0)], g =>
        {
            g.Emit(VecFp3(q: true, u: true, a: false, dbl: true, 0x1F, rd: 2, rn: 0, rm: 1));   // fdiv v2.2d, v0.2d, v1.2d
            g.Emit(VecFp2(q: true, u: true, a: true, dbl: true, 0x1F, rd: 3, rn: 1));           // fsqrt v3.2d, v1.2d
            g.Emit(VecFp2(q: true, u: false, a: true, dbl: true, 0x0F, rd: 4, rn: 0));          // fabs v4.2d, v0.2d
            g.Emit(VecFp2(q: true, u: true, a: true, dbl: true, 0x0F, rd: 5, rn: 0));           // fneg v5.2d, v0.2d
            g.Emit(VecFp3(q: true, u: true, a: false, dbl: true, 0x1A, rd: 6, rn: 0, rm: 1));   // faddp v6.2d, v0.2d, v1.2d
            g.Emit(ScalarPairwise(u: true, size: 1, opcode: 0x0D, rd: 7, rn: 1));              // faddp d7, v1.2d
            g.Emit(VecFp3(q: true, u: true, a: false, dbl: true, 0x18, rd: 8, rn: 0, rm: 1));   // fmaxnmp v8.2d, v0.2d, v1.2d
            g.Emit(ScalarPairwise(u: false, size: 3, opcode: 0x1B, rd: 9, rn: 0));             // addp d9, v0.2d
        });
        var v = s.Vcpus[0];
        Assert.Equal(D2(2.0 / 0.1, -9.0 / 3.0), V(v, 2));
        Assert.Equal(D2(Math.Sqrt(0.1), Math.Sqrt(3.0)), V(v, 3));
        Assert.Equal(D2(2.0, 9.0), V(v, 4));
        Assert.Equal(D2(-2.0, 9.0), V(v, 5));
        Assert.Equal(D2(2.0 + -9.0, 0.1 + 3.0), V(v, 6));
        Assert.Equal((UInt128)BitConverter.DoubleToUInt64Bits(0.1 + 3.0), V(v, 7));
        Assert.Equal(D2(2.0, 3.0), V(v, 8));
        Assert.Equal((UInt128)(BitConverter.DoubleToUInt64Bits(2.0) + BitConverter.DoubleToUInt64Bits(-9.0)), V(v, 9));
    }

    [Fact]
    public void Vector_compares_give_lane_masks_and_signal_only_as_fpcompare_says()
    {
        // C7.2 FCMEQ/FCMGE/FCMGT (register), FCMGT/FCMLT/FCMEQ (zero), FACGT: a NaN lane is false; FCMEQ raises IOC only
        // for a signalling NaN, FCMGE/FCMGT for any NaN (FPCompareEQ / FPCompareGE / FPCompareGT).
        float qnan = float.NaN;
        using var s = RunVectors([F4(1f, -2f, qnan, 0f), F4(1f, 3f, 1f, -0f)], g =>
        {
            g.Emit(VecFp3(q: true, u: false, a: false, dbl: false, 0x1C, rd: 2, rn: 0, rm: 1));  // fcmeq v2.4s, v0.4s, v1.4s
            g.Mrs(X(20), FpsrReg);
            g.Emit(VecFp3(q: true, u: true, a: false, dbl: false, 0x1C, rd: 3, rn: 0, rm: 1));   // fcmge v3.4s, v0.4s, v1.4s
            g.Mrs(X(21), FpsrReg);
            g.Emit(VecFp3(q: true, u: true, a: true, dbl: false, 0x1C, rd: 4, rn: 1, rm: 0));    // fcmgt v4.4s, v1.4s, v0.4s
            g.Emit(VecFp2(q: true, u: false, a: true, dbl: false, 0x0C, rd: 5, rn: 0));          // fcmgt v5.4s, v0.4s, #0.0
            g.Emit(VecFp2(q: true, u: false, a: true, dbl: false, 0x0E, rd: 6, rn: 0));          // fcmlt v6.4s, v0.4s, #0.0
            g.Emit(VecFp2(q: true, u: false, a: true, dbl: false, 0x0D, rd: 7, rn: 1));          // fcmeq v7.4s, v1.4s, #0.0
            g.Emit(VecFp3(q: true, u: true, a: true, dbl: false, 0x1D, rd: 8, rn: 0, rm: 1));    // facgt v8.4s, v0.4s, v1.4s
        });
        var v = s.Vcpus[0];
        const uint T = 0xFFFF_FFFF;
        static UInt128 M(uint a, uint b, uint c, uint d) => U128(((ulong)d << 32) | c, ((ulong)b << 32) | a);
        Assert.Equal(M(T, 0, 0, T), V(v, 2));
        Assert.Equal(0UL, v.GetX(20));               // quiet NaN: FCMEQ is silent
        Assert.Equal(M(T, 0, 0, T), V(v, 3));
        Assert.Equal((ulong)Ioc, v.GetX(21));        // FCMGE: IOC for the quiet NaN
        Assert.Equal(M(0, T, 0, 0), V(v, 4));
        Assert.Equal(M(T, 0, 0, 0), V(v, 5));
        Assert.Equal(M(0, T, 0, 0), V(v, 6));
        Assert.Equal(M(0, 0, 0, T), V(v, 7));        // −0 == 0
        Assert.Equal(M(0, 0, 0, 0), V(v, 8));        // |1| > |1|, |−2| > |3|, NaN, |0| > |−0|: all false
    }

    [Fact]
    public void By_element_and_scalar_simd_fp_forms()
    {
        // C7.2 FMLA/FMUL/FMULX (by element, vector and scalar), SCVTF/FCVTZS (scalar SIMD, integer), FCMGT/FABD
        // (scalar), FCVTZS (scalar, fixed-point, shift by immediate), USHR (scalar): each writes Sd/Dd and zeroes the rest.
        UInt128[] inputs = new UInt128[10];
        inputs[0] = F4(1.5f, -2f, 3f, 0.5f);
        inputs[1] = F4(10f, 20f, 30f, 40f);
        inputs[2] = D2(2.5, -4.0);
        inputs[3] = D2(3.0, 0.1);
        inputs[4] = F4(1f, 1f, 1f, 1f);
        inputs[9] = U128(7, unchecked((ulong)-5L));
        using var s = RunVectors(inputs, g =>
        {
            g.Emit(ByElement(scalar: false, q: true, u: false, size: 2, opcode: 0b0001, index: 2, rd: 4, rn: 0, rm: 1));  // fmla v4.4s, v0.4s, v1.s[2]
            g.Emit(ByElement(scalar: false, q: true, u: false, size: 3, opcode: 0b1001, index: 1, rd: 5, rn: 2, rm: 3));  // fmul v5.2d, v2.2d, v3.d[1]
            g.Emit(ByElement(scalar: true, q: true, u: false, size: 2, opcode: 0b1001, index: 3, rd: 6, rn: 0, rm: 1));   // fmul s6, s0, v1.s[3]
            g.Emit(ByElement(scalar: false, q: true, u: true, size: 2, opcode: 0b1001, index: 0, rd: 7, rn: 0, rm: 1));   // fmulx v7.4s, v0.4s, v1.s[0]
            g.Emit(ScalarTwoRegisterMisc(u: false, size: 1, opcode: 0x1D, rd: 8, rn: 9));                              // scvtf d8, d9
            g.Emit(ScalarTwoRegisterMisc(u: false, size: 2, opcode: 0x1B, rd: 10, rn: 0));                             // fcvtzs s10, s0
            g.Emit(ScalarThreeSame(u: true, size: 3, opcode: 0x1C, rd: 11, rn: 2, rm: 3));                             // fcmgt d11, d2, d3
            g.Emit(ScalarThreeSame(u: true, size: 2, opcode: 0x1A, rd: 12, rn: 0, rm: 1));                             // fabd s12, s0, s1
            g.Emit(ScalarShiftImm(u: false, immhb: 128 - 2, opcode: 0x1F, rd: 13, rn: 2));                             // fcvtzs d13, d2, #2
            g.Emit(ScalarShiftImm(u: true, immhb: 128 - 60, opcode: 0x00, rd: 14, rn: 9));                             // ushr d14, d9, #60
        });
        var v = s.Vcpus[0];
        Assert.Equal(F4(46f, -59f, 91f, 16f), V(v, 4));
        Assert.Equal(D2(2.5 * 0.1, -4.0 * 0.1), V(v, 5));
        Assert.Equal((UInt128)BitConverter.SingleToUInt32Bits(60f), V(v, 6));
        Assert.Equal(F4(15f, -20f, 30f, 5f), V(v, 7));
        Assert.Equal((UInt128)BitConverter.DoubleToUInt64Bits(-5.0), V(v, 8));
        Assert.Equal((UInt128)1, V(v, 10));
        Assert.Equal(UInt128.Zero, V(v, 11));
        Assert.Equal((UInt128)BitConverter.SingleToUInt32Bits(8.5f), V(v, 12));
        Assert.Equal((UInt128)10, V(v, 13));
        Assert.Equal((UInt128)0xF, V(v, 14));
    }

    [Fact]
    public void Across_lanes_fp_max_min_reduce_pairwise()
    {
        // C7.2 FMAXV, FMINNMV (.4s): Reduce(); FMINNMV ignores a quiet NaN lane (FPMinNum).
        using var s = RunVectors([F4(3f, -7f, 11f, 2f), F4(5f, float.NaN, -1f, 4f)], g =>
        {
            g.Emit(AcrossLanes(q: true, u: true, size: 0, opcode: 0x0F, rd: 2, rn: 0));   // fmaxv s2, v0.4s
            g.Emit(AcrossLanes(q: true, u: true, size: 2, opcode: 0x0C, rd: 3, rn: 1));   // fminnmv s3, v1.4s
            g.Emit(AcrossLanes(q: true, u: true, size: 2, opcode: 0x0F, rd: 4, rn: 0));   // fminv s4, v0.4s
        });
        var v = s.Vcpus[0];
        Assert.Equal((UInt128)BitConverter.SingleToUInt32Bits(11f), V(v, 2));
        Assert.Equal((UInt128)BitConverter.SingleToUInt32Bits(-1f), V(v, 3));
        Assert.Equal((UInt128)BitConverter.SingleToUInt32Bits(-7f), V(v, 4));
    }

    [Fact]
    public void Vector_integer_and_fixed_point_conversions_round_and_saturate()
    {
        // C7.2 FCVTZS/FCVTNS/FCVTMU (vector, integer), SCVTF/UCVTF (vector, integer), FCVTZS/SCVTF (vector, fixed-point):
        // FPToFixed saturates with IOC; FixedToFP divides by 2^fbits.
        using var s = RunVectors([F4(2.5f, -2.5f, 3e9f, float.NaN), U128(0xFFFF_FFFF_0000_0003, 0xFFFF_FFFF_FFFF_FFF9)], g =>
        {
            g.Emit(VecFp2(q: true, u: false, a: true, dbl: false, 0x1B, rd: 2, rn: 0));     // fcvtzs v2.4s, v0.4s
            g.Emit(VecFp2(q: true, u: false, a: false, dbl: false, 0x1A, rd: 3, rn: 0));    // fcvtns v3.4s, v0.4s
            g.Emit(VecFp2(q: true, u: true, a: false, dbl: false, 0x1B, rd: 4, rn: 0));     // fcvtmu v4.4s, v0.4s
            g.Emit(VecFp2(q: true, u: false, a: false, dbl: false, 0x1D, rd: 5, rn: 1));    // scvtf v5.4s, v1.4s
            g.Emit(VecFp2(q: true, u: true, a: false, dbl: true, 0x1D, rd: 6, rn: 1));      // ucvtf v6.2d, v1.2d
            g.Emit(ShiftImm(q: true, u: false, immhb: 64 - 4, opcode: 0x1F, rd: 7, rn: 0)); // fcvtzs v7.4s, v0.4s, #4
            g.Emit(ShiftImm(q: true, u: false, immhb: 64 - 1, opcode: 0x1C, rd: 8, rn: 1)); // scvtf v8.4s, v1.4s, #1
            g.Emit(ShiftImm(q: true, u: true, immhb: 128 - 32, opcode: 0x1C, rd: 9, rn: 1)); // ucvtf v9.2d, v1.2d, #32
        });
        var v = s.Vcpus[0];
        static UInt128 I4(int a, int b, int c, int d) => U128(((ulong)(uint)d << 32) | (uint)c, ((ulong)(uint)b << 32) | (uint)a);
        Assert.Equal(I4(2, -2, int.MaxValue, 0), V(v, 2));
        Assert.Equal(I4(2, -2, int.MaxValue, 0), V(v, 3));
        Assert.Equal(I4(2, 0, unchecked((int)3_000_000_000u), 0), V(v, 4));
        Assert.Equal(F4(-7f, -1f, 3f, -1f), V(v, 5));
        Assert.Equal(D2(18446744073709551609.0, 18446744069414584323.0), V(v, 6));
        Assert.Equal(I4(40, -40, int.MaxValue, 0), V(v, 7));
        Assert.Equal(F4(-3.5f, -0.5f, 1.5f, -0.5f), V(v, 8));
        Assert.Equal(D2(0xFFFF_FFFF_FFFF_FFF9UL / 4294967296.0, 0xFFFF_FFFF_0000_0003UL / 4294967296.0), V(v, 9));
        Assert.Equal(Ioc | Ixc, Fpsr(v));
    }

    [Fact]
    public void Scalar_fixed_point_conversions_scale_by_fbits()
    {
        // C7.2 FCVTZS/FCVTZU (scalar, fixed-point), SCVTF/UCVTF (scalar, fixed-point): fbits = 64 − scale.
        using var s = RunVectors([D2(-1.75, 0), F4(0.3f, 0, 0, 0)], g =>
        {
            g.Emit(FpFixed(sf: true, D, rmode: 3, opcode: 0, fbits: 8, rd: 5, rn: 0));   // fcvtzs x5, d0, #8
            g.Emit(FpFixed(sf: false, S, rmode: 3, opcode: 1, fbits: 16, rd: 6, rn: 1)); // fcvtzu w6, s1, #16
            g.MovImm(X(7), unchecked((ulong)-12L));
            g.Emit(FpFixed(sf: true, D, rmode: 0, opcode: 2, fbits: 3, rd: 2, rn: 7));   // scvtf d2, x7, #3
            g.MovImm(X(8), 0x8000_0001);
            g.Emit(FpFixed(sf: false, S, rmode: 0, opcode: 3, fbits: 32, rd: 3, rn: 8)); // ucvtf s3, w8, #32
        });
        var v = s.Vcpus[0];
        Assert.Equal(unchecked((ulong)-448L), v.GetX(5));
        Assert.Equal((ulong)(uint)(0.3f * 65536f), v.GetX(6));
        Assert.Equal((UInt128)BitConverter.DoubleToUInt64Bits(-1.5), V(v, 2));
        Assert.Equal((UInt128)BitConverter.SingleToUInt32Bits(0.5f), V(v, 3)); // 0x80000001 / 2^32 rounds to 0.5
        Assert.Equal(Ixc, Fpsr(v));
    }

    [Fact]
    public void Fixed_point_conversion_with_32_bit_register_and_fbits_above_32_is_undefined()
    {
        // C7.2 FCVTZS (scalar, fixed-point): sf 0 with scale<5> = 0 is unallocated: the undef exception, not a conversion.
        uint insn = FpFixed(sf: false, S, rmode: 3, opcode: 0, fbits: 40, rd: 5, rn: 0);
        Assert.Equal(0UL, UndefinedEsrEc(insn));
    }

    /// <summary>Runs <paramref name="insn"/> with FPEN = 0b11; the synchronous vector handler reports ESR_EL1.EC (0x00: unknown reason).</summary>
    internal static ulong UndefinedEsrEc(uint insn)
    {
        static void Handler(A64Assembler h)
        {
            h.Mrs(X(20), KvmSharp.Abi.Arm64.KvmArm64SysRegs.Encoding(3, 0, 5, 2, 0)); // mrs x20, esr_el1
            Arm64Guest.Ucall(h, Arm64Guest.UcallFail);
        }
        using var s = new Arm64TestVm(a =>
        {
            SetFpen(a, 3);
            a.Emit(insn);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        s.Host.Write(Arm64Guest.SyncVectorGpa, Arm64Guest.Assemble(Handler));
        var v = s.AddVcpu();
        var exit = v.RunBounded();
        Assert.Equal(KvmSharp.Abi.KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallFail, BitConverter.ToUInt64(exit.MmioData));
        return v.GetX(20) >> 26;
    }

    [Fact]
    public void Half_precision_fcvt_rounds_in_fpcr_rmode_and_converts_back_exactly()
    {
        // C7.2 FCVT (Hd ← Sn, Hd ← Dn, Sd ← Hn, Dd ← Hn), FCVTN/FCVTL (vector, half ↔ single): FPConvert, FPRoundCV.
        using var s = RunVectors([F4(1.0009765625f + 0.0004f, 65520f, 1e-7f, -3.25f), D2(0.1, 0)], g =>
        {
            g.Emit(Fp1(S, 7, rd: 2, rn: 0));                                              // fcvt h2, s0
            g.Emit(Fp1(D, 7, rd: 3, rn: 1));                                              // fcvt h3, d1
            g.Emit(Fp1(3, 4, rd: 4, rn: 3));                                              // fcvt s4, h3
            g.Emit(Fp1(3, 5, rd: 5, rn: 2));                                              // fcvt d5, h2
            g.Emit(VecFp2(q: false, u: false, a: false, dbl: false, 0x16, rd: 6, rn: 0));   // fcvtn v6.4h, v0.4s
            g.Emit(VecFp2(q: false, u: false, a: false, dbl: false, 0x17, rd: 7, rn: 6));   // fcvtl v7.4s, v6.4h
            g.Emit(ModifiedImmediate(q: true, op: true, cmode: 0b1110, imm8: 0xFF, rd: 8)); // movi v8.2d, #-1
            g.Emit(VecFp2(q: true, u: false, a: false, dbl: true, 0x16, rd: 8, rn: 1));     // fcvtn2 v8.4s, v1.2d
        });
        var v = s.Vcpus[0];
        // 1.00137…: between 1.0009765625 (0x3C01) and 1.001953125 (0x3C02), nearer the former.
        Assert.Equal((UInt128)0x3C01, V(v, 2));
        Assert.Equal((UInt128)0x2E66, V(v, 3));                                           // 0.0999755859375
        Assert.Equal((UInt128)BitConverter.SingleToUInt32Bits(0.0999755859375f), V(v, 4));
        Assert.Equal((UInt128)BitConverter.DoubleToUInt64Bits(1.0009765625), V(v, 5));
        // 65520 overflows half (∞, OFC); 1e-7 is a half subnormal (2 × 2^−24 ≈ 1.19e-7: UFC); −3.25 is exact.
        Assert.Equal(U128(0, 0xC280_0002_7C00_3C01), V(v, 6));
        Assert.Equal(F4(1.0009765625f, float.PositiveInfinity, 2 * MathF.ScaleB(1f, -24), -3.25f), V(v, 7));
        Assert.Equal(U128(BitConverter.SingleToUInt32Bits(0.1f), ulong.MaxValue), V(v, 8)); // FCVTN2 keeps the low half
        Assert.Equal(Ofc | Ufc | Ixc, Fpsr(v));
    }

    [Fact]
    public void Fcvt_to_half_rounds_toward_zero_and_plus_infinity_under_fpcr_rmode()
    {
        // FPRoundCV in FPCR.RMode = RZ (0b11): 65520 gives the largest finite half (0x7BFF) with no overflow
        // (the truncated exponent stays in range), inexact; under RP (0b01) 1.0001 rounds up to 0x3C01.
        using var rz = RunVectors([F4(65520f, 1.0001f, 0, 0)], g =>
        {
            g.Emit(Fp1(S, 7, rd: 2, rn: 0));                   // fcvt h2, s0
        }, fpcr: 3u << 22);
        Assert.Equal((UInt128)0x7BFF, V(rz.Vcpus[0], 2));
        Assert.Equal(Ixc, Fpsr(rz.Vcpus[0]));
        using var rp = RunVectors([F4(1.0001f, 0, 0, 0)], g =>
        {
            g.Emit(Fp1(S, 7, rd: 2, rn: 0));                   // fcvt h2, s0
        }, fpcr: 1u << 22);
        Assert.Equal((UInt128)0x3C01, V(rp.Vcpus[0], 2));
    }
}
