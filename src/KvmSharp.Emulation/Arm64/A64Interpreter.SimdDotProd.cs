// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The AdvSIMD instructions gated on ID_AA64ISAR0_EL1: SDOT/UDOT (vector, by element; FEAT_DotProd, DP bits 47:44 ≥ 1;
/// Arm ARM DDI 0487 C7.2 SDOT, UDOT) here and SQRDMLAH/SQRDMLSH (vector, by element, scalar; FEAT_RDM, RDM bits 31:28
/// ≥ 1; A64Interpreter.SimdRdm.cs). <see cref="TrySimdIsar0"/> is called by <see cref="TrySimdFp"/> after the
/// ID_AA64ISAR1_EL1 ones (A64Interpreter.SimdBf16.cs) and follows their pattern: UNDEFINED ("if !HaveDOTPExt() then
/// UNDEFINED", "if !HaveQRDMLAHExt() then UNDEFINED") when the emulated host's ID_AA64ISAR0_EL1 lacks the feature, or
/// for an unallocated size, before CheckFPAdvSIMDEnabled64. Every preset (Neoverse N1, V1, V2: their TRMs list
/// FEAT_DotProd and FEAT_RDM) has both, from the model's <see cref="Arm64CpuModel.Aa64Isar0"/>.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ID_AA64ISAR0_EL1.RDM (bits 31:28) and DP (bits 47:44).</summary>
    private const int Isar0Rdm = 28, Isar0Dp = 44;

    /// <summary>
    /// One ID_AA64ISAR0_EL1-gated AdvSIMD encoding: insn &amp; Mask == Value, the field at Shift that must be ≥ 1;
    /// SizeHs: only size 01 (H) and 10 (S) are allocated.
    /// </summary>
    private readonly record struct SimdIsar0Class(uint Mask, uint Value, int Shift, bool SizeHs, Action<A64Interpreter, uint> Run);

    private static readonly SimdIsar0Class[] SimdIsar0Classes =
    [
        // "Advanced SIMD three same (extra)" (0 Q U 01110 size 0 Rm 1 opcode 1 Rn Rd): SDOT (U 0 size 10 opcode 0010),
        // UDOT (U 1), SQRDMLAH (U 1 opcode 0000), SQRDMLSH (U 1 opcode 0001); the scalar form 01 U 11110 ….
        new(0xBFE0_FC00, 0x0E80_9400, Isar0Dp, false, (c, i) => c.SimdDot(i, indexed: false, unsigned: false)),
        new(0xBFE0_FC00, 0x2E80_9400, Isar0Dp, false, (c, i) => c.SimdDot(i, indexed: false, unsigned: true)),
        new(0xBF20_FC00, 0x2E00_8400, Isar0Rdm, true, (c, i) => c.SimdRdm(i, indexed: false, sub: false)),
        new(0xBF20_FC00, 0x2E00_8C00, Isar0Rdm, true, (c, i) => c.SimdRdm(i, indexed: false, sub: true)),
        new(0xFF20_FC00, 0x7E00_8400, Isar0Rdm, true, (c, i) => c.SimdRdm(i, indexed: false, sub: false)),
        new(0xFF20_FC00, 0x7E00_8C00, Isar0Rdm, true, (c, i) => c.SimdRdm(i, indexed: false, sub: true)),
        // "Advanced SIMD (scalar) x indexed element" (0 Q U 01111 size L M Rm opcode H 0 Rn Rd; scalar 01 U 11111 …):
        // SDOT (U 0 size 10 opcode 1110), UDOT (U 1), SQRDMLAH (U 1 opcode 1101), SQRDMLSH (U 1 opcode 1111).
        new(0xBFC0_F400, 0x0F80_E000, Isar0Dp, false, (c, i) => c.SimdDot(i, indexed: true, unsigned: false)),
        new(0xBFC0_F400, 0x2F80_E000, Isar0Dp, false, (c, i) => c.SimdDot(i, indexed: true, unsigned: true)),
        new(0xBF00_F400, 0x2F00_D000, Isar0Rdm, true, (c, i) => c.SimdRdm(i, indexed: true, sub: false)),
        new(0xBF00_F400, 0x2F00_F000, Isar0Rdm, true, (c, i) => c.SimdRdm(i, indexed: true, sub: true)),
        new(0xFF00_F400, 0x7F00_D000, Isar0Rdm, true, (c, i) => c.SimdRdm(i, indexed: true, sub: false)),
        new(0xFF00_F400, 0x7F00_F000, Isar0Rdm, true, (c, i) => c.SimdRdm(i, indexed: true, sub: true)),
    ];

    /// <summary>
    /// The decode of <paramref name="insn"/> against the ID_AA64ISAR0_EL1 value <paramref name="isar0"/>: null when it
    /// is not one of these encodings, else whether it is UNDEFINED (feature absent or size unallocated) and its class.
    /// </summary>
    internal static bool? SimdIsar0Undefined(uint insn, ulong isar0) =>
        FindSimdIsar0(insn) is { } c ? IsSimdIsar0Undefined(c, insn, isar0) : null;

    private static SimdIsar0Class? FindSimdIsar0(uint insn)
    {
        foreach (var c in SimdIsar0Classes)
        {
            if ((insn & c.Mask) == c.Value) return c;
        }
        return null;
    }

    private static bool IsSimdIsar0Undefined(SimdIsar0Class c, uint insn, ulong isar0) =>
        ((isar0 >> c.Shift) & 0xF) < 1 || (c.SizeHs && ((insn >> 22) & 3) is 0 or 3);

    /// <summary>
    /// An ID_AA64ISAR0_EL1-gated AdvSIMD encoding (DotProd or RDM): UNDEFINED without its feature or with an
    /// unallocated size, else CheckFPAdvSIMDEnabled64 and execute. False: not one of these encodings.
    /// </summary>
    private bool TrySimdIsar0(uint insn)
    {
        if (FindSimdIsar0(insn) is not { } cls) return false;
        if (IsSimdIsar0Undefined(cls, insn, cpu.IdRegs.Model.Aa64Isar0)) return UndefinedTrue();
        if (FpTrapped()) return true;
        cls.Run(this, insn);
        Next();
        return true;
    }

    /// <summary>
    /// SDOT/UDOT (C7.2): Vd.S[e] += Σk Vn.B[4e + k] × Vm.B[4s + k], k &lt; 4, both signed (SDOT) or both unsigned
    /// (UDOT), wrapping; s = e (vector) or the index H:L into the whole 128-bit Vm = M:Rm (by element); Q selects 64 or
    /// 128 bits, the upper half zeroed for Q = 0.
    /// </summary>
    private void SimdDot(uint insn, bool indexed, bool unsigned) => SimdByteDot(insn, indexed, unsigned, unsigned);

    /// <summary>
    /// The 4-way byte dot product SDOT/UDOT and I8MM's USDOT/SUDOT share (A64Interpreter.SimdI8mm.cs): Vd.S[e] +=
    /// Σk Vn.B[4e + k] × Vm.B[4s + k] (s = e, or the index H:L), wrapping; the upper half cleared when Q = 0.
    /// </summary>
    private void SimdByteDot(uint insn, bool indexed, bool nUnsigned, bool mUnsigned)
    {
        int rd = (int)(insn & 31), index = (int)((((insn >> 11) & 1) << 1) | ((insn >> 21) & 1));
        UInt128 d = cpu.Vregs[rd], n = cpu.Vregs[(insn >> 5) & 31], m = cpu.Vregs[(insn >> 16) & 31], result = 0;
        int elements = ((insn >> 30) & 1) != 0 ? 4 : 2;
        for (int e = 0; e < elements; e++)
        {
            int s = indexed ? index : e, sum = (int)Elem(d, e, 32);
            for (int k = 0; k < 4; k++) sum += Byte(n, 4 * e + k, nUnsigned) * Byte(m, 4 * s + k, mUnsigned);
            result = WithElem(result, e, 32, (uint)sum);
        }
        SetVq(rd, result, insn);
    }
}
