// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// VTESTPS/VTESTPD (Intel SDM Vol. 2C "VTESTPD/VTESTPS—Packed Bit Test"; AVX, VEX.128/256.66.0F38.W0 0E/0F /r), which
/// have no legacy twin: only the sign bit of each single (PS) or double (PD) element counts. ZF ← 1 when every element
/// of SRC1 AND SRC2 has its sign bit clear; CF ← 1 when every element of (NOT SRC1) AND SRC2 has its sign bit clear;
/// AF, OF, PF, SF ← 0; no register is written. SRC1 is ModRM.reg, SRC2 xmm/ymm or m128/m256 (exception type 4 with
/// VEX: no alignment rule). Faults as <see cref="RequireAvx"/>; VEX.vvvv ≠ 1111b or VEX.W1 is #UD (Iced decodes
/// neither as VTESTPS/PD).
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryVectorTest(in Instruction i, ref ulong f)
    {
        if (i.Mnemonic is not (Mnemonic.Vtestps or Mnemonic.Vtestpd)) return false;
        RequireAvx(avx2: false);
        int size = i.Mnemonic == Mnemonic.Vtestps ? 4 : 8, bytes = i.Op0Register.IsYMM() ? 32 : 16;
        Span<byte> a = stackalloc byte[32], b = stackalloc byte[32];
        VectorRegisters.Read(Vec, VectorIndex(i.Op0Register), a[..bytes]);
        ReadVector(i, 1, b[..bytes], alignment: 1);
        bool zf = true, cf = true;
        // The sign bit of element k is bit 7 of its most significant byte (little-endian).
        for (int top = size - 1; top < bytes; top += size)
        {
            if ((a[top] & b[top] & 0x80) != 0) zf = false;
            if ((~a[top] & b[top] & 0x80) != 0) cf = false;
        }
        f = (f & ~X86Consts.RFLAGS_ARITH) | (zf ? X86Consts.RFLAGS_ZF : 0) | (cf ? X86Consts.RFLAGS_CF : 0);
        return true;
    }
}
