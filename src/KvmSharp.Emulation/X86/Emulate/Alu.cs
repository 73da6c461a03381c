// SPDX-License-Identifier: MIT
using System.Numerics;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Integer arithmetic with the flags the SDM defines (arch/x86/kvm/emulate.c computes them by running the host
/// instruction; here they are spelled out). Operands are zero-extended values of <c>size</c> bytes (1, 2, 4, 8).
/// Flags the SDM leaves undefined (AF after logic ops and shifts) are cleared.
/// </summary>
internal static class Alu
{
    public static ulong Mask(int size) => size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    public static ulong SignBit(int size) => 1UL << (size * 8 - 1);

    public static ulong SignExtend(ulong value, int size) => size switch
    {
        1 => (ulong)(long)(sbyte)value,
        2 => (ulong)(long)(short)value,
        4 => (ulong)(long)(int)value,
        _ => value,
    };

    /// <summary>ZF, SF, PF of a result.</summary>
    public static ulong Szp(ulong result, int size)
    {
        ulong f = 0;
        result &= Mask(size);
        if (result == 0) f |= RFLAGS_ZF;
        if ((result & SignBit(size)) != 0) f |= RFLAGS_SF;
        if ((BitOperations.PopCount(result & 0xff) & 1) == 0) f |= RFLAGS_PF;
        return f;
    }

    private static ulong Merge(ulong rflags, ulong newFlags, ulong which) => (rflags & ~which) | (newFlags & which);

    /// <summary>ADD / ADC (carry-in 0 or 1).</summary>
    public static ulong Add(ulong a, ulong b, ulong carry, int size, ref ulong rflags)
    {
        ulong mask = Mask(size);
        UInt128 wide = (UInt128)a + b + carry;
        ulong r = (ulong)wide & mask;
        ulong f = Szp(r, size);
        if (wide > mask) f |= RFLAGS_CF;
        if (((a ^ r) & (b ^ r) & SignBit(size)) != 0) f |= RFLAGS_OF;
        if (((a ^ b ^ r) & 0x10) != 0) f |= RFLAGS_AF;
        rflags = Merge(rflags, f, RFLAGS_ARITH);
        return r;
    }

    /// <summary>SUB / SBB / CMP (borrow-in 0 or 1).</summary>
    public static ulong Sub(ulong a, ulong b, ulong borrow, int size, ref ulong rflags)
    {
        ulong mask = Mask(size);
        ulong r = (a - b - borrow) & mask;
        ulong f = Szp(r, size);
        if ((UInt128)a < (UInt128)b + borrow) f |= RFLAGS_CF;
        if (((a ^ b) & (a ^ r) & SignBit(size)) != 0) f |= RFLAGS_OF;
        if (((a ^ b ^ r) & 0x10) != 0) f |= RFLAGS_AF;
        rflags = Merge(rflags, f, RFLAGS_ARITH);
        return r;
    }

    /// <summary>AND / OR / XOR / TEST: CF = OF = 0.</summary>
    public static ulong Logic(ulong r, int size, ref ulong rflags)
    {
        r &= Mask(size);
        rflags = Merge(rflags, Szp(r, size), RFLAGS_ARITH);
        return r;
    }

    /// <summary>INC / DEC: like ADD/SUB 1, CF unchanged.</summary>
    public static ulong IncDec(ulong a, bool inc, int size, ref ulong rflags)
    {
        ulong cf = rflags & RFLAGS_CF;
        ulong r = inc ? Add(a, 1, 0, size, ref rflags) : Sub(a, 1, 0, size, ref rflags);
        rflags = (rflags & ~RFLAGS_CF) | cf;
        return r;
    }

    /// <summary>NEG: 0 - a; CF = a != 0.</summary>
    public static ulong Neg(ulong a, int size, ref ulong rflags) => Sub(0, a, 0, size, ref rflags);

    /// <summary>SHL/SAL, SHR, SAR, ROL, ROR with the count already read; a masked count of 0 changes no flags.</summary>
    public static ulong Shift(Iced.Intel.Mnemonic op, ulong a, ulong count, int size, ref ulong rflags)
    {
        int bits = size * 8;
        int n = (int)(count & (size == 8 ? 0x3fUL : 0x1fUL));
        ulong mask = Mask(size);
        a &= mask;
        if (n == 0) return a;
        ulong r, cf;
        ulong f;
        switch (op)
        {
            case Iced.Intel.Mnemonic.Shl:
            case Iced.Intel.Mnemonic.Sal:
                r = n >= bits ? 0 : (a << n) & mask;
                cf = n > bits ? 0 : (a >> (bits - n)) & 1;
                f = Szp(r, size) | (cf != 0 ? RFLAGS_CF : 0);
                if ((((r & SignBit(size)) != 0) ? 1UL : 0UL) != cf) f |= RFLAGS_OF;
                rflags = Merge(rflags, f, RFLAGS_ARITH);
                return r;
            case Iced.Intel.Mnemonic.Shr:
                r = n >= bits ? 0 : a >> n;
                cf = n > bits ? 0 : (a >> (n - 1)) & 1;
                f = Szp(r, size) | (cf != 0 ? RFLAGS_CF : 0);
                if ((a & SignBit(size)) != 0) f |= RFLAGS_OF;
                rflags = Merge(rflags, f, RFLAGS_ARITH);
                return r;
            case Iced.Intel.Mnemonic.Sar:
                long s = (long)SignExtend(a, size);
                r = (ulong)(s >> Math.Min(n, 63)) & mask;
                cf = (ulong)(s >> Math.Min(n - 1, 63)) & 1;
                f = Szp(r, size) | (cf != 0 ? RFLAGS_CF : 0);
                rflags = Merge(rflags, f, RFLAGS_ARITH);
                return r;
            case Iced.Intel.Mnemonic.Rol:
            {
                int k = n % bits;
                r = k == 0 ? a : ((a << k) | (a >> (bits - k))) & mask;
                cf = r & 1;
                ulong of = (((r & SignBit(size)) != 0 ? 1UL : 0UL) ^ cf) != 0 ? RFLAGS_OF : 0;
                rflags = Merge(rflags, (cf != 0 ? RFLAGS_CF : 0) | of, RFLAGS_CF | RFLAGS_OF);
                return r;
            }
            default: // Ror
            {
                int k = n % bits;
                r = k == 0 ? a : ((a >> k) | (a << (bits - k))) & mask;
                bool msb = (r & SignBit(size)) != 0;
                bool msb2 = (r & (SignBit(size) >> 1)) != 0;
                rflags = Merge(rflags, (msb ? RFLAGS_CF : 0) | (msb ^ msb2 ? RFLAGS_OF : 0), RFLAGS_CF | RFLAGS_OF);
                return r;
            }
        }
    }

    /// <summary>
    /// BSF/BSR flags: ZF = the source was zero. CF, OF, SF, AF and PF are undefined in the SDM; AMD EPYC (probed
    /// natively, flags in all-clear and all-set) clears CF, OF, SF and AF and sets PF from the parity of the bit index
    /// (of 0 for a zero source).
    /// </summary>
    public static void BitScanFlags(ulong index, bool zeroSource, ref ulong rflags)
    {
        ulong f = (zeroSource ? RFLAGS_ZF : 0) | (Szp(index, 8) & RFLAGS_PF);
        rflags = Merge(rflags, f, RFLAGS_ARITH);
    }

    /// <summary>
    /// TZCNT/LZCNT flags: CF = the source was zero, ZF = the count is zero. OF, SF, AF and PF are undefined in the
    /// SDM; AMD EPYC (probed) clears SF, AF and PF and leaves OF as it was.
    /// </summary>
    public static void CountZerosFlags(ulong count, bool zeroSource, ref ulong rflags)
    {
        ulong f = (zeroSource ? RFLAGS_CF : 0) | (count == 0 ? RFLAGS_ZF : 0);
        rflags = Merge(rflags, f, RFLAGS_CF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF);
    }

    /// <summary>
    /// SHLD (<paramref name="left"/>) / SHRD: <paramref name="a"/> shifted by the count (masked to 5 bits, 6 for
    /// 64-bit operands) with the bits of <paramref name="b"/> shifted in (SDM Vol. 2B SHLD/SHRD). A masked count of 0
    /// changes no flags. CF = the last bit shifted out; SF, ZF, PF from the result. Defined only for a count of 1, OF
    /// = the sign changed; AMD EPYC (probed, counts 1 to 7) computes it for any count as MSB(result) XOR CF (SHLD) or
    /// MSB(result) XOR the next bit (SHRD), and sets AF (undefined) to 1. A 16-bit count above 16 leaves the result
    /// undefined: AMD shifts on through the source again (dest:src:src, probed: shld ax, bx, 20 with 0x1234, 0xABCD
    /// gives 0xBCDA), modelled here; its OF there (0 in the probes) is not.
    /// </summary>
    public static ulong DoubleShift(bool left, ulong a, ulong b, ulong count, int size, ref ulong rflags)
    {
        int bits = size * 8;
        int n = (int)(count & (size == 8 ? 0x3fUL : 0x1fUL));
        ulong mask = Mask(size);
        a &= mask;
        b &= mask;
        if (n == 0) return a;
        ulong r, cf;
        if (size == 8)
        {
            UInt128 pair = left ? ((UInt128)a << 64) | b : ((UInt128)b << 64) | a;
            r = left ? (ulong)(pair >> (64 - n)) : (ulong)(pair >> n);
            cf = left ? (ulong)(pair >> (128 - n)) & 1 : (ulong)(pair >> (n - 1)) & 1;
        }
        else
        {
            // dest:src:src (SHLD) or src:src:dest (SHRD): 3 × bits ≤ 96.
            UInt128 triple = left ? ((UInt128)a << (2 * bits)) | ((UInt128)b << bits) | b
                : ((UInt128)b << (2 * bits)) | ((UInt128)b << bits) | a;
            r = left ? (ulong)(triple >> (2 * bits - n)) & mask : (ulong)(triple >> n) & mask;
            cf = left ? (ulong)(triple >> (3 * bits - n)) & 1 : (ulong)(triple >> (n - 1)) & 1;
        }
        bool msb = (r & SignBit(size)) != 0;
        bool of = left ? msb ^ (cf != 0) : msb ^ ((r & (SignBit(size) >> 1)) != 0);
        ulong f = Szp(r, size) | (cf != 0 ? RFLAGS_CF : 0) | RFLAGS_AF | (of ? RFLAGS_OF : 0);
        rflags = Merge(rflags, f, RFLAGS_ARITH);
        return r;
    }

    /// <summary>
    /// RCL (<paramref name="left"/>) / RCR: rotate the operand and CF together (SDM Vol. 2B RCL/RCR: the count masked
    /// to 5 bits, 6 for 64-bit operands, then taken modulo 9 for 8-bit and 17 for 16-bit operands). A masked count of
    /// 0 changes nothing; otherwise CF takes the last bit rotated out of the operand (CF itself after a whole turn).
    /// OF is defined for a count of 1 (RCL: MSB(result) XOR CF; RCR: MSB(result) XOR the next bit); AMD EPYC (probed,
    /// counts 5, 9, 12, 17, 20) computes the same for every non-zero masked count, including a whole turn. SF, ZF, AF
    /// and PF are unaffected.
    /// </summary>
    public static ulong RotateCarry(bool left, ulong a, ulong count, int size, ref ulong rflags)
    {
        int bits = size * 8;
        int n = (int)(count & (size == 8 ? 0x3fUL : 0x1fUL));
        ulong mask = Mask(size);
        a &= mask;
        if (n == 0) return a;
        int k = size switch { 1 => n % 9, 2 => n % 17, _ => n };
        int width = bits + 1;
        UInt128 wideMask = ((UInt128)1 << width) - 1;
        UInt128 v = ((UInt128)(rflags & RFLAGS_CF) << bits) | a;
        if (k != 0) v = (left ? (v << k) | (v >> (width - k)) : (v >> k) | (v << (width - k))) & wideMask;
        ulong r = (ulong)v & mask;
        bool cf = (ulong)(v >> bits) != 0;
        bool msb = (r & SignBit(size)) != 0;
        bool of = left ? msb ^ cf : msb ^ ((r & (SignBit(size) >> 1)) != 0);
        rflags = Merge(rflags, (cf ? RFLAGS_CF : 0) | (of ? RFLAGS_OF : 0), RFLAGS_CF | RFLAGS_OF);
        return r;
    }

    /// <summary>Whether a Jcc/SETcc/CMOVcc condition holds.</summary>
    public static bool Condition(Iced.Intel.ConditionCode cc, ulong f)
    {
        bool cf = (f & RFLAGS_CF) != 0, zf = (f & RFLAGS_ZF) != 0, sf = (f & RFLAGS_SF) != 0;
        bool of = (f & RFLAGS_OF) != 0, pf = (f & RFLAGS_PF) != 0;
        return cc switch
        {
            Iced.Intel.ConditionCode.o => of,
            Iced.Intel.ConditionCode.no => !of,
            Iced.Intel.ConditionCode.b => cf,
            Iced.Intel.ConditionCode.ae => !cf,
            Iced.Intel.ConditionCode.e => zf,
            Iced.Intel.ConditionCode.ne => !zf,
            Iced.Intel.ConditionCode.be => cf || zf,
            Iced.Intel.ConditionCode.a => !cf && !zf,
            Iced.Intel.ConditionCode.s => sf,
            Iced.Intel.ConditionCode.ns => !sf,
            Iced.Intel.ConditionCode.p => pf,
            Iced.Intel.ConditionCode.np => !pf,
            Iced.Intel.ConditionCode.l => sf != of,
            Iced.Intel.ConditionCode.ge => sf == of,
            Iced.Intel.ConditionCode.le => zf || sf != of,
            Iced.Intel.ConditionCode.g => !zf && sf == of,
            _ => true,
        };
    }
}
