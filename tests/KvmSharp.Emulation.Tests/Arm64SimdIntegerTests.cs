// SPDX-License-Identifier: MIT
using static KvmSharp.Emulation.Tests.A64SimdEncoder;
using static KvmSharp.Emulation.Tests.Arm64SimdFpTests;
using static KvmSharp.Emulation.Tests.Arm64SimdTests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The A64 interpreter's Advanced SIMD integer shifts, widening/narrowing, saturating and multiply operations as
/// compilers emit them (UXTL/SXTL, XTN, SHL/USHR/SSHR/USRA/SSRA, SHRN, UQADD/SQADD with FPSR.QC, MUL/MLA, SMULL/UMULL,
/// UADDLP/SADDLP, ADDP). Emulator-only (the host is x86); the Arm ARM (DDI 0487) C7.2 instruction pseudocode is the oracle.
/// </summary>
public class Arm64SimdIntegerTests
{
    private const uint Qc = 1u << 27;

    private static UInt128 I4(int a, int b, int c, int d) => U128(((ulong)(uint)d << 32) | (uint)c, ((ulong)(uint)b << 32) | (uint)a);

    [Fact]
    public void Widening_narrowing_and_shift_by_immediate()
    {
        // C7.2 USHLL #0 (UXTL), SSHLL2 #0 (SXTL2), XTN, SHL, USHR, SSHR, USRA, SSRA, SHRN: shift by immediate with
        // esize = 8 << HighestSetBit(immh), right shift 2 × esize − immh:immb, left shift immh:immb − esize.
        using var s = RunVectors([U128(0x8877_6655_4433_2211, 0xF0E0_D0C0_B0A0_9080)], g =>
        {
            g.Emit(ShiftImm(q: false, u: true, immhb: 8, opcode: 0x14, rd: 2, rn: 0));        // uxtl v2.8h, v0.8b
            g.Emit(ShiftImm(q: true, u: false, immhb: 16, opcode: 0x14, rd: 3, rn: 0));        // sxtl2 v3.4s, v0.8h
            g.Emit(TwoRegisterMisc(q: false, u: false, size: 0, opcode: 0x12, rd: 4, rn: 2));  // xtn v4.8b, v2.8h
            g.Emit(ShiftImm(q: true, u: false, immhb: 32 + 4, opcode: 0x0A, rd: 5, rn: 0));    // shl v5.4s, v0.4s, #4
            g.Emit(ShiftImm(q: true, u: true, immhb: 128 - 60, opcode: 0x00, rd: 6, rn: 0));   // ushr v6.2d, v0.2d, #60
            g.Emit(ShiftImm(q: true, u: true, immhb: 128 - 60, opcode: 0x02, rd: 6, rn: 0));   // usra v6.2d, v0.2d, #60
            g.Emit(ShiftImm(q: true, u: false, immhb: 128 - 60, opcode: 0x00, rd: 7, rn: 0));  // sshr v7.2d, v0.2d, #60
            g.Emit(ShiftImm(q: true, u: false, immhb: 128 - 60, opcode: 0x02, rd: 7, rn: 0));  // ssra v7.2d, v0.2d, #60
            g.Emit(ShiftImm(q: false, u: false, immhb: 16 - 4, opcode: 0x10, rd: 8, rn: 0));   // shrn v8.8b, v0.8h, #4
        });
        var v = s.Vcpus[0];
        Assert.Equal(U128(0x00F0_00E0_00D0_00C0, 0x00B0_00A0_0090_0080), V(v, 2));
        Assert.Equal(U128(0xFFFF_8877_0000_6655, 0x0000_4433_0000_2211), V(v, 3));
        Assert.Equal((UInt128)0xF0E0_D0C0_B0A0_9080, V(v, 4));
        Assert.Equal(U128(0x8776_6550_4332_2110, 0x0E0D_0C00_0A09_0800), V(v, 5));
        Assert.Equal(U128(16, 30), V(v, 6));
        Assert.Equal(U128(unchecked((ulong)-16L), unchecked((ulong)-2L)), V(v, 7));
        Assert.Equal((UInt128)0x8765_4321_0E0C_0A08, V(v, 8));
    }

