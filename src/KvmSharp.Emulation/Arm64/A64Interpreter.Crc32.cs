// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// CRC32B/H/W/X and CRC32CB/H/W/X (Arm ARM C6.2; data-processing (2 source) opcode 010 C sz), which the presets
/// advertise in ID_AA64ISAR0_EL1.CRC32 (Arm64HostCpu.Aa64Isar0). The pseudocode's BitReverse/Poly32Mod2 form is the
/// reflected CRC update without pre- or post-inversion: polynomial 0x04C11DB7 (reflected 0xEDB88320) for CRC32 and
/// 0x1EDC6F41 (reflected 0x82F63B78) for CRC32C, over the low 8 × 2^sz bits of Rm, least significant byte first.
/// </summary>
internal sealed partial class A64Interpreter
{
    private const uint Crc32Reflected = 0xEDB8_8320;

    /// <summary>ID_AA64ISAR0_EL1.CRC32 (bits 19:16).</summary>
    private const int Isar0Crc32Shift = 16;

    /// <summary>sf 0 0 11010110 Rm 010 C sz Rn Rd: "if sf == '1' &amp;&amp; sz != '11' then UNDEFINED; if sf == '0' &amp;&amp; sz == '11' then UNDEFINED".</summary>
    private bool Crc32(uint insn)
    {
        bool sf = Sf(insn), castagnoli = ((insn >> 12) & 1) != 0;
        int sz = (int)((insn >> 10) & 3);
        if (((cpu.IdRegs.Model.Aa64Isar0 >> Isar0Crc32Shift) & 0xF) == 0 || sf != (sz == 3)) return UndefinedTrue();
        int rm = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        uint acc = (uint)cpu.Reg(rn);
        ulong value = cpu.Reg(rm);
        for (int i = 0; i < 1 << sz; i++, value >>= 8)
        {
            byte b = (byte)value;
            acc = castagnoli ? BitOperations.Crc32C(acc, b) : Crc32Byte(acc, b);
        }
        cpu.SetReg(rd, acc);
        Next();
        return true;
    }

    private static uint Crc32Byte(uint acc, byte b)
    {
        acc ^= b;
        for (int bit = 0; bit < 8; bit++) acc = (acc >> 1) ^ ((acc & 1) != 0 ? Crc32Reflected : 0);
        return acc;
    }
}
