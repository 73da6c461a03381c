// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Sve;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SVE instructions of the A64 interpreter (A64Interpreter.Sve.cs, .SveMemoryFp.cs), one group per test, with edge
/// cases picked by hand: WHILE at its boundaries (32-bit wrap, WHILELE up to the largest value), PTRUE patterns,
/// PTEST's N/Z/C, the element counts at each ZCR_EL1.LEN, predicated integer operations and reductions, loads and
/// stores with inactive elements, FADDA's order against FADDV's tree, and the enable rule (CPACR_EL1.ZEN, FPEN, no
/// SVE). Encodings are GNU as output (aarch64-linux-gnu-as -march=armv8.2-a+sve); the expected values are the Arm ARM
/// pseudocode's. The vCPU is the Neoverse-V1-like model (128- and 256-bit vectors). Whole compiled loops are compared
/// with qemu in <see cref="Arm64SveCorpusTests"/>.
/// </summary>
public class Arm64SveInstructionTests
{
    private const uint SveFeature = 1u << KvmArm64Constants.KVM_ARM_VCPU_SVE;
    private const uint MrsNzcvX3 = 0xD53B4203; // mrs x3, nzcv

    /// <summary>
    /// Runs <paramref name="words"/> then a UCALL_DONE on an SVE vCPU (CPACR_EL1 = <paramref name="cpacr"/>, ZCR_EL1.LEN
    /// = <paramref name="len"/>); the synchronous vector (VBAR_EL1 = 0, current EL with SP_ELx: +0x200) is a
    /// UCALL_FAIL. The caller disposes the VM.
    /// </summary>
    private static Arm64TestVm Run(uint[] words, Action<KvmSharp.Vcpu>? setUp = null, ulong len = 1, ulong cpacr = 0x33_0000, bool sve = true, int? maxVq = null, Action<Arm64TestVm>? memory = null)
    {
        var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseV1, words);
        var v = s.AddVcpu(sve ? SveFeature : 0);
        if (sve)
        {
            if (maxVq is int vq) v.SetSveVectorLengths([(1UL << vq) - 1, 0, 0, 0, 0, 0, 0, 0]);
            v.FinalizeSve();
            v.SetOneReg(ZCR_EL1, len);
        }
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, cpacr);
        setUp?.Invoke(v);
        memory?.Invoke(s);
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        return s;
    }

    private static bool Done(Arm64TestVm s) => s.Vcpus[0].GetOneReg(KvmArm64Regs.X(9)) == Arm64Guest.UcallDone;

    private static ulong X(Arm64TestVm s, int n) => s.Vcpus[0].GetOneReg(KvmArm64Regs.X(n));

    private static byte[] Pr(Arm64TestVm s, int n) => s.Vcpus[0].GetOneRegBytes(KVM_REG_ARM64_SVE_PREG(n, 0))[..4];

    private static byte[] Zr(Arm64TestVm s, int n) => s.Vcpus[0].GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(n, 0))[..32];

    private static void SetP(KvmSharp.Vcpu v, int n, params byte[] bytes)
    {
        byte[] p = new byte[32];
        bytes.CopyTo(p, 0);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_PREG(n, 0), p);
    }

    private static void SetZ32(KvmSharp.Vcpu v, int n, params uint[] elements)
    {
        byte[] z = new byte[256];
        for (int i = 0; i < elements.Length; i++) BitConverter.TryWriteBytes(z.AsSpan(4 * i), elements[i]);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(n, 0), z);
    }

    private static uint Z32(Arm64TestVm s, int n, int e) => BitConverter.ToUInt32(Zr(s, n), 4 * e);

    [Theory]
    // whilelo p0.s, x1, x2: two, none, all eight .s elements (256-bit vectors); NZCV = PredTest(all, result).
    [InlineData(0x25A21C20u, 5UL, 7UL, 1UL, new byte[] { 0x11, 0, 0, 0 }, 0xAUL)]
    [InlineData(0x25A21C20u, 7UL, 7UL, 1UL, new byte[] { 0, 0, 0, 0 }, 0x6UL)]
    [InlineData(0x25A21C20u, 0UL, 100UL, 1UL, new byte[] { 0x11, 0x11, 0x11, 0x11 }, 0x8UL)]
    // At 128 bits only four elements, and the P register's bits beyond the vector length are zero.
    [InlineData(0x25A21C20u, 0UL, 100UL, 0UL, new byte[] { 0x11, 0x11, 0, 0 }, 0x8UL)]
    // whilelo p0.b, w1, w2: 32-bit operands (the top of x1 ignored); 0xFFFFFFFF < 0xFFFFFFFF fails, and once false stays false.
    [InlineData(0x25220C20u, 0x1234_0000_FFFF_FFFEUL, 0xFFFF_FFFFUL, 1UL, new byte[] { 0x01, 0, 0, 0 }, 0xAUL)]
    // whilelt p0.s, x1, x2: signed, −2 … 0 below 1.
    [InlineData(0x25A21420u, 0xFFFF_FFFF_FFFF_FFFEUL, 1UL, 1UL, new byte[] { 0x11, 0x01, 0, 0 }, 0xAUL)]
    // whilele p0.d, x1, x2 up to INT64_MAX: operand1 wraps to INT64_MIN, still ≤, so every element is true.
    [InlineData(0x25E21430u, 0x7FFF_FFFF_FFFF_FFFEUL, 0x7FFF_FFFF_FFFF_FFFFUL, 1UL, new byte[] { 1, 1, 1, 1 }, 0x8UL)]
    public void While_sets_the_leading_elements_and_the_flags_of_predtest(uint insn, ulong x1, ulong x2, ulong len, byte[] expected, ulong nzcv)
    {
        using var s = Run([insn, MrsNzcvX3], v =>
        {
            SetP(v, 0, 0xFF, 0xFF, 0xFF, 0xFF);
            v.SetOneReg(KvmArm64Regs.X(1), x1);
            v.SetOneReg(KvmArm64Regs.X(2), x2);
        }, len);
        Assert.True(Done(s));
        Assert.Equal(expected, Pr(s, 0));
        Assert.Equal(nzcv << 28, X(s, 3));
    }

    [Theory]
    [InlineData(1UL, new byte[] { 0x11, 0x01, 0, 0 }, new byte[] { 0x55, 0x55, 0x55, 0x55 }, new byte[] { 0x11, 0x11, 0x11, 0 })]
    [InlineData(0UL, new byte[] { 0x11, 0x01, 0, 0 }, new byte[] { 0x55, 0x55, 0, 0 }, new byte[] { 0x11, 0x01, 0, 0 })]
    public void Ptrue_patterns_follow_decodepredcount(ulong len, byte[] vl3, byte[] pow2, byte[] mul3)
    {
        using var s = Run([
            0x2598E060, // ptrue p0.s, vl3
            0x25D8E121, // ptrue p1.d, vl16 (fewer elements: none)
            0x2558E002, // ptrue p2.h, pow2
            0x2598E3C3, // ptrue p3.s, mul3
            0x2519E164, // ptrues p4.b, vl64 (none): N=0 Z=1 C=1
            MrsNzcvX3,
        ], len: len);
        Assert.Equal(vl3, Pr(s, 0));
        Assert.Equal(new byte[4], Pr(s, 1));
        Assert.Equal(pow2, Pr(s, 2));
        Assert.Equal(mul3, Pr(s, 3));
        Assert.Equal(new byte[4], Pr(s, 4));
        Assert.Equal(0x6UL << 28, X(s, 3));
    }

    [Theory]
    [InlineData((byte)0x06, 0x2UL)] // first active false, last active false: N=0 Z=0 C=1
    [InlineData((byte)0x09, 0x8UL)] // first and last true: N=1 Z=0 C=0
    [InlineData((byte)0xF0, 0x6UL)] // nothing true under the mask: N=0 Z=1 C=1
    public void Ptest_sets_n_z_c_from_the_first_and_last_active_elements(byte p1, ulong nzcv)
    {
        using var s = Run([0x2550C020 /* ptest p0, p1.b */, MrsNzcvX3], v =>
        {
            SetP(v, 0, 0x0F);
            SetP(v, 1, p1);
        });
        Assert.Equal(nzcv << 28, X(s, 3));
    }

    [Theory]
    [InlineData(0UL, null, 16UL)]
    [InlineData(1UL, null, 32UL)]
    [InlineData(15UL, null, 32UL)] // ZCR_EL1.LEN above the implementation: the largest implemented length
    [InlineData(1UL, 1, 16UL)]     // KVM_REG_ARM64_SVE_VLS = 128 bits: ZCR_EL2 caps what ZCR_EL1 asks
    public void Element_counts_follow_the_effective_vector_length(ulong len, int? maxVq, ulong vlBytes)
    {
        using var s = Run([
            0x0420E3E0, // cntb x0
            0x04A2E3E1, // cntw x1, all, mul #3
            0x04F0E3E2, // incd x2
            0x04BF5024, // rdvl x4, #1
        ], v => v.SetOneReg(KvmArm64Regs.X(2), 100), len, maxVq: maxVq);
        Assert.Equal(vlBytes, X(s, 0));
        Assert.Equal(vlBytes / 4 * 3, X(s, 1));
        Assert.Equal(100 + vlBytes / 8, X(s, 2));
        Assert.Equal(vlBytes, X(s, 4));
    }

    [Fact]
    public void Predicated_integer_operations_reductions_compares_sel_and_lastb()
    {
        using var s = Run([
            0x04800022, // add z2.s, p0/m, z2.s, z1.s
            0x04812043, // uaddv d3, p0, z2.s
            0x04882024, // smaxv s4, p0, z1.s
            0x25800031, // cmpgt p1.s, p0/z, z1.s, #0
            MrsNzcvX3,
            0x05A2C425, // sel z5.s, p1, z1.s, z2.s
            0x05A1A426, // lastb w6, p1, z1.s
            0x04E343E6, // index z6.d, #-1, #3
        ], v =>
        {
            SetP(v, 0, 0x11, 0x01); // elements 0, 1, 2 of 4 (.s, 128-bit vectors)
            SetZ32(v, 1, 5, unchecked((uint)-3), 7, 0);
            SetZ32(v, 2, 10, 20, 30, 40);
        }, len: 0);
        Assert.True(Done(s));
        Assert.Equal([15u, 17, 37, 40], Enumerable.Range(0, 4).Select(e => Z32(s, 2, e)).ToArray()); // element 3 inactive: kept
        Assert.Equal(69UL, BitConverter.ToUInt64(Zr(s, 3)));
        Assert.Equal(0UL, BitConverter.ToUInt64(Zr(s, 3), 8)); // a scalar result zeroes the rest of the vector
        Assert.Equal(7u, Z32(s, 4, 0));
        Assert.Equal(new byte[] { 0x01, 0x01, 0, 0 }, Pr(s, 1)); // 5 > 0, −3, 7 > 0; element 3 inactive: false
        Assert.Equal(0x8UL << 28, X(s, 3));                    // PredTest(p0, p1): first true, last active (2) true
        Assert.Equal([5u, 20 - 3, 7, 40], Enumerable.Range(0, 4).Select(e => Z32(s, 5, e)).ToArray());
        Assert.Equal(7UL, X(s, 6));
        Assert.Equal(ulong.MaxValue, BitConverter.ToUInt64(Zr(s, 6)));
        Assert.Equal(2UL, BitConverter.ToUInt64(Zr(s, 6), 8));
        Assert.Equal(new byte[16], Zr(s, 6)[16..]); // beyond the 128-bit vector length: zero
    }

    [Fact]
    public void Loads_and_stores_skip_inactive_elements()
    {
        using var s = Run([
            0xA5424027, // ld1w {z7.s}, p0/z, [x1, x2, lsl #2]
            0xE5424067, // st1w {z7.s}, p0, [x3, x2, lsl #2]
            0x8541C028, // ld1rw {z8.s}, p0/z, [x1, #4]
        ], v =>
        {
            SetP(v, 0, 0x01, 0x11); // elements 0, 2, 3
            v.SetOneReg(KvmArm64Regs.X(1), 0x4000);
            v.SetOneReg(KvmArm64Regs.X(2), 2);
            v.SetOneReg(KvmArm64Regs.X(3), 0x5000);
        }, len: 0, memory: m =>
        {
            byte[] data = new byte[64];
            for (int i = 0; i < 16; i++) BitConverter.TryWriteBytes(data.AsSpan(4 * i), (uint)i);
            m.Host.Write(0x4000, data);
            m.Host.Write(0x5000, Enumerable.Repeat((byte)0xEE, 32).ToArray());
        });
        Assert.Equal([2u, 0, 4, 5], Enumerable.Range(0, 4).Select(e => Z32(s, 7, e)).ToArray());
        byte[] stored = new byte[16];
        s.Host.Read(0x5008, stored);
        Assert.Equal([2u, 0xEEEE_EEEE, 4, 5], Enumerable.Range(0, 4).Select(i => BitConverter.ToUInt32(stored, 4 * i)).ToArray());
        Assert.Equal([1u, 0, 1, 1], Enumerable.Range(0, 4).Select(e => Z32(s, 8, e)).ToArray());
    }

    [Fact]
    public void Fadda_adds_in_element_order_and_faddv_pairwise()
    {
        float[] values = [1e8f, 1f, -1e8f, 1f];
        using var s = Run([
            0x65982020, // fadda s0, p0, s0, z1.s
            0x65802022, // faddv s2, p0, z1.s
        ], v =>
        {
            SetP(v, 0, 0x11, 0x11);
            SetZ32(v, 1, [.. values.Select(BitConverter.SingleToUInt32Bits)]);
            SetZ32(v, 0, 0);
        }, len: 0);
        // ((0 + 1e8) + 1) − 1e8 + 1 = 1 (1e8 + 1 rounds to 1e8); (1e8 + 1) + (−1e8 + 1) = 0.
        Assert.Equal(1f, BitConverter.UInt32BitsToSingle(Z32(s, 0, 0)));
        Assert.Equal(0f, BitConverter.UInt32BitsToSingle(Z32(s, 2, 0)));
    }

    [Fact]
    public void A_z_write_zeroes_the_bits_beyond_the_current_vector_length()
    {
        using var s = Run([0x25B8C020 /* mov z0.s, #1 */], v => v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0), Enumerable.Repeat((byte)0xFF, 256).ToArray()), len: 0);
        Assert.Equal([1u, 1, 1, 1], Enumerable.Range(0, 4).Select(e => Z32(s, 0, e)).ToArray());
        Assert.Equal(new byte[16], Zr(s, 0)[16..]);
    }

    [Theory]
    [InlineData(0x30_0000UL, true, 0x19UL)]  // ZEN = 00: EL1 traps (EC 0x19, SVE access)
    [InlineData(0x20_0000UL, true, 0x19UL)]  // ZEN = 10: EL1 traps too
    [InlineData(0x31_0000UL, true, null)]    // ZEN = 01: only EL0 traps
    [InlineData(0x33_0000UL, true, null)]    // ZEN = 11: nothing traps
    [InlineData(0x03_0000UL, true, 0x07UL)]  // ZEN allows, FPEN = 00: the FP/SIMD trap (EC 0x07) comes next
    [InlineData(0x33_0000UL, false, 0x00UL)] // no SVE feature: UNDEFINED (EC 0x00)
    public void Sve_instructions_follow_cpacr_zen_then_fpen_and_are_undefined_without_sve(ulong cpacr, bool sve, ulong? ec)
    {
        using var s = Run([0x0420E3E0 /* cntb x0 */], cpacr: cpacr, sve: sve);
        var v = s.Vcpus[0];
        if (ec is null)
        {
            Assert.True(Done(s));
            Assert.Equal(32UL, X(s, 0));
            return;
        }
        Assert.False(Done(s));
        Assert.Equal(ec, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
        Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
    }
}