    [Fact]
    public void Saturating_adds_clamp_and_set_fpsr_qc()
    {
        // C7.2 UQADD (.16b), SQADD (.8h): SatQ sets FPSR.QC (bit 27) when a lane saturates; an unsaturated add leaves it.
        using var s = RunVectors([U128(0x7000_7000_7000_7000, 0xF0F0_F0F0_F0F0_F0F0), U128(0x2000_2000_8000_E000, 0x2020_2020_0101_0101)], g =>
        {
            g.Emit(ThreeSame(q: true, u: true, size: 0, opcode: 0x01, rd: 2, rn: 0, rm: 1));  // uqadd v2.16b, v0.16b, v1.16b
            g.Emit(ThreeSame(q: true, u: false, size: 1, opcode: 0x01, rd: 3, rn: 0, rm: 1)); // sqadd v3.8h, v0.8h, v1.8h
        });
        var v = s.Vcpus[0];
        Assert.Equal(U128(0x9000_9000_F000_FF00, 0xFFFF_FFFF_F1F1_F1F1), V(v, 2));
        Assert.Equal(U128(0x7FFF_7FFF_F000_5000, 0x1110_1110_F1F1_F1F1), V(v, 3));
        Assert.Equal(Qc, Fpsr(v));
    }

    [Fact]
    public void An_add_that_does_not_saturate_leaves_qc_clear()
    {
        // C7.2 UQADD: no lane saturates, FPSR.QC stays 0.
        using var s = RunVectors([U128(1, 2), U128(3, 4)], g =>
        {
            g.Emit(ThreeSame(q: true, u: true, size: 3, opcode: 0x01, rd: 2, rn: 0, rm: 1)); // uqadd v2.2d, v0.2d, v1.2d
        });
        Assert.Equal(U128(4, 6), V(s.Vcpus[0], 2));
        Assert.Equal(0u, Fpsr(s.Vcpus[0]));
    }

    [Fact]
    public void Multiply_long_pairwise_and_misc_integer_operations()
    {
        // C7.2 MUL, MLA, SMULL, UMULL2, UADDL, UADDLP, SADDLP, ADDP, SMAX, ABS, NEG, CLZ, REV64 (vector).
        using var s = RunVectors([I4(3, -2, 100000, 7), I4(5, 6, 100000, -1), I4(1, 1, 1, 1)], g =>
        {
            g.Emit(ThreeSame(q: true, u: false, size: 2, opcode: 0x13, rd: 3, rn: 0, rm: 1));        // mul v3.4s, v0.4s, v1.4s
            g.Emit(ThreeSame(q: true, u: false, size: 2, opcode: 0x12, rd: 2, rn: 0, rm: 1));        // mla v2.4s, v0.4s, v1.4s
            g.Emit(ThreeDifferent(q: false, u: false, size: 2, opcode: 0x0C, rd: 4, rn: 0, rm: 1));  // smull v4.2d, v0.2s, v1.2s
            g.Emit(ThreeDifferent(q: true, u: true, size: 2, opcode: 0x0C, rd: 5, rn: 0, rm: 1));    // umull2 v5.2d, v0.4s, v1.4s
            g.Emit(TwoRegisterMisc(q: true, u: true, size: 2, opcode: 0x02, rd: 6, rn: 0));          // uaddlp v6.2d, v0.4s
            g.Emit(TwoRegisterMisc(q: true, u: false, size: 2, opcode: 0x02, rd: 7, rn: 0));         // saddlp v7.2d, v0.4s
            g.Emit(ThreeSame(q: true, u: false, size: 2, opcode: 0x17, rd: 8, rn: 0, rm: 1));        // addp v8.4s, v0.4s, v1.4s
            g.Emit(ThreeDifferent(q: false, u: true, size: 2, opcode: 0x00, rd: 9, rn: 0, rm: 1));   // uaddl v9.2d, v0.2s, v1.2s
            g.Emit(ThreeSame(q: true, u: false, size: 2, opcode: 0x0C, rd: 10, rn: 0, rm: 1));       // smax v10.4s, v0.4s, v1.4s
            g.Emit(TwoRegisterMisc(q: true, u: false, size: 2, opcode: 0x0B, rd: 11, rn: 0));        // abs v11.4s, v0.4s
            g.Emit(TwoRegisterMisc(q: true, u: true, size: 2, opcode: 0x0B, rd: 12, rn: 1));         // neg v12.4s, v1.4s
            g.Emit(TwoRegisterMisc(q: true, u: true, size: 2, opcode: 0x04, rd: 13, rn: 0));         // clz v13.4s, v0.4s
            g.Emit(TwoRegisterMisc(q: true, u: false, size: 2, opcode: 0x00, rd: 14, rn: 0));        // rev64 v14.4s, v0.4s
        });
        var v = s.Vcpus[0];
        Assert.Equal(I4(15, -12, 1410065408, -7), V(v, 3));
        Assert.Equal(I4(16, -11, 1410065409, -6), V(v, 2));
        Assert.Equal(U128(unchecked((ulong)-12L), 15), V(v, 4));
        Assert.Equal(U128(7UL * 0xFFFF_FFFF, 10_000_000_000), V(v, 5));
        Assert.Equal(U128(100007, 0x1_0000_0001), V(v, 6));
        Assert.Equal(U128(100007, 1), V(v, 7));
        Assert.Equal(I4(1, 100007, 11, 99999), V(v, 8));
        Assert.Equal(U128(0x1_0000_0004, 8), V(v, 9));
        Assert.Equal(I4(5, 6, 100000, 7), V(v, 10));
        Assert.Equal(I4(3, 2, 100000, 7), V(v, 11));
        Assert.Equal(I4(-5, -6, -100000, 1), V(v, 12));
        Assert.Equal(I4(30, 0, 15, 29), V(v, 13));
        Assert.Equal(I4(-2, 3, 7, 100000), V(v, 14));
    }

