// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The FP/SIMD entry point: the encoding groups of the SIMD&amp;FP subset (A64Interpreter.SimdLoadStore.cs and
/// .SimdStructures.cs, A64Interpreter.SimdData.cs with .SimdFp.cs, .SimdInteger.cs, .SimdScalarInteger.cs,
/// .SimdElement.cs and .SimdTable.cs, A64Interpreter.FloatingPoint.cs with .FpConvert.cs and .FpHalf.cs; then what
/// those groups leave: FEAT_FP16 .SimdHalf.cs, the saturating forms .SimdSaturating.cs and .SimdSaturatingShift.cs,
/// the estimates, FCVTXN, PMUL/PMULL, ADDHN/SUBHN and the cryptographic extension .SimdEstimates.cs with
/// .SimdPolynomial.cs, .SimdNarrowHigh.cs and .SimdCrypto.cs), MRS/MSR FPCR and FPSR, the CPACR_EL1.FPEN trap and
/// the V register accessors. An encoding of the SIMD&amp;FP space outside the subset stops the run as an emulation
/// failure (before the FPEN check: the emulator does not know whether it is allocated).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ESR_ELx.EC 0x07: "Access to SVE, Advanced SIMD or floating-point functionality trapped by CPACR_EL1.FPEN".</summary>
    private const uint EcFpAccess = 0x07;

    /// <summary>
    /// Arm ARM ConditionSyndrome(): for an exception taken from AArch64, ISS.CV (bit 24) = 1 and ISS.COND (23:20) =
    /// 0b1110; the rest of the EC 0x07 ISS is RES0.
    /// </summary>
    private const ulong FpTrapIss = (1UL << 24) | (0xEUL << 20);

    // MRS/MSR FPCR (3, 3, 4, 4, 0) and FPSR (3, 3, 4, 4, 1): 1101010100 L 1 1 011 0100 0100 00 op2<0> Rt.
    private const uint FpSysRegMask = 0xFFDF_FFC0, FpSysRegBits = 0xD51B_4400;

    /// <summary>
    /// FPCR bits kept: AHP (26), DN (25), FZ (24), RMode (23:22), FZ16 (19). The trap-enable bits (IDE, IXE, UFE,
    /// OFE, DZE, IOE) are RAZ/WI as on an implementation without FP exception trapping; the AArch32-only Len/Stride
    /// fields are RES0.
    /// </summary>
    private const uint FpcrMask = 0x07C8_0000;

    /// <summary>FPSR bits kept: QC (27), IDC (7), IXC (4), UFC (3), OFC (2), DZC (1), IOC (0).</summary>
    private const uint FpsrMask = 0x0800_009F;

    private static readonly int CpacrIndex = Arm64SysRegs.Index("CPACR_EL1");

    private byte[]? _zeroZ;

    /// <summary>True when <paramref name="insn"/> was an FP/SIMD instruction of the subset (executed or trapped).</summary>
    private bool TrySimdFp(uint insn)
    {
        // Data Processing -- Scalar Floating-Point and Advanced SIMD: op0 x111 (bits 27:25 = 111).
        // The optional encodings (feature-checked) first: SHA512/SHA3/SM3/SM4 (A64Interpreter.SimdCryptoExtensions.cs),
        // FHM/FCMA/JSCVT/FRINTTS (A64Interpreter.FpExtensions.cs), BF16 and I8MM (A64Interpreter.SimdBf16.cs); then
        // DotProd and RDM (ID_AA64ISAR0_EL1): A64Interpreter.SimdDotProd.cs.
        if ((insn & 0x0E00_0000) == 0x0E00_0000)
            return TrySimdCryptoExtensions(insn) || TryFpExtensions(insn) || TrySimdBf16(insn) || TrySimdIsar0(insn)
                || TryScalarFp(insn) || TrySimdData(insn)
                || TrySimdHalf(insn) || TrySimdSaturating(insn) || TrySimdEstimates(insn) || Unsupported(insn);
        // Loads and Stores (op0 = bits 28:25 = x1x0) with V (bit 26) = 1: the SIMD&FP register forms.
        if ((insn & 0x0E00_0000) == 0x0C00_0000)
            return TrySimdLoadStore(insn) || Unsupported(insn);
        if ((insn & FpSysRegMask) == FpSysRegBits)
        {
            FpSysReg(insn);
            return true;
        }
        return false;
    }

    private static bool Unsupported(uint insn) => throw new UnsupportedInstructionStop(insn);

    /// <summary>
    /// AArch64.CheckFPAdvSIMDEnabled / CheckFPEnabled64 (Arm ARM, CPACR_EL1.FPEN): 0b00 and 0b10 trap EL0 and EL1,
    /// 0b01 traps EL0, 0b11 traps nothing. The trap is taken to EL1 (HCR_EL2.TGE = 0) with EC 0x07 at the
    /// instruction; KVM's own CPTR_EL2 lazy FP switch is invisible to the guest. True: the instruction trapped.
    /// </summary>
    private bool FpTrapped()
    {
        ulong fpen = (cpu.SysRegs[CpacrIndex] >> 20) & 3;
        bool trapped = cpu.AtEl0 ? fpen != 3 : (fpen & 1) == 0;
        if (trapped) TakeException(EcFpAccess, cpu.Pc, far: null, iss: FpTrapIss);
        return trapped;
    }

    /// <summary>MRS/MSR FPCR and FPSR: EL0-accessible, subject to the FPEN trap (Arm ARM "FPCR" accessibility pseudocode).</summary>
    private void FpSysReg(uint insn)
    {
        if (FpTrapped()) return;
        bool read = ((insn >> 21) & 1) != 0, fpsr = ((insn >> 5) & 1) != 0;
        int rt = (int)(insn & 31);
        if (read) cpu.SetReg(rt, fpsr ? cpu.Fpsr : cpu.Fpcr);
        else if (fpsr) cpu.Fpsr = (uint)cpu.Reg(rt) & FpsrMask;
        else cpu.Fpcr = (uint)cpu.Reg(rt) & FpcrMask;
        Next();
    }

    /// <summary>
    /// V[n] = value (Arm ARM V[] assignment): the whole 128 bits. On an SVE vCPU the Z register's bits above 128 are
    /// zeroed, what both choices of the CONSTRAINED UNPREDICTABLE Unpredictable_SVEZEROUPPER give up to the current
    /// vector length (the emulator runs the guest at the maximum VL).
    /// </summary>
    private void SetV(int n, UInt128 value)
    {
        cpu.Vregs[n] = value;
        if (cpu.Sve is { Finalized: true } sve)
        {
            _zeroZ ??= new byte[sve.Vl];
            BinaryPrimitives.WriteUInt128LittleEndian(_zeroZ, value);
            sve.WriteZ(cpu, n, _zeroZ);
        }
    }

    /// <summary>A scalar write of <paramref name="bits"/> bits (B/H/S/D): the rest of the register is zeroed.</summary>
    private void SetVScalar(int n, ulong value, int bits) => SetV(n, bits == 64 ? value : value & ((1UL << bits) - 1));

    private static ulong LaneMask(int esize) => esize == 64 ? ulong.MaxValue : (1UL << esize) - 1;

    private static ulong Elem(UInt128 v, int index, int esize) => (ulong)(v >> (index * esize)) & LaneMask(esize);

    private static UInt128 WithElem(UInt128 v, int index, int esize, ulong value)
    {
        UInt128 mask = (UInt128)LaneMask(esize) << (index * esize);
        return (v & ~mask) | (((UInt128)(value & LaneMask(esize)) << (index * esize)) & mask);
    }
}
