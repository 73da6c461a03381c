// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// BT, BTS, BTR and BTC (emulate.c em_bt/em_bts/em_btr/em_btc, group 8 and 0F A3/AB/B3/BB; Intel SDM Vol. 2A BT): CF
/// takes the selected bit; the other flags are left as they were (SDM: ZF unaffected, OF/SF/AF/PF undefined — KVM's
/// fastop runs the host's own instruction, and AMD's leaves them unchanged).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>BT/BTS/BTR/BTC; false for anything else.</summary>
    private bool TryBitTest(in Instruction i, ref ulong f)
    {
        if (i.Mnemonic is not (Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc)) return false;
        int size = OpSize(i, 0);
        int bits = size * 8;
        bool immediate = i.GetOpKind(1) != OpKind.Register;
        ulong offset = ReadOp(i, 1, immediate ? 1 : size);
        ulong bit;
        ulong value;
        ulong ea = 0;
        bool memory = i.GetOpKind(0) == OpKind.Memory;
        if (memory && !immediate)
        {
            // A register bit offset is signed and reaches beyond the operand: the operand at EA + size × (offset / bits)
            // (SDM BT, "Bit(BitBase, BitOffset)"; emulate.c fetch_bit_operand adjusts the address the same way).
            long signed = (long)Alu.SignExtend(offset, size);
            ea = EffectiveAddress(i) + (ulong)((signed >> (3 + System.Numerics.BitOperations.Log2((uint)size))) * size);
            bit = (ulong)signed & (ulong)(bits - 1);
            value = ReadMemory(i.MemorySegment, ea, size);
        }
        else
        {
            bit = offset & (ulong)(bits - 1);
            if (memory) ea = EffectiveAddress(i);
            value = memory ? ReadMemory(i.MemorySegment, ea, size) : ReadOp(i, 0, size);
        }
        ulong mask = 1UL << (int)bit;
        f = (value & mask) != 0 ? f | RFLAGS_CF : f & ~RFLAGS_CF;
        ulong result = i.Mnemonic switch
        {
            Mnemonic.Bts => value | mask,
            Mnemonic.Btr => value & ~mask,
            Mnemonic.Btc => value ^ mask,
            _ => value,
        };
        if (i.Mnemonic == Mnemonic.Bt) return true;
        if (memory) WriteMemory(i.MemorySegment, ea, size, result);
        else WriteOp(i, 0, size, result);
        return true;
    }
}
