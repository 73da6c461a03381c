// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The x87 data instructions' entry (loads and stores here; arithmetic, compares and the rest in their own files):
/// each is a waiting instruction — #NM with CR0.EM/TS, then #MF for a pending unmasked exception (SDM Vol. 1 8.7;
/// <see cref="X87Available"/>) — whose raised flags join FSW (<see cref="X87Commit"/>). Memory is read before any
/// register changes, so a page fault leaves the FPU as it was. Transcendentals (FSIN, FCOS, FSINCOS, FPTAN, FPATAN,
/// F2XM1, FYL2X, FYL2XP1) and FBLD/FBSTP are not emulated: they stay emulation failures.
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryX87Arithmetic(in Instruction i, ref ulong rflags)
    {
        if (i.Mnemonic is Mnemonic.Fnstenv or Mnemonic.Fnsave) return TryX87Environment(i); // non-waiting
        if (!IsX87Data(i.Mnemonic)) return false;
        X87Available(waits: true);
        var env = new X87Env(Vec.Fpu.fcw);
        _ = TryX87LoadStore(i, ref env) || TryX87Compute(i, ref env) || TryX87Compare(i, ref env, ref rflags) || TryX87Environment(i)
            || TryX87StackControl(i, ref env, rflags);
        X87Commit(env);
        if (i.Mnemonic is not (Mnemonic.Fldenv or Mnemonic.Frstor or Mnemonic.Fstenv or Mnemonic.Fsave)) X87NoteInstruction(i);
        return true;
    }

    private static bool IsX87Data(Mnemonic m) => m switch
    {
        Mnemonic.Fld or Mnemonic.Fst or Mnemonic.Fstp or Mnemonic.Fild or Mnemonic.Fist or Mnemonic.Fistp or Mnemonic.Fisttp
            or Mnemonic.Fldz or Mnemonic.Fld1 or Mnemonic.Fldpi or Mnemonic.Fldl2e or Mnemonic.Fldl2t or Mnemonic.Fldlg2 or Mnemonic.Fldln2
            or Mnemonic.Fadd or Mnemonic.Faddp or Mnemonic.Fiadd or Mnemonic.Fsub or Mnemonic.Fsubp or Mnemonic.Fsubr or Mnemonic.Fsubrp
            or Mnemonic.Fisub or Mnemonic.Fisubr or Mnemonic.Fmul or Mnemonic.Fmulp or Mnemonic.Fimul or Mnemonic.Fdiv or Mnemonic.Fdivp
            or Mnemonic.Fdivr or Mnemonic.Fdivrp or Mnemonic.Fidiv or Mnemonic.Fidivr
            or Mnemonic.Fcom or Mnemonic.Fcomp or Mnemonic.Fcompp or Mnemonic.Fucom or Mnemonic.Fucomp or Mnemonic.Fucompp
            or Mnemonic.Ficom or Mnemonic.Ficomp or Mnemonic.Fcomi or Mnemonic.Fcomip or Mnemonic.Fucomi or Mnemonic.Fucomip
            or Mnemonic.Ftst or Mnemonic.Fxam or Mnemonic.Fchs or Mnemonic.Fabs or Mnemonic.Fsqrt or Mnemonic.Frndint
            or Mnemonic.Fscale or Mnemonic.Fxtract or Mnemonic.Fprem or Mnemonic.Fprem1 or Mnemonic.Fxch or Mnemonic.Ffree
            or Mnemonic.Ffreep or Mnemonic.Fincstp or Mnemonic.Fdecstp or Mnemonic.Fnop
            or Mnemonic.Fcmovb or Mnemonic.Fcmove or Mnemonic.Fcmovbe or Mnemonic.Fcmovu or Mnemonic.Fcmovnb or Mnemonic.Fcmovne
            or Mnemonic.Fcmovnbe or Mnemonic.Fcmovnu
            or Mnemonic.Fldenv or Mnemonic.Frstor or Mnemonic.Fstenv or Mnemonic.Fsave => true,
        _ => false,
    };

    private bool TryX87LoadStore(in Instruction i, ref X87Env env)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Fld:
                X87Load(i, ref env);
                return true;
            case Mnemonic.Fild:
                X87Push(X87Math.FromInteger(ReadX87Integer(i)), ref env);
                SetC1IfNoFault(env);
                return true;
            case Mnemonic.Fst or Mnemonic.Fstp:
                X87Store(i, ref env, pop: i.Mnemonic == Mnemonic.Fstp);
                return true;
            case Mnemonic.Fist or Mnemonic.Fistp or Mnemonic.Fisttp:
                X87StoreInteger(i, ref env, pop: i.Mnemonic != Mnemonic.Fist, truncate: i.Mnemonic == Mnemonic.Fisttp);
                return true;
            case Mnemonic.Fldz or Mnemonic.Fld1 or Mnemonic.Fldpi or Mnemonic.Fldl2e or Mnemonic.Fldl2t or Mnemonic.Fldlg2 or Mnemonic.Fldln2:
                X87Push(X87Constant(i.Mnemonic, env.Rc), ref env);
                SetC1IfNoFault(env);
                return true;
            default:
                return false;
        }
    }

    /// <summary>C1 = 0 for an instruction that can only have had a stack fault (which set C1 itself).</summary>
    private void SetC1IfNoFault(in X87Env env)
    {
        if ((env.Flags & X87Env.SF) == 0) SetC1(false);
    }

    private void X87Load(in Instruction i, ref X87Env env)
    {
        Extended80 value;
        if (i.Op0Kind == OpKind.Memory)
        {
            ulong ea = EffectiveAddress(i);
            value = i.MemorySize switch
            {
                MemorySize.Float32 => X87Math.Load(ReadMemory(i.MemorySegment, ea, 4), FloatFormat.Single, ref env),
                MemorySize.Float64 => X87Math.Load(ReadMemory(i.MemorySegment, ea, 8), FloatFormat.Double, ref env),
                // m80: loaded as it is, SNaNs and unsupported encodings included (SDM Vol. 2A FLD: no #IA for m80).
                _ => ReadExtended(i.MemorySegment, ea),
            };
            // An unmasked #IA (SNaN) pushes nothing; an unmasked #D still loads (seen on this EPYC: x87_sweep.c fld32).
            if ((env.Flags & ~env.Fcw & X87Env.IE) != 0) return;
        }
        else
        {
            int src = StIndex(i.Op0Register);
            if (X87Empty(src))
            {
                if (!X87Underflow(ref env)) return;
                value = Extended80.Indefinite;
            }
            else value = St(src);
        }
        X87Push(value, ref env);
        SetC1IfNoFault(env);
    }

    private void X87Store(in Instruction i, ref X87Env env, bool pop)
    {
        if (i.Op0Kind == OpKind.Register)
        {
            if (X87Empty(0))
            {
                if (!X87Underflow(ref env)) return;
                SetSt(StIndex(i.Op0Register), Extended80.Indefinite);
            }
            else SetSt(StIndex(i.Op0Register), St(0)); // a register copy is not rounded (SDM Vol. 2A FST)
        }
        else
        {
            ulong ea = EffectiveAddress(i);
            bool empty = X87Empty(0);
            if (empty && !X87Underflow(ref env)) return;
            var x = empty ? Extended80.Indefinite : St(0);
            switch (i.MemorySize)
            {
                case MemorySize.Float32 or MemorySize.Float64:
                {
                    var f = i.MemorySize == MemorySize.Float32 ? FloatFormat.Single : FloatFormat.Double;
                    if (!X87Math.Store(x, f, ref env, out ulong bits)) return;
                    WriteMemory(i.MemorySegment, ea, f.Bits / 8, bits);
                    break;
                }
                default:
                    WriteExtended(i.MemorySegment, ea, x);
                    break;
            }
            if (!empty) SetC1(env.RoundedUp);
        }
        if (pop) X87Pop();
    }

    private void X87StoreInteger(in Instruction i, ref X87Env env, bool pop, bool truncate)
    {
        int bytes = i.MemorySize switch { MemorySize.Int16 => 2, MemorySize.Int32 => 4, _ => 8 };
        ulong ea = EffectiveAddress(i);
        long value;
        if (X87Empty(0))
        {
            if (!X87Underflow(ref env)) return;
            value = bytes == 8 ? long.MinValue : -(1L << (bytes * 8 - 1));
        }
        else
        {
            SetC1(false);
            if (!X87Math.ToInteger(St(0), bytes * 8, truncate, ref env, out value)) return;
            SetC1(env.RoundedUp);
        }
        WriteMemory(i.MemorySegment, ea, bytes, (ulong)value);
        if (pop) X87Pop();
    }

    private long ReadX87Integer(in Instruction i)
    {
        ulong ea = EffectiveAddress(i);
        return i.MemorySize switch
        {
            MemorySize.Int16 => (short)ReadMemory(i.MemorySegment, ea, 2),
            MemorySize.Int32 => (int)ReadMemory(i.MemorySegment, ea, 4),
            _ => (long)ReadMemory(i.MemorySegment, ea, 8),
        };
    }

    /// <summary>An m80 operand: two accesses (8 + 2 bytes), both translated before the value is used.</summary>
    private Extended80 ReadExtended(Register seg, ulong ea)
    {
        ulong sig = ReadMemory(seg, ea, 8);
        ushort se = (ushort)ReadMemory(seg, ea + 8, 2);
        return new(se, sig);
    }

    private void WriteExtended(Register seg, ulong ea, Extended80 x)
    {
        // Both parts are checked first so a fault on the second page writes nothing.
        ReadMemory(seg, ea + 8, 2);
        WriteMemory(seg, ea, 8, x.Significand);
        WriteMemory(seg, ea + 8, 2, x.SignExp);
    }

    /// <summary>
    /// FLDZ, FLD1 and the transcendental constants, rounded by RC from more bits than 64 (SDM Vol. 1 8.3.8: "the
    /// constants … are rounded … based on the RC field"; no #P). The significands beyond 64 bits: π C90FDAA22168C234
    /// C4C6628B, log2(10) D49A784BCD1B8AFE 492BF6FF, log2(e) B8AA3B295C17F0BB BE87FED0, log10(2) 9A209A84FBCFF798
    /// 8F8959AC, ln 2 B17217F7D1CF79AB C9E3B398.
    /// </summary>
    private static Extended80 X87Constant(Mnemonic m, int rc)
    {
        (ushort exp, ulong sig, uint more) = m switch
        {
            Mnemonic.Fldz => ((ushort)0, 0UL, 0u),
            Mnemonic.Fld1 => ((ushort)0x3fff, Extended80.IntegerBit, 0u),
            Mnemonic.Fldpi => ((ushort)0x4000, 0xC90FDAA22168C234UL, 0xC4C6628Bu),
            Mnemonic.Fldl2t => ((ushort)0x4000, 0xD49A784BCD1B8AFEUL, 0x492BF6FFu),
            Mnemonic.Fldl2e => ((ushort)0x3fff, 0xB8AA3B295C17F0BBUL, 0xBE87FED0u),
            Mnemonic.Fldlg2 => ((ushort)0x3ffd, 0x9A209A84FBCFF798UL, 0x8F8959ACu),
            _ => ((ushort)0x3ffe, 0xB17217F7D1CF79ABUL, 0xC9E3B398u),
        };
        bool up = rc switch { 0 => (more & 0x8000_0000) != 0, 2 => more != 0, _ => false }; // all positive, no ties
        return new(exp, sig + (up ? 1UL : 0));
    }
}
