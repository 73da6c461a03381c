// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The Armv8.2 optional Advanced SIMD cryptographic extensions (Arm ARM DDI 0487 C4.1 "Cryptographic four-register",
/// "XAR", "Cryptographic three-register, imm2", "Cryptographic three-register SHA512", "Cryptographic two-register
/// SHA512"; C7.2 and each instruction's pseudocode): SHA512H, SHA512H2, SHA512SU0, SHA512SU1 (FEAT_SHA512,
/// ID_AA64ISAR0_EL1.SHA2 bits 15:12 ≥ 2), EOR3, RAX1, XAR, BCAX (FEAT_SHA3, SHA3 bits 35:32 ≥ 1) here, and SM3SS1,
/// SM3TT1A/B, SM3TT2A/B, SM3PARTW1/2 (FEAT_SM3, SM3 bits 39:36 ≥ 1), SM4E, SM4EKEY (FEAT_SM4, SM4 bits 43:40 ≥ 1) in
/// A64Interpreter.SimdSm3Sm4.cs. These groups fill the whole op0 = 1100 row of "Data Processing -- Scalar
/// Floating-Point and Advanced SIMD" (1100111x …); every other encoding of that row is unallocated. A feature the
/// emulated host's ID_AA64ISAR0_EL1 (<see cref="Arm64CpuModel.Aa64Isar0"/>) lacks ("if !HaveSHA512() then UNDEFINED",
/// HaveSHA3, HaveSM3, HaveSM4) and an unallocated encoding are UNDEFINED, before CheckFPAdvSIMDEnabled64.
/// <see cref="TrySimdCryptoExtensions"/> is the first decoder of <see cref="TrySimdFp"/>'s chain; it returns false at
/// once outside that row. The SHA-1/SHA-256 helpers (SHAchoose, SHAmajority) are shared with
/// A64Interpreter.SimdCrypto.cs, the SM4 rounds and RAX1 with the SVE2 forms (A64Interpreter.Sve2Crypto.cs).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ID_AA64ISAR0_EL1.SHA2 (bits 15:12), SHA3 (35:32), SM3 (39:36), SM4 (43:40).</summary>
    private const int Isar0Sha2 = 12, Isar0Sha3 = 32, Isar0Sm3 = 36, Isar0Sm4 = 40;

    /// <summary>The instructions of the op0 = 1100 row; <see cref="Unallocated"/> for the rest of it.</summary>
    internal enum CryptoExtOp
    {
        /// <summary>Not allocated (UNDEFINED on every vCPU).</summary>
        Unallocated,
        /// <summary>SHA512H Qd, Qn, Vm.2D.</summary>
        Sha512H,
        /// <summary>SHA512H2 Qd, Qn, Vm.2D.</summary>
        Sha512H2,
        /// <summary>SHA512SU0 Vd.2D, Vn.2D.</summary>
        Sha512Su0,
        /// <summary>SHA512SU1 Vd.2D, Vn.2D, Vm.2D.</summary>
        Sha512Su1,
        /// <summary>EOR3 Vd.16B, Vn.16B, Vm.16B, Va.16B.</summary>
        Eor3,
        /// <summary>BCAX Vd.16B, Vn.16B, Vm.16B, Va.16B.</summary>
        Bcax,
        /// <summary>RAX1 Vd.2D, Vn.2D, Vm.2D.</summary>
        Rax1,
        /// <summary>XAR Vd.2D, Vn.2D, Vm.2D, #imm6.</summary>
        Xar,
        /// <summary>SM3SS1 Vd.4S, Vn.4S, Vm.4S, Va.4S.</summary>
        Sm3Ss1,
        /// <summary>SM3TT1A Vd.4S, Vn.4S, Vm.S[imm2].</summary>
        Sm3Tt1A,
        /// <summary>SM3TT1B Vd.4S, Vn.4S, Vm.S[imm2].</summary>
        Sm3Tt1B,
        /// <summary>SM3TT2A Vd.4S, Vn.4S, Vm.S[imm2].</summary>
        Sm3Tt2A,
        /// <summary>SM3TT2B Vd.4S, Vn.4S, Vm.S[imm2].</summary>
        Sm3Tt2B,
        /// <summary>SM3PARTW1 Vd.4S, Vn.4S, Vm.4S.</summary>
        Sm3PartW1,
        /// <summary>SM3PARTW2 Vd.4S, Vn.4S, Vm.4S.</summary>
        Sm3PartW2,
        /// <summary>SM4E Vd.4S, Vn.4S.</summary>
        Sm4E,
        /// <summary>SM4EKEY Vd.4S, Vn.4S, Vm.4S.</summary>
        Sm4EKey,
    }

    /// <summary>
    /// The decode of an op0 = 1100 word (insn &amp; 0xFE000000 == 0xCE000000; null outside): the instruction and the
    /// ID_AA64ISAR0_EL1 field (shift, minimum) that must offer it (Arm ARM C4.1, the five groups' encoding tables).
    /// </summary>
    internal static (CryptoExtOp Op, int Shift, int Min)? DecodeCryptoExtension(uint insn)
    {
        if ((insn & 0xFE00_0000) != 0xCE00_0000) return null;
        uint op2 = (insn >> 10) & 3;
        // Cryptographic four-register: 110011100 Op0 Rm 0 Ra Rn Rd; Op0 00 EOR3, 01 BCAX, 10 SM3SS1, 11 unallocated.
        if ((insn & 0xFF80_8000) == 0xCE00_0000)
        {
            return ((insn >> 21) & 3) switch
            {
                0 => (CryptoExtOp.Eor3, Isar0Sha3, 1),
                1 => (CryptoExtOp.Bcax, Isar0Sha3, 1),
                2 => (CryptoExtOp.Sm3Ss1, Isar0Sm3, 1),
                _ => (CryptoExtOp.Unallocated, 0, 0),
            };
        }
        // XAR: 11001110100 Rm imm6 Rn Rd.
        if ((insn & 0xFFE0_0000) == 0xCE80_0000) return (CryptoExtOp.Xar, Isar0Sha3, 1);
        // Cryptographic three-register, imm2: 11001110010 Rm 10 imm2 opcode Rn Rd; opcode 00 SM3TT1A, 01 SM3TT1B,
        // 10 SM3TT2A, 11 SM3TT2B.
        if ((insn & 0xFFE0_C000) == 0xCE40_8000) return (CryptoExtOp.Sm3Tt1A + (int)op2, Isar0Sm3, 1);
        // Cryptographic three-register SHA512: 11001110011 Rm 1 O 00 opcode Rn Rd; O 0: SHA512H, SHA512H2, SHA512SU1,
        // RAX1; O 1: SM3PARTW1, SM3PARTW2, SM4EKEY, opcode 11 unallocated.
        if ((insn & 0xFFE0_B000) == 0xCE60_8000)
        {
            bool o = ((insn >> 14) & 1) != 0;
            return (o, op2) switch
            {
                (false, 0) => (CryptoExtOp.Sha512H, Isar0Sha2, 2),
                (false, 1) => (CryptoExtOp.Sha512H2, Isar0Sha2, 2),
                (false, 2) => (CryptoExtOp.Sha512Su1, Isar0Sha2, 2),
                (false, _) => (CryptoExtOp.Rax1, Isar0Sha3, 1),
                (true, 0) => (CryptoExtOp.Sm3PartW1, Isar0Sm3, 1),
                (true, 1) => (CryptoExtOp.Sm3PartW2, Isar0Sm3, 1),
                (true, 2) => (CryptoExtOp.Sm4EKey, Isar0Sm4, 1),
                _ => (CryptoExtOp.Unallocated, 0, 0),
            };
        }
        // Cryptographic two-register SHA512: 11001110110000001000 opcode Rn Rd; 00 SHA512SU0, 01 SM4E, 1x unallocated.
        if ((insn & 0xFFFF_F000) == 0xCEC0_8000)
        {
            return op2 switch
            {
                0 => (CryptoExtOp.Sha512Su0, Isar0Sha2, 2),
                1 => (CryptoExtOp.Sm4E, Isar0Sm4, 1),
                _ => (CryptoExtOp.Unallocated, 0, 0),
            };
        }
        return (CryptoExtOp.Unallocated, 0, 0);
    }

    /// <summary>
    /// Whether <paramref name="insn"/> is UNDEFINED on a vCPU whose ID_AA64ISAR0_EL1 is <paramref name="isar0"/>
    /// (unallocated, or its feature's field below the minimum); null outside the op0 = 1100 row.
    /// </summary>
    internal static bool? SimdCryptoExtensionUndefined(uint insn, ulong isar0) =>
        DecodeCryptoExtension(insn) is { } c ? IsCryptoExtensionUndefined(c, isar0) : null;

    private static bool IsCryptoExtensionUndefined((CryptoExtOp Op, int Shift, int Min) c, ulong isar0) =>
        c.Op == CryptoExtOp.Unallocated || (int)((isar0 >> c.Shift) & 0xF) < c.Min;

    /// <summary>
    /// An op0 = 1100 encoding: UNDEFINED when unallocated or not offered, else CheckFPAdvSIMDEnabled64 and execute.
    /// False: not in that row.
    /// </summary>
    private bool TrySimdCryptoExtensions(uint insn)
    {
        if (DecodeCryptoExtension(insn) is not { } c) return false;
        if (IsCryptoExtensionUndefined(c, cpu.IdRegs.Model.Aa64Isar0)) return UndefinedTrue();
        if (FpTrapped()) return true;
        int rd = (int)(insn & 31);
        var v = cpu.Vregs;
        SetV(rd, CryptoExtension(c.Op, insn, v[rd], v[(insn >> 5) & 31], v[(insn >> 16) & 31], v[(insn >> 10) & 31]));
        Next();
        return true;
    }

    /// <summary>
    /// The result of the allocated instruction <paramref name="op"/> (word <paramref name="insn"/> for XAR's imm6 and
    /// the SM3TT index imm2) from the old Vd, Vn, Vm and Va (bits 14:10, the four-register forms' third source).
    /// </summary>
    private static UInt128 CryptoExtension(CryptoExtOp op, uint insn, UInt128 d, UInt128 n, UInt128 m, UInt128 a) => op switch
    {
        CryptoExtOp.Sha512H => Sha512H(d, n, m),
        CryptoExtOp.Sha512H2 => Sha512H2(d, n, m),
        CryptoExtOp.Sha512Su0 => Sha512Su0(d, n),
        CryptoExtOp.Sha512Su1 => Sha512Su1(d, n, m),
        // EOR3: Vn ⊕ Vm ⊕ Va; BCAX: Vn ⊕ (Vm AND NOT Va) (C7.2 EOR3, BCAX).
        CryptoExtOp.Eor3 => n ^ m ^ a,
        CryptoExtOp.Bcax => n ^ (m & ~a),
        // RAX1: each D lane Vn ⊕ ROL(Vm, 1); XAR: ROR(Vn ⊕ Vm, imm6) (C7.2 RAX1, XAR).
        CryptoExtOp.Rax1 => Q(Rax1((ulong)(n >> 64), (ulong)(m >> 64)), Rax1((ulong)n, (ulong)m)),
        CryptoExtOp.Xar => Q(ulong.RotateRight((ulong)((n ^ m) >> 64), (int)(insn >> 10) & 63),
            ulong.RotateRight((ulong)(n ^ m), (int)(insn >> 10) & 63)),
        CryptoExtOp.Sm3Ss1 => Sm3Ss1(n, m, a),
        CryptoExtOp.Sm3Tt1A or CryptoExtOp.Sm3Tt1B or CryptoExtOp.Sm3Tt2A or CryptoExtOp.Sm3Tt2B =>
            Sm3Tt(op, d, n, ShaWord(m, (int)(insn >> 12) & 3)),
        CryptoExtOp.Sm3PartW1 => Sm3PartW1(d, n, m),
        CryptoExtOp.Sm3PartW2 => Sm3PartW2(d, n, m),
        CryptoExtOp.Sm4E => Sm4Rounds(d, n, keySchedule: false),
        CryptoExtOp.Sm4EKey => Sm4Rounds(n, m, keySchedule: true),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "unallocated"),
    };

    /// <summary>RAX1 on one doubleword: <paramref name="n"/> ⊕ ROL(<paramref name="m"/>, 1) (C7.2 and C8.2 RAX1).</summary>
    private static ulong Rax1(ulong n, ulong m) => n ^ ulong.RotateLeft(m, 1);

    /// <summary>The 128-bit value <paramref name="hi"/>:<paramref name="lo"/>.</summary>
    private static UInt128 Q(ulong hi, ulong lo) => ((UInt128)hi << 64) | lo;

    /// <summary>SHA-512 Σ0 and Σ1 (FIPS 180-4 4.1.3; the pseudocode's NSigma0 and MSigma1).</summary>
    private static ulong Sha512Sum0(ulong x) => ulong.RotateRight(x, 28) ^ ulong.RotateRight(x, 34) ^ ulong.RotateRight(x, 39);

    private static ulong Sha512Sum1(ulong x) => ulong.RotateRight(x, 14) ^ ulong.RotateRight(x, 18) ^ ulong.RotateRight(x, 41);

    /// <summary>
    /// SHA512H (C7.2): X = Vn, Y = Vm, W = Vd; hi = SHAchoose(Y1, X0, X1) + Σ1(Y1) + W1; tmp = hi + Y0;
    /// lo = SHAchoose(tmp, Y1, X0) + Σ1(tmp) + W0 (pseudocode "(Y AND X0) EOR (NOT Y AND X1)").
    /// </summary>
    private static UInt128 Sha512H(UInt128 w, UInt128 x, UInt128 y)
    {
        ulong x0 = (ulong)x, x1 = (ulong)(x >> 64), y0 = (ulong)y, y1 = (ulong)(y >> 64);
        ulong hi = ShaChoose(y1, x0, x1) + Sha512Sum1(y1) + (ulong)(w >> 64);
        ulong tmp = hi + y0;
        return Q(hi, ShaChoose(tmp, y1, x0) + Sha512Sum1(tmp) + (ulong)w);
    }

    /// <summary>
    /// SHA512H2 (C7.2): hi = SHAmajority(X0, Y1, Y0) + Σ0(Y0) + W1; lo = SHAmajority(hi, Y0, Y1) + Σ0(hi) + W0.
    /// </summary>
    private static UInt128 Sha512H2(UInt128 w, UInt128 x, UInt128 y)
    {
        ulong x0 = (ulong)x, y0 = (ulong)y, y1 = (ulong)(y >> 64);
        ulong hi = ShaMajority(x0, y1, y0) + Sha512Sum0(y0) + (ulong)(w >> 64);
        return Q(hi, ShaMajority(hi, y0, y1) + Sha512Sum0(hi) + (ulong)w);
    }

    /// <summary>SHA-512 σ0 (ROR 1, ROR 8, LSR 7) and σ1 (ROR 19, ROR 61, LSR 6) (FIPS 180-4 4.1.3; the pseudocode's sig0, sig1).</summary>
    private static ulong Sha512Sigma0(ulong x) => ulong.RotateRight(x, 1) ^ ulong.RotateRight(x, 8) ^ (x >> 7);

    private static ulong Sha512Sigma1(ulong x) => ulong.RotateRight(x, 19) ^ ulong.RotateRight(x, 61) ^ (x >> 6);

    /// <summary>SHA512SU0 (C7.2): lo = W0 + σ0(W1), hi = W1 + σ0(X0), X = Vn, W = Vd.</summary>
    private static UInt128 Sha512Su0(UInt128 w, UInt128 x) =>
        Q((ulong)(w >> 64) + Sha512Sigma0((ulong)x), (ulong)w + Sha512Sigma0((ulong)(w >> 64)));

    /// <summary>SHA512SU1 (C7.2): each half W + σ1(X) + Y, X = Vn, Y = Vm, W = Vd.</summary>
    private static UInt128 Sha512Su1(UInt128 w, UInt128 x, UInt128 y) =>
        Q((ulong)(w >> 64) + Sha512Sigma1((ulong)(x >> 64)) + (ulong)(y >> 64), (ulong)w + Sha512Sigma1((ulong)x) + (ulong)y);
}
