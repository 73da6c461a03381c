// SPDX-License-Identifier: MIT
// ADD/ADC/SUB/SBB/CMP/AND/OR/XOR/TEST, MUL/IMUL and DIV/IDIV, with the accumulator registers they use.
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

internal sealed partial class X86Emulator
{
    private void Arithmetic(in Instruction i, ref ulong f)
    {
        int size = OpSize(i, 0);
        ulong a = ReadOp(i, 0, size);
        ulong b = ReadOp(i, 1, size);
        ulong cf = f & RFLAGS_CF;
        ulong r = i.Mnemonic switch
        {
            Mnemonic.Add => Alu.Add(a, b, 0, size, ref f),
            Mnemonic.Adc => Alu.Add(a, b, cf, size, ref f),
            Mnemonic.Sub or Mnemonic.Cmp => Alu.Sub(a, b, 0, size, ref f),
            Mnemonic.Sbb => Alu.Sub(a, b, cf, size, ref f),
            Mnemonic.And or Mnemonic.Test => Alu.Logic(a & b, size, ref f),
            Mnemonic.Or => Alu.Logic(a | b, size, ref f),
            _ => Alu.Logic(a ^ b, size, ref f),
        };
        if (i.Mnemonic is not (Mnemonic.Cmp or Mnemonic.Test)) WriteOp(i, 0, size, r);
    }

    private void Multiply(in Instruction i, ref ulong f)
    {
        bool signed = i.Mnemonic == Mnemonic.Imul;
        if (signed && i.OpCount >= 2)
        {
            // IMUL r, r/m [, imm]: truncated product; CF = OF = the product did not fit.
            int size = OpSize(i, 0);
            ulong x = ReadOp(i, i.OpCount == 3 ? 1 : 0, size);
            ulong y = i.OpCount == 3 ? Alu.SignExtend(ReadOp(i, 2, OpSize(i, 2)), OpSize(i, 2)) : ReadOp(i, 1, size);
            Int128 p = (Int128)(long)Alu.SignExtend(x, size) * (long)Alu.SignExtend(y & Alu.Mask(size), size);
            ulong r = (ulong)p & Alu.Mask(size);
            bool overflow = (Int128)(long)Alu.SignExtend(r, size) != p;
            WriteOp(i, 0, size, r);
            f = (f & ~RFLAGS_ARITH) | Alu.Szp(r, size) | (overflow ? RFLAGS_CF | RFLAGS_OF : 0);
            return;
        }
        int n = OpSize(i, 0);
        ulong src = ReadOp(i, 0, n);
        Register acc = Accumulator(n);
        ulong a = ReadReg(acc);
        UInt128 product;
        bool fits;
        if (signed)
        {
            Int128 sp = (Int128)(long)Alu.SignExtend(a, n) * (long)Alu.SignExtend(src, n);
            product = (UInt128)sp;
            fits = (Int128)(long)Alu.SignExtend((ulong)sp & Alu.Mask(n), n) == sp;
        }
        else
        {
            product = (UInt128)a * src;
            fits = product >> (n * 8) == 0;
        }
        ulong lo = (ulong)product & Alu.Mask(n);
        ulong hi = (ulong)(product >> (n * 8)) & Alu.Mask(n);
        if (n == 1) WriteReg(Register.AX, (hi << 8) | lo);
        else
        {
            WriteReg(acc, lo);
            WriteReg(HighHalf(n), hi);
        }
        f = (f & ~RFLAGS_ARITH) | Alu.Szp(lo, n) | (fits ? 0 : RFLAGS_CF | RFLAGS_OF);
    }

    private void Divide(in Instruction i)
    {
        bool signed = i.Mnemonic == Mnemonic.Idiv;
        int n = OpSize(i, 0);
        ulong divisor = ReadOp(i, 0, n);
        if (divisor == 0) throw new GuestFault(DE_VECTOR);
        UInt128 dividend = n == 1
            ? ReadReg(Register.AX)
            : ((UInt128)ReadReg(HighHalf(n)) << (n * 8)) | ReadReg(Accumulator(n));
        ulong q, r;
        if (signed)
        {
            int bits = n * 16;
            Int128 sd = bits == 128 ? (Int128)dividend : ((Int128)(dividend << (128 - bits))) >> (128 - bits);
            Int128 sq = sd / (long)Alu.SignExtend(divisor, n);
            Int128 sr = sd % (long)Alu.SignExtend(divisor, n);
            if ((Int128)(long)Alu.SignExtend((ulong)sq & Alu.Mask(n), n) != sq) throw new GuestFault(DE_VECTOR);
            q = (ulong)sq & Alu.Mask(n);
            r = (ulong)sr & Alu.Mask(n);
        }
        else
        {
            UInt128 uq = dividend / divisor;
            if (uq > Alu.Mask(n)) throw new GuestFault(DE_VECTOR);
            q = (ulong)uq;
            r = (ulong)(dividend % divisor);
        }
        if (n == 1) WriteReg(Register.AX, (r << 8) | q);
        else
        {
            WriteReg(Accumulator(n), q);
            WriteReg(HighHalf(n), r);
        }
    }

    private static Register Accumulator(int size) => size switch { 1 => Register.AL, 2 => Register.AX, 4 => Register.EAX, _ => Register.RAX };

    private static Register HighHalf(int size) => size switch { 2 => Register.DX, 4 => Register.EDX, _ => Register.RDX };
}
