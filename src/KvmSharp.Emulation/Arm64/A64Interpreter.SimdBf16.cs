// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The AdvSIMD and scalar BFloat16 instructions (FEAT_BF16, ID_AA64ISAR1_EL1.BF16 bits 47:44 ≥ 1; Arm ARM DDI 0487
/// C7.2 BFCVT, BFCVTN/BFCVTN2, BFDOT (vector, by element), BFMLALB/BFMLALT (vector, by element), BFMMLA) and the
/// AdvSIMD Int8 matrix multiply instructions (FEAT_I8MM, ID_AA64ISAR1_EL1.I8MM bits 55:52 ≥ 1; C7.2 SMMLA, UMMLA,
/// USMMLA, USDOT (vector, by element), SUDOT (by element); A64Interpreter.SimdI8mm.cs). <see cref="TrySimdBf16"/> is
/// called first by <see cref="TrySimdFp"/>; each encoding is UNDEFINED ("if !HaveBF16Ext() then UNDEFINED", "if
/// !HaveInt8MatMulExt() then UNDEFINED") when the emulated host's ID_AA64ISAR1_EL1 lacks the feature, before
/// CheckFPAdvSIMDEnabled64; as for SVE, the guest's writable copy of the register does not change what the CPU runs.
/// The element operations are the shared BFloat16 ones (A64Interpreter.Bf16Arithmetic.cs): BFDotAdd without FEAT_EBF16
/// for BFDOT/BFMMLA, BFMulAddH for BFMLALB/T, FPConvertBF for BFCVT/BFCVTN.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>One optional AdvSIMD encoding: insn &amp; Mask == Value, the ID_AA64ISAR1_EL1 field at Shift that must be ≥ 1; Q1: Q = 0 is unallocated.</summary>
    private readonly record struct SimdOptionalClass(uint Mask, uint Value, int Shift, bool Q1, Action<A64Interpreter, uint> Run);

    /// <summary>ID_AA64ISAR1_EL1.BF16 (bits 47:44) and I8MM (bits 55:52).</summary>
    private const int Isar1Bf16 = 44, Isar1I8mm = 52;

    private static readonly SimdOptionalClass[] SimdOptionalClasses =
    [
        // C4.1 "Floating-point data-processing (1 source)": BFCVT (00011110 01 1 0000 110 10000 Rn Rd).
        new(0xFFFF_FC00, 0x1E63_4000, Isar1Bf16, false, (c, i) => c.SimdBfConvertScalar(i)),
        // "Advanced SIMD two-register miscellaneous": BFCVTN/BFCVTN2 (0 Q 0 01110 10 10000 10110 10 Rn Rd).
        new(0xBFFF_FC00, 0x0EA1_6800, Isar1Bf16, false, (c, i) => c.SimdBfConvertNarrow(i)),
        // "Advanced SIMD three same (extra)" (0 Q U 01110 size 0 Rm 1 opcode 1 Rn Rd): BFDOT (U 1 size 01 opcode 1111),
        // BFMLALB/T (1 11 1111), BFMMLA (1 01 1101, Q = 1); SMMLA (0 10 0100), USMMLA (0 10 0101), UMMLA (1 10 0100), Q = 1;
        // USDOT (0 10 0011).
        new(0xBFE0_FC00, 0x2E40_FC00, Isar1Bf16, false, (c, i) => c.SimdBfDot(i, indexed: false)),
        new(0xBFE0_FC00, 0x2EC0_FC00, Isar1Bf16, false, (c, i) => c.SimdBfMulAddLong(i, indexed: false)),
        new(0xBFE0_FC00, 0x2E40_EC00, Isar1Bf16, true, (c, i) => c.SimdBfMatMul(i)),
        new(0xBFE0_FC00, 0x0E80_A400, Isar1I8mm, true, (c, i) => c.SimdIntMatMul(i, nUnsigned: false, mUnsigned: false)),
        new(0xBFE0_FC00, 0x0E80_AC00, Isar1I8mm, true, (c, i) => c.SimdIntMatMul(i, nUnsigned: true, mUnsigned: false)),
        new(0xBFE0_FC00, 0x2E80_A400, Isar1I8mm, true, (c, i) => c.SimdIntMatMul(i, nUnsigned: true, mUnsigned: true)),
        new(0xBFE0_FC00, 0x0E80_9C00, Isar1I8mm, false, (c, i) => c.SimdMixedDot(i, indexed: false, sudot: false)),
        // "Advanced SIMD vector x indexed element" (0 Q U 01111 size L M Rm opcode H 0 Rn Rd), U 0 opcode 1111: SUDOT
        // (size 00), BFDOT (01), USDOT (10), BFMLALB/T (11).
        new(0xBFC0_F400, 0x0F00_F000, Isar1I8mm, false, (c, i) => c.SimdMixedDot(i, indexed: true, sudot: true)),
        new(0xBFC0_F400, 0x0F40_F000, Isar1Bf16, false, (c, i) => c.SimdBfDot(i, indexed: true)),
        new(0xBFC0_F400, 0x0F80_F000, Isar1I8mm, false, (c, i) => c.SimdMixedDot(i, indexed: true, sudot: false)),
        new(0xBFC0_F400, 0x0FC0_F000, Isar1Bf16, false, (c, i) => c.SimdBfMulAddLong(i, indexed: true)),
    ];

    /// <summary>An ID_AA64ISAR1_EL1 field of the emulated host (<see cref="Arm64CpuModel.Aa64Isar1"/>).</summary>
    private uint Isar1Field(int shift) => (uint)(cpu.IdRegs.Model.Aa64Isar1 >> shift) & 0xF;

    /// <summary>
    /// An optional AdvSIMD/scalar encoding (BF16 or I8MM): UNDEFINED without its feature (or with Q = 0 where only Q = 1
    /// is allocated), else CheckFPAdvSIMDEnabled64 and execute. False: not one of these encodings.
    /// </summary>
    private bool TrySimdBf16(uint insn)
    {
        SimdOptionalClass? match = null;
        foreach (var c in SimdOptionalClasses)
        {
            if ((insn & c.Mask) != c.Value) continue;
            match = c;
            break;
        }
        if (match is not { } cls) return false;
        if (Isar1Field(cls.Shift) < 1 || (cls.Q1 && ((insn >> 30) & 1) == 0)) return UndefinedTrue();
        if (FpTrapped()) return true;
        cls.Run(this, insn);
        Next();
        return true;
    }

    /// <summary>Q ? the whole result : its low 64 bits, the rest of the register zeroed (V[d, datasize] = result).</summary>
    private void SetVq(int rd, UInt128 result, uint insn) => SetV(rd, ((insn >> 30) & 1) != 0 ? result : result & ulong.MaxValue);

    /// <summary>BFCVT (scalar): Hd = FPConvertBF(Sn, FPCR), the rest of Vd zeroed (C7.2 BFCVT).</summary>
    private void SimdBfConvertScalar(uint insn) =>
        SetV((int)(insn & 31), FpConvertBf((uint)Elem(cpu.Vregs[(insn >> 5) & 31], 0, 32)));

    /// <summary>
    /// BFCVTN (Q 0: Vd.4H = FPConvertBF of Vn.4S, the upper half zeroed) and BFCVTN2 (Q 1: into the upper half,
    /// Vpart[d, 1], the lower half kept) (C7.2 BFCVTN).
    /// </summary>
    private void SimdBfConvertNarrow(uint insn)
    {
        int rd = (int)(insn & 31);
        UInt128 n = cpu.Vregs[(insn >> 5) & 31];
        ulong r = 0;
        for (int e = 0; e < 4; e++) r |= FpConvertBf((uint)Elem(n, e, 32)) << (16 * e);
        bool upper = ((insn >> 30) & 1) != 0;
        SetV(rd, upper ? (cpu.Vregs[rd] & ulong.MaxValue) | ((UInt128)r << 64) : r);
    }

    /// <summary>
    /// BFDOT (vector: Vd.S[e] = BFDotAdd(Vd.S[e], Vn.H[2e], Vn.H[2e+1], Vm.H[2e], Vm.H[2e+1]); by element: Vm = M:Rm and
    /// the pair H:L of the whole 128-bit Vm for every e) (C7.2 BFDOT).
    /// </summary>
    private void SimdBfDot(uint insn, bool indexed)
    {
        int rd = (int)(insn & 31), index = (int)((((insn >> 11) & 1) << 1) | ((insn >> 21) & 1));
        UInt128 d = cpu.Vregs[rd], n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], result = 0;
        int elements = ((insn >> 30) & 1) != 0 ? 4 : 2;
        for (int e = 0; e < elements; e++)
        {
            int s = indexed ? index : e;
            uint r = BfDotAdd((uint)Elem(d, e, 32), (uint)Elem(n, 2 * e, 16), (uint)Elem(n, 2 * e + 1, 16),
                (uint)Elem(m, 2 * s, 16), (uint)Elem(m, 2 * s + 1, 16));
            result = WithElem(result, e, 32, r);
        }
        SetVq(rd, result, insn);
    }

    /// <summary>
    /// BFMLALB (Q 0) / BFMLALT (Q 1) (vector: Vd.S[e] = BFMulAddH(Vd.S[e], Vn.H[2e + Q], Vm.H[2e + Q]); by element: Vm
    /// = Rm (V0–V15) and the element H:L:M of Vm for every e); always 128 bits (C7.2 BFMLALB, BFMLALT).
    /// </summary>
    private void SimdBfMulAddLong(uint insn, bool indexed)
    {
        int rd = (int)(insn & 31), sel = (int)((insn >> 30) & 1);
        int index = (int)((((insn >> 11) & 1) << 2) | (((insn >> 21) & 1) << 1) | ((insn >> 20) & 1));
        UInt128 d = cpu.Vregs[rd], n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & (indexed ? 15u : 31u)];
        UInt128 result = 0;
        for (int e = 0; e < 4; e++)
        {
            int s = indexed ? index : 2 * e + sel;
            result = WithElem(result, e, 32, BfMulAddH(Elem(d, e, 32), Elem(n, 2 * e + sel, 16), Elem(m, s, 16)));
        }
        SetV(rd, result);
    }

    /// <summary>
    /// BFMMLA (C7.2; BFMatMulAdd): Vd holds a 2×2 single matrix, Vn and Vm 2×4 BFloat16 matrices by rows; result[i][j] =
    /// BFDotAdd(BFDotAdd(Vd[i][j], n[i][0..1], m[j][0..1]), n[i][2..3], m[j][2..3]) — SVE BFMMLA on one segment.
    /// </summary>
    private void SimdBfMatMul(uint insn)
    {
        int rd = (int)(insn & 31);
        UInt128 d = cpu.Vregs[rd], n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], result = 0;
        for (int i = 0; i < 2; i++)
        {
            for (int j = 0; j < 2; j++)
            {
                uint sum = (uint)Elem(d, 2 * i + j, 32);
                for (int k = 0; k < 2; k++)
                {
                    int x = 4 * i + 2 * k, y = 4 * j + 2 * k;
                    sum = BfDotAdd(sum, (uint)Elem(n, x, 16), (uint)Elem(n, x + 1, 16), (uint)Elem(m, y, 16), (uint)Elem(m, y + 1, 16));
                }
                result = WithElem(result, 2 * i + j, 32, sum);
            }
        }
        SetV(rd, result);
    }
}
