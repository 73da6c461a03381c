// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// FCOM/FCOMP/FCOMPP, FUCOM/FUCOMP/FUCOMPP, FICOM/FICOMP, FTST, FXAM into C3/C2/C0, and FCOMI/FCOMIP/FUCOMI/FUCOMIP
/// into ZF/PF/CF with OF, SF and AF cleared (SDM Vol. 2A FCOM, FCOMI, FTST, FXAM: greater 000, less C0/CF, equal
/// C3/ZF, unordered all three). C1 is cleared. An unmasked IE or DE still sets them but does not pop (observed).
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryX87Compare(in Instruction i, ref X87Env env, ref ulong rflags)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Fcom or Mnemonic.Fcomp or Mnemonic.Fucom or Mnemonic.Fucomp or Mnemonic.Ficom or Mnemonic.Ficomp:
            {
                bool quiet = i.Mnemonic is Mnemonic.Fucom or Mnemonic.Fucomp;
                int pops = i.Mnemonic is Mnemonic.Fcomp or Mnemonic.Fucomp or Mnemonic.Ficomp ? 1 : 0;
                if (i.OpCount >= 1 && i.Op0Kind == OpKind.Memory)
                {
                    ulong ea = EffectiveAddress(i);
                    bool denormal = false;
                    var b = i.MemorySize switch
                    {
                        MemorySize.Float32 => X87Math.FromBinary(ReadMemory(i.MemorySegment, ea, 4), FloatFormat.Single, out denormal),
                        MemorySize.Float64 => X87Math.FromBinary(ReadMemory(i.MemorySegment, ea, 8), FloatFormat.Double, out denormal),
                        _ => X87Math.FromInteger(ReadX87Integer(i)),
                    };
                    X87CompareToCodes(ref env, b, false, denormal, quiet, pops);
                }
                else X87CompareToCodes(ref env, default, true, false, quiet, pops, StIndex(i.OpCount == 2 ? i.Op1Register : i.OpCount == 1 ? i.Op0Register : Register.ST1));
                return true;
            }
            case Mnemonic.Fcompp or Mnemonic.Fucompp:
                X87CompareToCodes(ref env, default, true, false, i.Mnemonic == Mnemonic.Fucompp, 2, 1);
                return true;
            case Mnemonic.Ftst:
                X87CompareToCodes(ref env, Extended80.PositiveZero, false, false, false, 0);
                return true;
            case Mnemonic.Fxam:
            {
                var x = St(0);
                SetConditions((ushort)(X87Math.Classify(x, X87Empty(0)) | (x.Sign ? FswC1 : 0)), FswConditions);
                return true;
            }
            case Mnemonic.Fcomi or Mnemonic.Fcomip or Mnemonic.Fucomi or Mnemonic.Fucomip:
            {
                int s = StIndex(i.OpCount == 2 ? i.Op1Register : Register.ST1);
                var order = X87Order.Unordered;
                SetC1(false);
                // As FCOM: an unmasked exception still sets the flags but does not pop (seen on this EPYC: fucomip).
                if (X87Empty(0) || X87Empty(s)) X87Underflow(ref env);
                else order = X87Math.Compare(St(0), St(s), i.Mnemonic is Mnemonic.Fucomi or Mnemonic.Fucomip, ref env);
                ulong flags = order switch
                {
                    X87Order.Less => RFLAGS_CF,
                    X87Order.Equal => RFLAGS_ZF,
                    X87Order.Unordered => RFLAGS_ZF | RFLAGS_PF | RFLAGS_CF,
                    _ => 0,
                };
                rflags = (rflags & ~(RFLAGS_ZF | RFLAGS_PF | RFLAGS_CF | RFLAGS_OF | RFLAGS_SF | RFLAGS_AF)) | flags;
                if (i.Mnemonic is Mnemonic.Fcomip or Mnemonic.Fucomip && !env.PreComputationFault) X87Pop();
                return true;
            }
            default:
                return false;
        }
    }

    /// <summary>Compares ST(0) with ST(<paramref name="st"/>) or <paramref name="operand"/>, sets C3/C2/C0, pops.</summary>
    private void X87CompareToCodes(ref X87Env env, Extended80 operand, bool fromRegister, bool denormal, bool quiet, int pops, int st = 1)
    {
        var order = X87Order.Unordered;
        SetC1(false);
        // Seen on this EPYC (x87_sweep.c, FCW 0x0340): an unmasked #IS/#IA/#D still sets C3/C2/C0 but does not pop.
        if (X87Empty(0) || (fromRegister && X87Empty(st))) X87Underflow(ref env);
        else order = X87Math.Compare(St(0), fromRegister ? St(st) : operand, quiet, ref env, denormal);
        if (env.PreComputationFault) pops = 0;
        ushort cc = order switch
        {
            X87Order.Less => FswC0,
            X87Order.Equal => FswC3,
            X87Order.Unordered => FswC3 | FswC2 | FswC0,
            _ => 0,
        };
        SetConditions(cc, FswC0 | FswC2 | FswC3);
        for (int n = 0; n < pops; n++) X87Pop();
    }
}
