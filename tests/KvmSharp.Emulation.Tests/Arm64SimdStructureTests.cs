// SPDX-License-Identifier: MIT
using KvmSharp.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.A64SimdEncoder;
using static KvmSharp.Emulation.Tests.Arm64SimdFpTests;
using static KvmSharp.Emulation.Tests.Arm64SimdTests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The A64 interpreter's interleaving and single-structure SIMD loads and stores (Arm ARM C6.2 LD2/LD3/LD4,
/// ST2/ST3, LD1R/LD2R, LD1/ST1/LD4 (single structure)). Emulator-only (the host is x86). Memory at Src holds the byte
/// values 0, 1, 2, … so each expected lane is computed from its offset.
/// </summary>
public class Arm64SimdStructureTests
{
    private static readonly byte[] Counting = Enumerable.Range(0, 64).Select(i => (byte)i).ToArray();

    private static ulong Bytes(int offset, int count, int stride = 1)
    {
        ulong r = 0;
        for (int i = 0; i < count; i++) r |= (ulong)(byte)(offset + i * stride) << (8 * i);
        return r;
    }

    private static uint Word(int k) => (uint)Bytes(4 * k, 4);

    private static UInt128 Words(int a, int b, int c, int d) => U128(((ulong)Word(d) << 32) | Word(c), ((ulong)Word(b) << 32) | Word(a));

    [Fact]
    public void Ld2_ld3_ld4_deinterleave_and_st2_st3_interleave_back()
    {
        // C6.2 LD2/LD3/LD4, ST2/ST3 (multiple structures): element e of register s at (e × selem + s) × ebytes;
        // post-index by the transfer size (Rm 31) or by Xm.
        using var s = RunVectors([], g =>
        {
            g.MovImm(X(3), Src);
            g.MovImm(X(4), Dst);
            g.MovImm(X(5), Dst + 0x40);
            g.MovImm(X(6), 0x100);
            g.Emit(LdStMultiple(load: true, q: true, opcode: 0b1000, size: 2, rt: 0, rn: 2));              // ld2 {v0.4s, v1.4s}, [x2]
            g.Emit(LdStMultiple(load: true, q: true, opcode: 0b0100, size: 0, rt: 2, rn: 3, postRm: 31));  // ld3 {v2.16b-v4.16b}, [x3], #48
            g.Emit(LdStMultiple(load: true, q: false, opcode: 0b0000, size: 0, rt: 5, rn: 2));             // ld4 {v5.8b-v8.8b}, [x2]
            g.Emit(LdStMultiple(load: false, q: true, opcode: 0b1000, size: 2, rt: 0, rn: 4));             // st2 {v0.4s, v1.4s}, [x4]
            g.Emit(LdStMultiple(load: false, q: true, opcode: 0b0100, size: 0, rt: 2, rn: 5, postRm: 6));  // st3 {v2.16b-v4.16b}, [x5], x6
        }, setUp: vm => vm.Host.Write(Src, Counting));
        var v = s.Vcpus[0];
        Assert.Equal(Words(0, 2, 4, 6), V(v, 0));
        Assert.Equal(Words(1, 3, 5, 7), V(v, 1));
        for (int k = 0; k < 3; k++)
            Assert.Equal(U128(Bytes(k + 24, 8, 3), Bytes(k, 8, 3)), V(v, 2 + k));
        for (int k = 0; k < 4; k++)
            Assert.Equal((UInt128)Bytes(k, 8, 4), V(v, 5 + k)); // the 64-bit form zeroes the top half
        Assert.Equal(Src + 48, v.GetX(3));
        Assert.Equal(Dst + 0x140, v.GetX(5));
        byte[] mem = new byte[0x70];
        s.Host.Read(Dst, mem);
        Assert.Equal(Counting.AsSpan(0, 32).ToArray(), mem.AsSpan(0, 32).ToArray());
        Assert.Equal(Counting.AsSpan(0, 48).ToArray(), mem.AsSpan(0x40, 48).ToArray());
    }

    [Fact]
    public void Ld1r_ld2r_replicate_and_single_lane_forms_keep_the_other_lanes()
    {
        // C6.2 LD1R, LD2R (replicate; Q 0 zeroes the top half), LD1 {Vt.S}[1], ST1 {Vt.D}[1], LD4 {Vt.B-Vt4.B}[15].
        using var s = RunVectors([], g =>
        {
            g.MovImm(X(7), Src + 2);
            g.MovImm(X(8), Dst + 0x80);
            for (int r = 12; r <= 16; r++)
                g.Emit(ModifiedImmediate(q: true, op: true, cmode: 0b1110, imm8: 0xFF, rd: r));               // movi vR.2d, #-1
            g.Emit(LdStSingle(load: true, q: true, r: false, opcode: 0b110, s: false, size: 2, rt: 9, rn: 2));    // ld1r {v9.4s}, [x2]
            g.Emit(LdStSingle(load: true, q: false, r: true, opcode: 0b110, s: false, size: 1, rt: 10, rn: 7, postRm: 31)); // ld2r {v10.4h, v11.4h}, [x7], #4
            g.Emit(LdStSingle(load: true, q: false, r: false, opcode: 0b100, s: true, size: 0, rt: 12, rn: 2));   // ld1 {v12.s}[1], [x2]
            g.Emit(LdStMultiple(load: true, q: true, opcode: 0b0111, size: 3, rt: 0, rn: 2));                     // ld1 {v0.2d}, [x2]
            g.Emit(LdStSingle(load: false, q: true, r: false, opcode: 0b100, s: false, size: 1, rt: 0, rn: 8));   // st1 {v0.d}[1], [x8]
            g.Emit(LdStSingle(load: true, q: true, r: true, opcode: 0b001, s: true, size: 3, rt: 13, rn: 2));     // ld4 {v13.b-v16.b}[15], [x2]
        }, setUp: vm => vm.Host.Write(Src, Counting));
        var v = s.Vcpus[0];
        Assert.Equal(Words(0, 0, 0, 0), V(v, 9));
        Assert.Equal((UInt128)(Bytes(2, 2) * 0x0001_0001_0001_0001UL), V(v, 10));
        Assert.Equal((UInt128)(Bytes(4, 2) * 0x0001_0001_0001_0001UL), V(v, 11));
        Assert.Equal(Src + 6, v.GetX(7));
        Assert.Equal(U128(ulong.MaxValue, ((ulong)Word(0) << 32) | 0xFFFF_FFFF), V(v, 12));
        for (int k = 0; k < 4; k++)
            Assert.Equal(U128(0x00FF_FFFF_FFFF_FFFF | ((ulong)k << 56), ulong.MaxValue), V(v, 13 + k));
        byte[] mem = new byte[8];
        s.Host.Read(Dst + 0x80, mem);
        Assert.Equal(Counting.AsSpan(8, 8).ToArray(), mem);
    }

    [Fact]
    public void Ld1r_with_s_set_is_undefined()
    {
        // C6.2 LD1R: S = 1 is unallocated (the undef exception, EC 0x00).
        Assert.Equal(0UL, UndefinedEsrEc(LdStSingle(load: true, q: true, r: false, opcode: 0b110, s: true, size: 2, rt: 9, rn: 2)));
    }
}