    private static UInt128 H8(params short[] h)
    {
        UInt128 r = 0;
        for (int i = 0; i < 8; i++) r |= (UInt128)(ushort)h[i] << (16 * i);
        return r;
    }

    [Fact]
    public void By_element_multiplies_and_saturating_narrows()
    {
        // C7.2 MUL/UMULL (by element), SQXTN, UQXTN, SQXTUN (saturation sets FPSR.QC).
        using var s = RunVectors([H8(1, 2, 3, 4, 5, 6, 7, 8), H8(10, 20, 30, 40, 50, 60, 70, 80), H8(100, -200, 300, -5, 0, 127, 128, -128)], g =>
        {
            g.Emit(ByElement(scalar: false, q: true, u: false, size: 1, opcode: 0b1000, index: 5, rd: 3, rn: 0, rm: 1));  // mul v3.8h, v0.8h, v1.h[5]
            g.Emit(ByElement(scalar: false, q: false, u: true, size: 1, opcode: 0b1010, index: 7, rd: 4, rn: 0, rm: 1));  // umull v4.4s, v0.4h, v1.h[7]
            g.Emit(TwoRegisterMisc(q: false, u: false, size: 0, opcode: 0x14, rd: 5, rn: 2));                            // sqxtn v5.8b, v2.8h
            g.Emit(TwoRegisterMisc(q: false, u: true, size: 0, opcode: 0x14, rd: 6, rn: 2));                             // uqxtn v6.8b, v2.8h
            g.Emit(TwoRegisterMisc(q: false, u: true, size: 0, opcode: 0x12, rd: 7, rn: 2));                             // sqxtun v7.8b, v2.8h
        });
        var v = s.Vcpus[0];
        Assert.Equal(H8(60, 120, 180, 240, 300, 360, 420, 480), V(v, 3));
        Assert.Equal(I4(80, 160, 240, 320), V(v, 4));
        static UInt128 B8(params int[] b) => b.Select((x, i) => (UInt128)(byte)x << (8 * i)).Aggregate(UInt128.Zero, (p, q) => p | q);
        Assert.Equal(B8(100, -128, 127, -5, 0, 127, 127, -128), V(v, 5));
        Assert.Equal(B8(100, 255, 255, 255, 0, 127, 128, 255), V(v, 6));
        Assert.Equal(B8(100, 0, 255, 0, 0, 127, 128, 0), V(v, 7));
        Assert.Equal(Qc, Fpsr(v));
    }

