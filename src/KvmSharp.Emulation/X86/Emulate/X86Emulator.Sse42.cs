// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// SSE4.2 CRC32 r32, r/m8/16/32 and CRC32 r64, r/m8/64 (Intel SDM Vol. 2A CRC32): the CRC-32C (Castagnoli,
/// polynomial 11EDC6F41H) of the source's bytes, least significant first, accumulated into the destination's low
/// 32 bits in the bit-reflected form; the result is zero-extended into the register. No flags. Not an SSE instruction:
/// only CPUID.01H:ECX.SSE4_2 gates it (checked by <see cref="TrySseV2"/>).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The reflected CRC-32C polynomial (bit 31 of 1EDC6F41H is bit 0 here).</summary>
    private const uint Crc32cReflected = 0x82F6_3B78;

    private void Crc32(in Instruction i)
    {
        int size = i.GetOpKind(1) == OpKind.Register ? i.GetOpRegister(1).GetSize() : i.MemorySize.GetSize();
        ulong source = ReadOp(i, 1, size);
        uint crc = (uint)ReadReg(i.Op0Register);
        for (int k = 0; k < size; k++)
        {
            crc ^= (byte)(source >> (8 * k));
            for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ ((crc & 1) != 0 ? Crc32cReflected : 0);
        }
        WriteReg(i.Op0Register, crc);
    }
}
