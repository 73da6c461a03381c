// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.A64SimdEncoder;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The A64 interpreter's FP/SIMD loads and stores, Advanced SIMD data processing and the CPACR_EL1.FPEN trap, as a
/// compiled guest uses them (memcpy with q-register pairs, zeroing with MOVI + STP). Emulator-only (the host is x86);
/// the Arm ARM (DDI 0487) is the oracle: each group names the instruction section or pseudocode function.
/// </summary>
public class Arm64SimdTests
{
    internal const ulong Src = 0x4000, Dst = 0x5000;

    internal static UInt128 V(KvmSharp.Vcpu v, int n)
    {
        byte[] b = v.GetOneRegBytes(VRegId(n));
        return ((UInt128)BitConverter.ToUInt64(b, 8) << 64) | BitConverter.ToUInt64(b, 0);
    }

    /// <summary>The ONE_REG id of V<paramref name="n"/> (the 128-bit core register).</summary>
    internal static ulong VRegId(int n) => KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U128 | KvmArm64Regs.KVM_REG_ARM_CORE |
                                           KvmArm64Regs.KVM_REG_ARM_CORE_REG(KvmArm64Regs.OffsetVregs + 16 * n);

    /// <summary>16 bytes holding <paramref name="word"/> four times (little-endian): a V register value for ONE_REG.</summary>
    internal static byte[] Splat(uint word) => [.. Enumerable.Range(0, 16).Select(i => (byte)(word >> (8 * (i % 4))))];

    internal static uint Fpsr(KvmSharp.Vcpu v) =>
        BitConverter.ToUInt32(v.GetOneRegBytes(KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U32 | KvmArm64Regs.KVM_REG_ARM_CORE |
                                               KvmArm64Regs.KVM_REG_ARM_CORE_REG(KvmArm64Regs.OffsetFpsr)));

    internal static UInt128 U128(ulong high, ulong low) => ((UInt128)high << 64) | low;