    [Fact]
    public void Tbl_and_tbx_look_up_bytes_of_a_two_register_table()
    {
        // C7.2 TBL/TBX: table v0:v1 (32 bytes 0x80..0x9F); indices ≥ 32 give 0 (TBL) or keep Vd's byte (TBX).
        UInt128 table0 = U128(0x8F8E_8D8C_8B8A_8988, 0x8786_8584_8382_8180), table1 = U128(0x9F9E_9D9C_9B9A_9998, 0x9796_9594_9392_9190);
        using var s = RunVectors([table0, table1, U128(0x0001_0203_1F10_2040, 0xFF1F_0E05_0000_2011), U128(0x1111_1111_1111_1111, 0x2222_2222_2222_2222)], g =>
        {
            g.Emit(Tbl(q: true, tbx: false, registers: 2, rd: 4, rn: 0, rm: 2));   // tbl v4.16b, {v0.16b, v1.16b}, v2.16b
            g.Emit(Tbl(q: false, tbx: true, registers: 2, rd: 3, rn: 0, rm: 2));   // tbx v3.8b, {v0.16b, v1.16b}, v2.8b
        });
        var v = s.Vcpus[0];
        Assert.Equal(U128(0x8081_8283_9F90_0000, 0x009F_8E85_8080_0091), V(v, 4));
        Assert.Equal((UInt128)0x229F_8E85_8080_2291, V(v, 3));
    }

    [Fact]
    public void Scalar_integer_simd_operations_write_the_d_register()
    {
        // C7.2 ADD/CMEQ/CMHI/USHL/SSHL (scalar, D), SQADD (scalar, S: saturates, QC), NEG/CMLT #0/ABS (scalar, D).
        using var s = RunVectors([U128(99, unchecked((ulong)-40L)), U128(98, 0xFFFF_FFFF_FFFF_FFFE), U128(0, 0x7FFF_FFF0)], g =>
        {
            g.Emit(ScalarThreeSame(u: false, size: 3, opcode: 0x10, rd: 3, rn: 0, rm: 1));   // add d3, d0, d1
            g.Emit(ScalarThreeSame(u: true, size: 3, opcode: 0x11, rd: 4, rn: 0, rm: 0));    // cmeq d4, d0, d0
            g.Emit(ScalarThreeSame(u: true, size: 3, opcode: 0x06, rd: 5, rn: 0, rm: 1));    // cmhi d5, d0, d1
            g.Emit(ScalarThreeSame(u: true, size: 3, opcode: 0x08, rd: 6, rn: 0, rm: 1));    // ushl d6, d0, d1 (shift −2)
            g.Emit(ScalarThreeSame(u: false, size: 3, opcode: 0x08, rd: 7, rn: 0, rm: 1));   // sshl d7, d0, d1 (shift −2)
            g.Emit(ScalarThreeSame(u: false, size: 2, opcode: 0x01, rd: 8, rn: 2, rm: 2));   // sqadd s8, s2, s2
            g.Emit(ScalarTwoRegisterMisc(u: true, size: 3, opcode: 0x0B, rd: 9, rn: 0));     // neg d9, d0
            g.Emit(ScalarTwoRegisterMisc(u: false, size: 3, opcode: 0x0A, rd: 10, rn: 0));   // cmlt d10, d0, #0
            g.Emit(ScalarTwoRegisterMisc(u: false, size: 3, opcode: 0x0B, rd: 11, rn: 0));   // abs d11, d0
        });
        var v = s.Vcpus[0];
        Assert.Equal((UInt128)unchecked((ulong)-42L), V(v, 3));
        Assert.Equal((UInt128)ulong.MaxValue, V(v, 4));
        Assert.Equal(UInt128.Zero, V(v, 5));
        Assert.Equal((UInt128)(unchecked((ulong)-40L) >> 2), V(v, 6));
        Assert.Equal((UInt128)unchecked((ulong)-10L), V(v, 7));
        Assert.Equal((UInt128)0x7FFF_FFFF, V(v, 8));
        Assert.Equal((UInt128)40, V(v, 9));
        Assert.Equal((UInt128)ulong.MaxValue, V(v, 10));
        Assert.Equal((UInt128)40, V(v, 11));
        Assert.Equal(Qc, Fpsr(v));
    }

    [Fact]
    public void Shift_by_immediate_with_64_bit_lanes_and_q_0_is_undefined()
    {
        // C7.2 SSHR: immh<3> = 1 with Q = 0 is a reserved value (the undef exception, EC 0x00).
        Assert.Equal(0UL, UndefinedEsrEc(ShiftImm(q: false, u: false, immhb: 128 - 1, opcode: 0x00, rd: 1, rn: 0)));
    }
}
