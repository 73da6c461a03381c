// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// FNSTENV/FSTENV, FLDENV, FNSAVE/FSAVE and FRSTOR in the protected-mode layouts (SDM Vol. 1 8.1.10, Figures 8-9 and
/// 8-10: 28 bytes with a 32-bit operand size, also in 64-bit mode, 14 with a 16-bit one; the real-mode layouts are not
/// modelled: the protected ones are used there too). The tag word is the full one, each register's tag computed from
/// its contents (SDM Vol. 1 8.1.7: 00 valid, 01 zero, 10 special, 11 empty). FNSTENV then masks every exception and
/// FNSAVE initializes the FPU as FNINIT does. The selectors are written as 0 (not kept: Fxsave.cs).
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryX87Environment(in Instruction i)
    {
        bool save = i.Mnemonic is Mnemonic.Fnsave or Mnemonic.Fsave or Mnemonic.Frstor;
        bool store = i.Mnemonic is Mnemonic.Fnstenv or Mnemonic.Fstenv or Mnemonic.Fnsave or Mnemonic.Fsave;
        if (!store && i.Mnemonic is not (Mnemonic.Fldenv or Mnemonic.Frstor)) return false;
        if (i.Mnemonic is Mnemonic.Fnstenv or Mnemonic.Fnsave) X87Available(waits: false);
        bool wide = i.CodeSize == CodeSize.Code64 || i.MemorySize is MemorySize.FpuEnv28 or MemorySize.FpuState108;
        int envBytes = wide ? 28 : 14, unit = wide ? 4 : 2;
        int total = envBytes + (save ? 80 : 0);
        ulong ea = EffectiveAddress(i);
        Span<byte> b = stackalloc byte[total];
        if (store)
        {
            Put(b, 0, unit, Vec.Fpu.fcw);
            Put(b, 1, unit, Vec.Fpu.fsw);
            Put(b, 2, unit, X87FullTagWord());
            if (wide)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(b[12..], (uint)Vec.Fpu.last_ip);
                BinaryPrimitives.WriteUInt32LittleEndian(b[16..], (uint)(Vec.Fpu.last_opcode & 0x7ff) << 16);
                BinaryPrimitives.WriteUInt32LittleEndian(b[20..], (uint)Vec.Fpu.last_dp);
            }
            else
            {
                BinaryPrimitives.WriteUInt16LittleEndian(b[6..], (ushort)Vec.Fpu.last_ip);
                BinaryPrimitives.WriteUInt16LittleEndian(b[10..], (ushort)Vec.Fpu.last_dp);
            }
            if (save) for (int n = 0; n < 8; n++) ((ReadOnlySpan<byte>)Vec.Fpu.fpr).Slice(n * 16, 10).CopyTo(b[(envBytes + n * 10)..]);
            WriteBytes(i.MemorySegment, ea, b);
            if (save) X87Init();
            else Vec.Fpu.fcw |= 0x3f;
            UpdateExceptionSummary();
            return true;
        }
        ReadBytes(i.MemorySegment, ea, b);
        ushort fcw = (ushort)Get(b, 0, unit), fsw = (ushort)Get(b, 1, unit), tags = (ushort)Get(b, 2, unit);
        Vec.Fpu.fcw = fcw;
        // The physical registers stay; the new TOP renames them (kvm_fpu.fpr is in ST order).
        X87MoveTop(((fsw >> 11) & 7) - X87Top);
        Vec.Fpu.fsw = fsw;
        byte abridged = 0;
        for (int p = 0; p < 8; p++) if (((tags >> (2 * p)) & 3) != 3) abridged |= (byte)(1 << p);
        Vec.Fpu.ftwx = abridged;
        Vec.Fpu.last_ip = wide ? BinaryPrimitives.ReadUInt32LittleEndian(b[12..]) : BinaryPrimitives.ReadUInt16LittleEndian(b[6..]);
        Vec.Fpu.last_opcode = wide ? (ushort)((BinaryPrimitives.ReadUInt32LittleEndian(b[16..]) >> 16) & 0x7ff) : (ushort)0;
        Vec.Fpu.last_dp = wide ? BinaryPrimitives.ReadUInt32LittleEndian(b[20..]) : BinaryPrimitives.ReadUInt16LittleEndian(b[10..]);
        if (save) for (int n = 0; n < 8; n++) b.Slice(envBytes + n * 10, 10).CopyTo(((Span<byte>)Vec.Fpu.fpr)[(n * 16)..]);
        UpdateExceptionSummary();
        return true;
    }

    private static void Put(Span<byte> b, int field, int unit, ushort value)
    {
        if (unit == 4) BinaryPrimitives.WriteUInt32LittleEndian(b[(field * 4)..], 0xffff_0000u | value);
        else BinaryPrimitives.WriteUInt16LittleEndian(b[(field * 2)..], value);
    }

    private static uint Get(ReadOnlySpan<byte> b, int field, int unit) =>
        unit == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(b[(field * 4)..]) : BinaryPrimitives.ReadUInt16LittleEndian(b[(field * 2)..]);

    /// <summary>The full tag word per physical register R(p), from ST((p − TOP) mod 8).</summary>
    private ushort X87FullTagWord()
    {
        int tags = 0;
        for (int p = 0; p < 8; p++)
        {
            int tag;
            if ((Vec.Fpu.ftwx & (1 << p)) == 0) tag = 3;
            else
            {
                var x = St((p - X87Top) & 7);
                tag = x.IsZero ? 1 : x.Exp == 0 || x.Exp == Extended80.MaxExp || x.IsUnsupported ? 2 : 0;
            }
            tags |= tag << (2 * p);
        }
        return (ushort)tags;
    }

    /// <summary>FNINIT's state (X87Control.cs), for FNSAVE.</summary>
    private void X87Init()
    {
        RenumberStack(oldTop: X87Top);
        Vec.Fpu.fcw = VcpuState.FcwDefault;
        Vec.Fpu.fsw = 0;
        Vec.Fpu.ftwx = 0;
        Vec.Fpu.last_opcode = 0;
        Vec.Fpu.last_ip = 0;
        Vec.Fpu.last_dp = 0;
    }

    private void ReadBytes(Register seg, ulong ea, Span<byte> data)
    {
        for (int k = 0; k < data.Length; k += 2) BinaryPrimitives.WriteUInt16LittleEndian(data[k..], (ushort)ReadMemory(seg, ea + (ulong)k, 2));
    }

    private void WriteBytes(Register seg, ulong ea, ReadOnlySpan<byte> data)
    {
        ReadMemory(seg, ea + (ulong)data.Length - 1, 1); // the last byte's page first: a fault writes nothing
        for (int k = 0; k < data.Length; k += 2) WriteMemory(seg, ea + (ulong)k, 2, BinaryPrimitives.ReadUInt16LittleEndian(data[k..]));
    }
}