    /// <summary>Runs the guest (FPEN = 0b11 first unless told) to its ucall; asserts UcallDone.</summary>
    internal static Arm64TestVm RunToDone(Action<A64Assembler> body, Action<Arm64TestVm>? setUp = null, bool enableFp = true)
    {
        var s = new Arm64TestVm(a =>
        {
            if (enableFp) SetFpen(a, 3);
            body(a);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        try
        {
            setUp?.Invoke(s);
            var v = s.AddVcpu();
            var exit = v.RunBounded();
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
            Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
            Assert.Equal(Arm64Guest.UcallDone, BitConverter.ToUInt64(exit.MmioData));
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    private static byte[] Pattern(int length, int seed) => Enumerable.Range(0, length).Select(i => (byte)(i * 7 + seed)).ToArray();

    [Fact]
    public void Memcpy_with_ldp_stp_of_q_registers_and_post_index_copies_the_buffer()
    {
        // C6.2 LDP/STP (SIMD&FP), post-index: 32 bytes per pair, Rn += imm7 × 16 after the access.
        byte[] source = Pattern(128, 3);
        using var s = RunToDone(a =>
        {
            a.MovImm(X(2), Src);
            a.MovImm(X(3), Dst);
            a.MovImm(X(4), 4);
            var loop = a.CreateLabel();
            a.Bind(loop);
            a.Emit(Pair(load: true, Q, mode: 1, rt: 0, rt2: 1, rn: 2, offset: 32));  // ldp q0, q1, [x2], #32
            a.Emit(Pair(load: false, Q, mode: 1, rt: 0, rt2: 1, rn: 3, offset: 32)); // stp q0, q1, [x3], #32
            a.SubsImm(X(4), X(4), 1);
            a.B(A64Condition.NE, loop);
        }, vm => vm.Host.Write(Src, source));
        byte[] copied = new byte[128];
        s.Host.Read(Dst, copied);
        Assert.Equal(source, copied);
        var v = s.Vcpus[0];
        Assert.Equal(Src + 128, v.GetX(2));
        Assert.Equal(Dst + 128, v.GetX(3));
        // q0/q1 hold the last 32 bytes, little-endian.
        Assert.Equal(U128(BitConverter.ToUInt64(source, 104), BitConverter.ToUInt64(source, 96)), V(v, 0));
        Assert.Equal(U128(BitConverter.ToUInt64(source, 120), BitConverter.ToUInt64(source, 112)), V(v, 1));
    }

    [Fact]
    public void Struct_zeroing_with_movi_2d_zero_and_stp_q0_q0_clears_memory()
    {
        // C7.2 MOVI (64-bit byte mask form, op 1 cmode 1110, imm8 0, Q 1): v0 = 0; STP (signed offset and pre-index).
        using var s = RunToDone(a =>
        {
            a.MovImm(X(2), Dst);
            a.Emit(ModifiedImmediate(q: true, op: true, cmode: 0b1110, imm8: 0, rd: 0)); // movi v0.2d, #0
            a.Emit(Pair(load: false, Q, mode: 2, rt: 0, rt2: 0, rn: 2, offset: 0));      // stp q0, q0, [x2]
            a.Emit(Pair(load: false, Q, mode: 3, rt: 0, rt2: 0, rn: 2, offset: 32));     // stp q0, q0, [x2, #32]!
            a.Emit(Pair(load: false, D, mode: 0, rt: 0, rt2: 0, rn: 2, offset: 32));     // stnp d0, d0, [x2, #32]
        }, vm =>
        {
            vm.Host.Fill(Dst, 0x100, 0xFF);
        });
        byte[] mem = new byte[0x100];
        s.Host.Read(Dst, mem);
        Assert.All(mem.AsSpan(0, 80).ToArray(), b => Assert.Equal(0, b));
        Assert.All(mem.AsSpan(80).ToArray(), b => Assert.Equal(0xFF, b));
        Assert.Equal(Dst + 32, s.Vcpus[0].GetX(2));
        Assert.Equal(UInt128.Zero, V(s.Vcpus[0], 0));
    }

    [Fact]
    public void Single_register_loads_and_stores_of_every_size_and_addressing_mode()
    {
        // C6.2 LDR/STR (immediate, register, literal, SIMD&FP), LDUR/STUR: a load zero-extends into the whole V register.
        byte[] source = Pattern(64, 11);
        using var s = RunToDone(a =>
        {
            a.MovImm(X(2), Src);
            a.MovImm(X(3), Dst);
            a.MovImm(X(5), 2);
            a.Emit(LdrStrUnsigned(load: true, scale: 4, rt: 0, rn: 2, offset: 16));      // ldr q0, [x2, #16]
            a.Emit(LdrStrUnsigned(load: true, scale: 0, rt: 1, rn: 2, offset: 3));       // ldr b1, [x2, #3]
            a.Emit(LdrStrUnsigned(load: true, scale: 1, rt: 2, rn: 2, offset: 4));       // ldr h2, [x2, #4]
            a.Emit(LdrStrUnsigned(load: true, scale: 2, rt: 3, rn: 2, offset: 8));       // ldr s3, [x2, #8]
            a.Emit(LdrStrUnsigned(load: true, scale: 3, rt: 4, rn: 2, offset: 8));       // ldr d4, [x2, #8]
            a.Emit(LdrStrRegister(load: true, scale: 3, rt: 5, rn: 2, rm: 5, shift: true)); // ldr d5, [x2, x5, lsl #3]
            a.Emit(LdrStrImm9(load: true, scale: 2, idx: 0, rt: 6, rn: 2, offset: 12));  // ldur s6, [x2, #12]
            a.Emit(LdrStrImm9(load: false, scale: 4, idx: 3, rt: 0, rn: 3, offset: 16));  // str q0, [x3, #16]!
            a.Emit(LdrStrImm9(load: false, scale: 3, idx: 1, rt: 4, rn: 3, offset: -8));  // str d4, [x3], #-8
            a.Emit(LdrStrImm9(load: false, scale: 1, idx: 0, rt: 2, rn: 3, offset: -2));  // stur h2, [x3, #-2]
            var over = a.CreateLabel();
            // The literal must be 8-aligned: with the MMU off the access is Device memory, where an unaligned load faults.
            if ((Arm64Guest.CodeGpa + (ulong)a.Position + 8) % 8 != 0) a.Nop();
            a.Emit(LdrLiteral(opc: 1, rt: 7, offset: 8));                                 // ldr d7, <the next word>
            a.B(over);
            a.Emit(0x89AB_CDEF);
            a.Emit(0x0123_4567);
            a.Bind(over);
            // LD1 {v8.16b, v9.16b}, [x2], #32 then ST1 {v8.2d, v9.2d}, [x3].
            a.Emit(Ld1St1(load: true, q: true, registers: 2, size: 0, rt: 8, rn: 2, postIndexImmediate: true));
            a.MovImm(X(3), Dst + 0x40);
            a.Emit(Ld1St1(load: false, q: true, registers: 2, size: 3, rt: 8, rn: 3, postIndexImmediate: false));
        }, vm => vm.Host.Write(Src, source));
        var v = s.Vcpus[0];
        ulong Le(int o, int n) => n == 8 ? BitConverter.ToUInt64(source, o) : BitConverter.ToUInt64(source, o) & ((1UL << (8 * n)) - 1);
        Assert.Equal(U128(Le(24, 8), Le(16, 8)), V(v, 0));
        Assert.Equal((UInt128)source[3], V(v, 1));
        Assert.Equal((UInt128)Le(4, 2), V(v, 2));
        Assert.Equal((UInt128)Le(8, 4), V(v, 3));
        Assert.Equal((UInt128)Le(8, 8), V(v, 4));
        Assert.Equal((UInt128)Le(16, 8), V(v, 5));
        Assert.Equal((UInt128)Le(12, 4), V(v, 6));
        Assert.Equal((UInt128)0x0123_4567_89AB_CDEFUL, V(v, 7));
        Assert.Equal(U128(Le(8, 8), Le(0, 8)), V(v, 8));
        Assert.Equal(U128(Le(24, 8), Le(16, 8)), V(v, 9));
        Assert.Equal(Src + 32, v.GetX(2));
        byte[] mem = new byte[0x60];
        s.Host.Read(Dst, mem);
        // str q0, [x3, #16]! wrote source[16..32] at Dst + 16; str d4, [x3], #-8 then overwrote its first 8 bytes.
        Assert.Equal(source.AsSpan(8, 8).ToArray(), mem.AsSpan(16, 8).ToArray());
        Assert.Equal(source.AsSpan(24, 8).ToArray(), mem.AsSpan(24, 8).ToArray());
        Assert.Equal(source.AsSpan(4, 2).ToArray(), mem.AsSpan(6, 2).ToArray());   // stur h2 at (Dst + 8) - 2
        Assert.Equal(source.AsSpan(0, 32).ToArray(), mem.AsSpan(0x40, 32).ToArray()); // st1 of ld1's two registers
    }

    [Fact]
    public void Movi_mvni_orr_bic_and_fmov_vector_immediates_follow_advsimd_expand_imm()
    {
        // C7.2 MOVI/MVNI/ORR/BIC (vector, immediate), FMOV (vector, immediate); shared AdvSIMDExpandImm.
        using var s = RunToDone(a =>
        {
            a.Emit(ModifiedImmediate(q: true, op: false, cmode: 0b0010, imm8: 0xAB, rd: 0));  // movi v0.4s, #0xab, lsl #8
            a.Emit(ModifiedImmediate(q: true, op: true, cmode: 0b1000, imm8: 0x12, rd: 1));   // mvni v1.8h, #0x12
            a.Emit(ModifiedImmediate(q: true, op: true, cmode: 0b1110, imm8: 0xA5, rd: 2));   // movi v2.2d, #0xff00ff0000ff00ff
            a.Emit(ModifiedImmediate(q: false, op: false, cmode: 0b1110, imm8: 0x5A, rd: 3)); // movi v3.8b, #0x5a
            a.Emit(ModifiedImmediate(q: true, op: false, cmode: 0b1101, imm8: 0x34, rd: 4));  // movi v4.4s, #0x34, msl #16
            a.Emit(ModifiedImmediate(q: true, op: false, cmode: 0b1111, imm8: 0x70, rd: 5));  // fmov v5.4s, #1.0
            a.Emit(ModifiedImmediate(q: true, op: true, cmode: 0b1111, imm8: 0x00, rd: 6));   // fmov v6.2d, #2.0
            a.Emit(ModifiedImmediate(q: true, op: false, cmode: 0b1110, imm8: 0xFF, rd: 7));  // movi v7.16b, #0xff
            a.Emit(ModifiedImmediate(q: true, op: true, cmode: 0b0111, imm8: 0xF0, rd: 7));   // bic v7.4s, #0xf0, lsl #24
            a.Emit(ModifiedImmediate(q: false, op: false, cmode: 0b1001, imm8: 0x01, rd: 3)); // orr v3.4h, #0x1 (Q 0 zeroes the top)
        });
        var v = s.Vcpus[0];
        Assert.Equal(U128(0x0000_AB00_0000_AB00, 0x0000_AB00_0000_AB00), V(v, 0));
        Assert.Equal(U128(0xFFED_FFED_FFED_FFED, 0xFFED_FFED_FFED_FFED), V(v, 1));
        Assert.Equal(U128(0xFF00_FF00_00FF_00FF, 0xFF00_FF00_00FF_00FF), V(v, 2));
        Assert.Equal((UInt128)0x5A5B_5A5B_5A5B_5A5BUL, V(v, 3));
        Assert.Equal(U128(0x0034_FFFF_0034_FFFF, 0x0034_FFFF_0034_FFFF), V(v, 4));
        Assert.Equal(U128(0x3F80_0000_3F80_0000, 0x3F80_0000_3F80_0000), V(v, 5));
        Assert.Equal(U128(0x4000_0000_0000_0000, 0x4000_0000_0000_0000), V(v, 6));
        Assert.Equal(U128(0x0FFF_FFFF_0FFF_FFFF, 0x0FFF_FFFF_0FFF_FFFF), V(v, 7));
    }

    [Fact]
    public void Dup_ins_umov_smov_ext_zip_uzp_and_integer_vector_operations()
    {
        // C7.2 DUP (general, element), INS, UMOV, SMOV, EXT, ZIP1/ZIP2/UZP1/TRN1, ADD/SUB/CMEQ/EOR/ORR (vector), CNT.
        using var s = RunToDone(a =>
        {
            a.MovImm(X(2), 0x8070_6050_4030_2010);
            a.MovImm(X(3), 0xF1F2_F3F4_F5F6_F7F8);
            a.Emit(Copy(q: true, op: false, imm5: 0b01000, imm4: 0b0001, rd: 0, rn: 2));  // dup v0.2d, x2
            a.Emit(Copy(q: true, op: false, imm5: 0b11000, imm4: 0b0011, rd: 0, rn: 3));  // ins v0.d[1], x3
            a.Emit(Copy(q: true, op: false, imm5: 0b00110, imm4: 0b0000, rd: 1, rn: 0));  // dup v1.8h, v0.h[1]
            a.Emit(Copy(q: false, op: false, imm5: 0b01101, imm4: 0b0111, rd: 4, rn: 0)); // umov w4, v0.b[6]
            a.Emit(Copy(q: true, op: false, imm5: 0b11100, imm4: 0b0101, rd: 5, rn: 0));  // smov x5, v0.s[3]
            a.Emit(Copy(q: true, op: true, imm5: 0b00011, imm4: 0b1111, rd: 2, rn: 0));   // ins v2.b[1], v0.b[15]
            a.Emit(Ext(q: true, rd: 3, rn: 0, rm: 1, imm4: 3));                          // ext v3.16b, v0.16b, v1.16b, #3
            a.Emit(Permute(q: true, size: 2, opcode: 0b011, rd: 4, rn: 0, rm: 1));       // zip1 v4.4s, v0.4s, v1.4s
            a.Emit(Permute(q: true, size: 2, opcode: 0b111, rd: 5, rn: 0, rm: 1));       // zip2 v5.4s, v0.4s, v1.4s
            a.Emit(Permute(q: true, size: 1, opcode: 0b001, rd: 6, rn: 0, rm: 1));       // uzp1 v6.8h, v0.8h, v1.8h
            a.Emit(Permute(q: false, size: 0, opcode: 0b010, rd: 7, rn: 0, rm: 1));      // trn1 v7.8b, v0.8b, v1.8b
            a.Emit(ThreeSame(q: true, u: false, size: 0, opcode: 0b10000, rd: 8, rn: 0, rm: 0));  // add v8.16b, v0.16b, v0.16b
            a.Emit(ThreeSame(q: true, u: true, size: 3, opcode: 0b10000, rd: 9, rn: 0, rm: 1));   // sub v9.2d, v0.2d, v1.2d
            a.Emit(ThreeSame(q: true, u: true, size: 1, opcode: 0b10001, rd: 10, rn: 0, rm: 1));  // cmeq v10.8h, v0.8h, v1.8h
            a.Emit(ThreeSame(q: true, u: true, size: 0, opcode: 0b00011, rd: 11, rn: 0, rm: 1));  // eor v11.16b, v0.16b, v1.16b
            a.Emit(ThreeSame(q: false, u: false, size: 2, opcode: 0b00011, rd: 12, rn: 0, rm: 0)); // mov v12.8b, v0.8b (orr)
            a.Emit(TwoRegisterMisc(q: true, u: false, size: 0, opcode: 0b00101, rd: 13, rn: 0)); // cnt v13.16b, v0.16b
            a.Emit(TwoRegisterMisc(q: true, u: false, size: 2, opcode: 0b01001, rd: 14, rn: 12)); // cmeq v14.4s, v12.4s, #0
        });
        var v = s.Vcpus[0];
        UInt128 v0 = U128(0xF1F2_F3F4_F5F6_F7F8, 0x8070_6050_4030_2010);
        Assert.Equal(v0, V(v, 0));
        Assert.Equal(U128(0x4030_4030_4030_4030, 0x4030_4030_4030_4030), V(v, 1));
        Assert.Equal(0x70UL, v.GetX(4));
        Assert.Equal(0xFFFF_FFFF_F1F2_F3F4UL, v.GetX(5));
        Assert.Equal((UInt128)0xF100, V(v, 2)); // v2 was 0: only b[1] = v0.b[15] changes
        Assert.Equal((v0 >> 24) | (V(v, 1) << 104), V(v, 3));
        Assert.Equal(U128(0x4030_4030_8070_6050, 0x4030_4030_4030_2010), V(v, 4));
        Assert.Equal(U128(0x4030_4030_F1F2_F3F4, 0x4030_4030_F5F6_F7F8), V(v, 5));
        Assert.Equal(U128(0x4030_4030_4030_4030, 0xF3F4_F7F8_6050_2010), V(v, 6));
        Assert.Equal((UInt128)0x3070_3050_3030_3010UL, V(v, 7));
        Assert.Equal(U128(0xE2E4_E6E8_EAEC_EEF0, 0x00E0_C0A0_8060_4020), V(v, 8));
        Assert.Equal(U128(0xF1F2_F3F4_F5F6_F7F8 - 0x4030_4030_4030_4030, 0x8070_6050_4030_2010 - 0x4030_4030_4030_4030), V(v, 9));
        Assert.Equal(U128(0, 0x0000_0000_FFFF_0000), V(v, 10));
        Assert.Equal(v0 ^ V(v, 1), V(v, 11));
        Assert.Equal((UInt128)0x8070_6050_4030_2010UL, V(v, 12));
        Assert.Equal(U128(0x0505_0605_0606_0705, 0x0103_0202_0102_0101), V(v, 13));
        Assert.Equal(U128(ulong.MaxValue, 0), V(v, 14));
    }

    [Fact]
    public void On_an_sve_vcpu_a_simd_write_zeroes_the_z_register_above_128_bits()
    {
        // Arm ARM V[] assignment with SVE: Z bits above 128 are zeroed (up to the current VL, or MAX_VL under
        // Unpredictable_SVEZEROUPPER); Zn's low 128 bits are Vn (one storage, Arm64Sve).
        using var s = new Arm64TestVm(a =>
        {
            SetFpen(a, 3);
            a.Emit(ModifiedImmediate(q: true, op: false, cmode: 0b1110, imm8: 0x5A, rd: 3)); // movi v3.16b, #0x5a
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.NeoverseV1 });
        var v = s.AddVcpu(1u << KvmArm64Constants.KVM_ARM_VCPU_SVE);
        v.FinalizeSve();
        v.SetOneRegBytes(KvmArm64Sve.KVM_REG_ARM64_SVE_ZREG(3, 0), Enumerable.Repeat((byte)0xEE, 256).ToArray());
        Assert.Equal(Arm64Guest.UcallDone, BitConverter.ToUInt64(v.RunBounded().MmioData));
        byte[] z = v.GetOneRegBytes(KvmArm64Sve.KVM_REG_ARM64_SVE_ZREG(3, 0));
        Assert.All(z.AsSpan(0, 16).ToArray(), b => Assert.Equal(0x5A, b));
        Assert.All(z.AsSpan(16).ToArray(), b => Assert.Equal(0, b));
    }

    [Fact]
    public void Popcount_as_compilers_emit_it_cnt_addv_fmov_and_the_other_reductions()
    {
        // __builtin_popcountll: fmov d0, x2; cnt v0.8b, v0.8b; addv b0, v0.8b; fmov w3, s0 (C7.2 CNT, ADDV, FMOV).
        // Then UADDLV h1, v5.16b, SMAXV b2, v5.16b and UMINV s4, v6.4s on known vectors.
        using var s = RunToDone(a =>
        {
            a.MovImm(X(2), 0xF0F0_0000_0001_0003);
            a.Emit(FpInt(sf: true, D, rmode: 0, opcode: 7, rd: 0, rn: 2));                   // fmov d0, x2
            a.Emit(TwoRegisterMisc(q: false, u: false, size: 0, opcode: 0b00101, rd: 0, rn: 0)); // cnt v0.8b, v0.8b
            a.Emit(AcrossLanes(q: false, u: false, size: 0, opcode: 0b11011, rd: 0, rn: 0));  // addv b0, v0.8b
            a.Emit(FpInt(sf: false, S, rmode: 0, opcode: 6, rd: 3, rn: 0));                  // fmov w3, s0
            a.Emit(ModifiedImmediate(q: true, op: false, cmode: 0b1110, imm8: 0xF0, rd: 5));  // movi v5.16b, #0xf0
            a.Emit(AcrossLanes(q: true, u: true, size: 0, opcode: 0b00011, rd: 1, rn: 5));    // uaddlv h1, v5.16b
            a.Emit(AcrossLanes(q: true, u: false, size: 0, opcode: 0b01010, rd: 2, rn: 5));   // smaxv b2, v5.16b
            a.Emit(ModifiedImmediate(q: true, op: false, cmode: 0b0000, imm8: 0x07, rd: 6));  // movi v6.4s, #7
            a.MovImm(X(7), 3);
            a.Emit(Copy(q: true, op: false, imm5: 0b01100, imm4: 0b0011, rd: 6, rn: 7));     // ins v6.s[1], w7
            a.Emit(AcrossLanes(q: true, u: true, size: 2, opcode: 0b11010, rd: 4, rn: 6));    // uminv s4, v6.4s
        });
        var v = s.Vcpus[0];
        Assert.Equal((ulong)System.Numerics.BitOperations.PopCount(0xF0F0_0000_0001_0003UL), v.GetX(3));
        Assert.Equal((UInt128)(16 * 0xF0), V(v, 1));
        Assert.Equal((UInt128)0xF0, V(v, 2));   // 0xF0 is -16 as a signed byte: the maximum of equal lanes
        Assert.Equal((UInt128)3, V(v, 4));      // lanes 7, 3, 7, 7
    }
}
