// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The SVE BFloat16 instructions (FEAT_BF16 with FEAT_SVE, ID_AA64ZFR0_EL1.BF16 bits 23:20 ≥ 1; Arm ARM DDI 0487 C8.2
/// BFCVT, BFCVTNT, BFDOT, BFMLALB, BFMLALT, BFMMLA) and the SVE Int8 matrix multiply instructions (FEAT_I8MM with
/// FEAT_SVE, ID_AA64ZFR0_EL1.I8MM bits 47:44 ≥ 1; C8.2 SMMLA, UMMLA, USMMLA, USDOT, SUDOT). They are SVE, not SVE2,
/// encodings: <see cref="TrySveBf16"/> is called by <see cref="TrySve"/>; each is UNDEFINED ("if !HaveSVE() ||
/// !HaveBF16Ext() then UNDEFINED", "… !HaveInt8MatMulExt() …") when the emulated host's field says the feature is
/// absent, before CheckSVEEnabled. As for SVE2, a guest's writable ID_AA64ZFR0_EL1 does not change what the CPU runs.
/// BFDOT and BFMMLA follow the BFloat16 rules of the shared pseudocode BFDotAdd (A64Interpreter.Bf16Arithmetic.cs, shared
/// with the AdvSIMD forms of A64Interpreter.SimdBf16.cs) without FEAT_EBF16 (no emulated CPU has
/// it — that would be ID_AA64ISAR1_EL1.BF16 = 2 — so FPCR.EBF is RES0 and ignored): BFMul and BFAdd unpack with BFUnpack (a zero exponent is a
/// zero, every NaN is quiet), round with BFRound (round to odd, a tiny exact result flushed to zero, overflow to ∞),
/// give FPDefaultNaN for any NaN and signal no floating-point exception — FPCR.RMode, FZ and DN are ignored. BFMLALB/T
/// are FPMulAdd on the widened operands under FPCR (BFMulAddH), and BFCVT/BFCVTNT are FPConvertBF: FPCR.RMode, FZ
/// (IDC) and DN with IOC, OFC, UFC and IXC.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>One optional SVE encoding: insn &amp; Mask == Value, the ID_AA64ZFR0_EL1 field at Shift that must be ≥ 1.</summary>
    private readonly record struct SveOptionalClass(uint Mask, uint Value, int Shift, Action<A64Interpreter, uint> Run);

    /// <summary>ID_AA64ZFR0_EL1.BF16 (bits 23:20) and I8MM (bits 47:44).</summary>
    private const int Zfr0Bf16 = 20, Zfr0I8mm = 44;

    private static readonly SveOptionalClass[] SveOptionalClasses =
    [
        // C4.1 "SVE floating-point convert precision": BFCVT (01100101 10 0010 10 101 Pg Zn Zd); "SVE floating-point
        // convert precision odd elements": BFCVTNT (01100100 10 0010 10 101 Pg Zn Zd).
        new(0xFFFF_E000, 0x658A_A000, Zfr0Bf16, (c, i) => c.SveBfConvert(i, top: false)),
        new(0xFFFF_E000, 0x648A_A000, Zfr0Bf16, (c, i) => c.SveBfConvert(i, top: true)),
        // "SVE BFloat16 floating-point dot product": BFDOT (01100100 011 Zm 100000 Zn Zda) and indexed (01100100 011 i2
        // Zm 010000 Zn Zda); "SVE floating-point multiply-add long": BFMLALB/T (01100100 111 Zm 10000 T Zn Zda) and
        // indexed (01100100 111 i3h Zm 0100 i3l T Zn Zda); "SVE floating point matrix multiply accumulate": BFMMLA
        // (01100100 011 Zm 111001 Zn Zda).
        new(0xFFE0_FC00, 0x6460_8000, Zfr0Bf16, (c, i) => c.SveBfDot(i, indexed: false)),
        new(0xFFE0_FC00, 0x6460_4000, Zfr0Bf16, (c, i) => c.SveBfDot(i, indexed: true)),
        new(0xFFE0_F800, 0x64E0_8000, Zfr0Bf16, (c, i) => c.SveBfMulAddLong(i, indexed: false)),
        new(0xFFE0_F000, 0x64E0_4000, Zfr0Bf16, (c, i) => c.SveBfMulAddLong(i, indexed: true)),
        new(0xFFE0_FC00, 0x6460_E400, Zfr0Bf16, (c, i) => c.SveBfMatMul(i)),
        // "SVE Integer Matrix Multiply Accumulate": SMMLA/USMMLA/UMMLA (01000101 uns 0 Zm 100110 Zn Zda; uns 01
        // reserved); "SVE Mixed Sign Dot Product": USDOT (01000100 100 Zm 011110 Zn Zda); "SVE Multiply - Indexed":
        // USDOT/SUDOT (01000100 101 i2 Zm 00011 U Zn Zda).
        new(0xFF20_FC00, 0x4500_9800, Zfr0I8mm, (c, i) => c.SveIntMatMul(i)),
        new(0xFFE0_FC00, 0x4480_7800, Zfr0I8mm, (c, i) => c.SveMixedDot(i, indexed: false)),
        new(0xFFE0_F800, 0x44A0_1800, Zfr0I8mm, (c, i) => c.SveMixedDot(i, indexed: true)),
    ];

    /// <summary>
    /// An optional SVE encoding (BF16 or I8MM): UNDEFINED without its feature (or for a reserved encoding), else
    /// CheckSVEEnabled and execute. False: not one of these encodings.
    /// </summary>
    private bool TrySveBf16(uint insn, Arm64SveState sve)
    {
        SveOptionalClass? match = null;
        foreach (var c in SveOptionalClasses)
        {
            if ((insn & c.Mask) != c.Value) continue;
            match = c;
            break;
        }
        if (match is not { } cls) return false;
        // The reserved SMMLA-class encoding (uns = 01) is unallocated: UNDEFINED in the decode, before CheckSVEEnabled.
        if (Zfr0Field(cls.Shift) < 1 || (insn & 0xFFE0_FC00) == 0x4540_9800)
        {
            Undefined();
            return true;
        }
        if (SveTrapped()) return true;
        _vl = SveVl(sve);
        cls.Run(this, insn);
        return true;
    }

    /// <summary>
    /// BFDOT (vectors: Zda.S[e] = BFDotAdd(Zda.S[e], Zn.H[2e], Zn.H[2e+1], Zm.H[2e], Zm.H[2e+1]); indexed: Zm in bits
    /// 18:16 and the pair segmentbase + i2 of Zm's 128-bit segment) (C8.2 BFDOT).
    /// </summary>
    private bool SveBfDot(uint insn, bool indexed)
    {
        int zda = (int)(insn & 31), index = (int)((insn >> 19) & 3);
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z((int)((insn >> 16) & (indexed ? 7u : 31u)), _z2);
        for (int e = 0; e < Elements(4); e++)
        {
            int s = indexed ? e - e % 4 + index : e;
            uint r = BfDotAdd((uint)E(d, e, 4), (uint)E(n, 2 * e, 2), (uint)E(n, 2 * e + 1, 2), (uint)E(m, 2 * s, 2), (uint)E(m, 2 * s + 1, 2));
            SetE(d, e, 4, r);
        }
        SetZ(zda, d);
        Next();
        return true;
    }

    /// <summary>
    /// BFMMLA (C8.2; BFMatMulAdd per 128-bit segment): Zda holds a 2×2 single matrix, Zn and Zm 2×4 BFloat16 matrices
    /// by rows; result[i][j] = BFDotAdd(BFDotAdd(Zda[i][j], n[i][0..1], m[j][0..1]), n[i][2..3], m[j][2..3]).
    /// </summary>
    private bool SveBfMatMul(uint insn)
    {
        int zda = (int)(insn & 31);
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z((int)((insn >> 16) & 31), _z2);
        Span<uint> r = stackalloc uint[4];
        for (int seg = 0; seg < _vl / 16; seg++)
        {
            int b4 = 4 * seg, b16 = 8 * seg;
            for (int i = 0; i < 2; i++)
            {
                for (int j = 0; j < 2; j++)
                {
                    uint sum = (uint)E(d, b4 + 2 * i + j, 4);
                    for (int k = 0; k < 2; k++)
                    {
                        int x = b16 + 4 * i + 2 * k, y = b16 + 4 * j + 2 * k;
                        sum = BfDotAdd(sum, (uint)E(n, x, 2), (uint)E(n, x + 1, 2), (uint)E(m, y, 2), (uint)E(m, y + 1, 2));
                    }
                    r[2 * i + j] = sum;
                }
            }
            for (int k = 0; k < 4; k++) SetE(d, b4 + k, 4, r[k]);
        }
        SetZ(zda, d);
        Next();
        return true;
    }

    /// <summary>
    /// BFMLALB/BFMLALT (vectors: Zda.S[e] = BFMulAddH(Zda.S[e], Zn.H[2e + T], Zm.H[2e + T]); indexed: Zm in bits 18:16
    /// and the half element 2 × segmentbase + i3h:i3l) (C8.2): FPMulAdd of the operands widened to single (op : Zeros(16))
    /// under FPCR (RMode, FZ, DN; FPSR flags) — exact widening, so a signalling NaN stays signalling.
    /// </summary>
    private bool SveBfMulAddLong(uint insn, bool indexed)
    {
        int t = (int)((insn >> 10) & 1), zda = (int)(insn & 31);
        int index = (int)((((insn >> 19) & 3) << 1) | ((insn >> 11) & 1));
        var d = Z(zda, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var m = Z((int)((insn >> 16) & (indexed ? 7u : 31u)), _z2);
        for (int e = 0; e < Elements(4); e++)
        {
            int s = indexed ? 2 * (e - e % 4) + index : 2 * e + t;
            SetE(d, e, 4, BfMulAddH(E(d, e, 4), E(n, 2 * e + t, 2), E(m, s, 2)));
        }
        SetZ(zda, d);
        Next();
        return true;
    }

    /// <summary>
    /// BFCVT (Zd.S[e] = ZeroExtend(FPConvertBF(Zn.S[e]))) and BFCVTNT (Zd.H[2e + 1] = FPConvertBF(Zn.S[e]), the even
    /// halves kept), predicated merging (C8.2).
    /// </summary>
    private bool SveBfConvert(uint insn, bool top)
    {
        int zd = (int)(insn & 31);
        var d = Z(zd, _z0);
        var n = Z((int)((insn >> 5) & 31), _z1);
        var g = P((int)((insn >> 10) & 7), _p0);
        for (int e = 0; e < Elements(4); e++)
        {
            if (!Act(g, e, 4)) continue;
            ulong r = FpConvertBf((uint)E(n, e, 4));
            if (top) SetE(d, 2 * e + 1, 2, r);
            else SetE(d, e, 4, r);
        }
        SetZ(zd, d);
        Next();
        return true;
    }
}
