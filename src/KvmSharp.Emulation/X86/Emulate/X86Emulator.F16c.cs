// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// F16C (Intel SDM Vol. 2 VCVTPH2PS, VCVTPS2PH; CPUID.1:ECX.F16C[29]). VCVTPH2PS xmm1/ymm1, xmm2/m64/m128: four or
/// eight binary16 values widened exactly (an SNaN is IE and quieted; "DAZ is not applied" and a denormal half is no
/// DE, per the page's exception list: Invalid only). VCVTPS2PH xmm1/m64/m128, xmm2/ymm2, imm8: four or eight floats
/// rounded by imm8[1:0], or MXCSR.RC when imm8[2] is set; MXCSR.FTZ is ignored, DAZ applies; Invalid, Denormal,
/// Overflow, Underflow, Precision as any narrowing (<see cref="SseArithmetic.Convert"/>); a register destination is a
/// VEX.128 write (bits above the result zeroed), a memory one stores 8 or 16 bytes. Faults as <see cref="RequireAvx"/>,
/// then #UD without the guest CPUID's F16C bit.
/// </summary>
internal sealed partial class X86Emulator
{
    private static readonly FloatFormat Half = new(16, 11);

    private bool TryF16c(in Instruction i)
    {
        if (i.Mnemonic is not (Mnemonic.Vcvtph2ps or Mnemonic.Vcvtps2ph)) return false;
        RequireAvx(avx2: false);
        if (!GuestFeatures.F16c(_cpu)) throw new GuestFault(UD_VECTOR);
        uint mxcsr = Vec.Fpu.mxcsr;
        Span<byte> src = stackalloc byte[32], r = stackalloc byte[32];
        if (i.Mnemonic == Mnemonic.Vcvtph2ps)
        {
            int count = i.Op0Register.IsYMM() ? 8 : 4;
            if (i.GetOpKind(1) == OpKind.Register) VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), src[..16]);
            else AccessMemory(VectorLinear(i, alignment: 1), src[..(count * 2)], write: false);
            // DAZ cleared and DM set: a denormal half converts as a value and raises nothing.
            var math = new SseArithmetic((mxcsr & ~(1u << 6)) | (1u << 8));
            for (int k = 0; k < count; k++) SetLane(r, k, 4, math.Convert(RawLane(src, k, 2), Half, FloatFormat.Single));
            CommitFlags(math.Flags & ~SseArithmetic.DE);
            VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r[..(count * 4)]);
            return true;
        }
        else
        {
            var from = i.GetOpRegister(1);
            int count = from.IsYMM() ? 8 : 4;
            VectorRegisters.Read(Vec, VectorIndex(from), src[..(count * 4)]);
            int imm = (int)i.GetImmediate(2);
            uint rc = (imm & 4) != 0 ? (mxcsr >> 13) & 3 : (uint)imm & 3;
            var math = new SseArithmetic((mxcsr & ~((3u << 13) | (1u << 15))) | (rc << 13));
            for (int k = 0; k < count; k++) SetLane(r, k, 2, math.Convert(RawLane(src, k, 4), FloatFormat.Single, Half));
            CommitMxcsr(math);
            if (i.GetOpKind(0) == OpKind.Register) VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r[..16]);
            else AccessMemory(VectorLinear(i, alignment: 1), r[..(count * 2)], write: true);
            return true;
        }
    }
}
