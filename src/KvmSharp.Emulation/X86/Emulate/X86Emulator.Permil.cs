// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// VPERMILPS/VPERMILPD (Intel SDM Vol. 2C "Permute In-Lane of Pairs of Single/Double Precision Floating-Point
/// Values"; AVX), which gcc -O3 -march=x86-64-v3 emits for reductions and pair swaps and which have no legacy twin:
/// each element picks an element of its own 128-bit lane of the source. Variable form (dest, src1, src2/m): the
/// selector is bits 1:0 of each src2 dword (PS) or bit 1 of each src2 qword (PD). Immediate form (dest, src/m, imm8):
/// PS element k of each lane takes imm8[2k+1:2k] (both lanes the same imm8); PD element k of the whole register
/// takes imm8[k]. VEX.128 zeroes bits 255:128. Faults as <see cref="RequireAvx"/>; no alignment rule.
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryPermil(in Instruction i)
    {
        if (i.Mnemonic is not (Mnemonic.Vpermilps or Mnemonic.Vpermilpd)) return false;
        RequireAvx(avx2: false);
        bool ps = i.Mnemonic == Mnemonic.Vpermilps;
        int size = ps ? 4 : 8, bytes = i.Op0Register.IsYMM() ? 32 : 16, perLane = 16 / size;
        bool immediate = i.GetOpKind(i.OpCount - 1) == OpKind.Immediate8;
        Span<byte> a = stackalloc byte[32], c = stackalloc byte[32], r = stackalloc byte[32];
        if (immediate) ReadVector(i, 1, a[..bytes], alignment: 1);
        else
        {
            VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), a[..bytes]);
            ReadVector(i, 2, c[..bytes], alignment: 1);
        }
        int imm = immediate ? i.Immediate8 : 0;
        for (int k = 0; k < bytes / size; k++)
        {
            int lane = k / perLane;
            int pick = immediate
                ? (ps ? imm >> (2 * (k % 4)) & 3 : imm >> k & 1)
                : (ps ? (int)(RawLane(c, k, 4) & 3) : (int)(RawLane(c, k, 8) >> 1 & 1));
            a.Slice((lane * perLane + pick) * size, size).CopyTo(r[(k * size)..]);
        }
        VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), r[..bytes]);
        return true;
    }
}
