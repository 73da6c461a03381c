// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// FXCH, FFREE/FFREEP, FINCSTP, FDECSTP, FNOP and FCMOVcc (SDM Vol. 2A, each instruction's page): no arithmetic, only
/// tags, TOP and stack underflow. FINCSTP/FDECSTP move TOP without touching the tags; FCMOVcc tests CF/ZF/PF.
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryX87StackControl(in Instruction i, ref X87Env env, ulong rflags)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Fnop:
                return true;
            case Mnemonic.Fxch:
            {
                int s = StIndex(i.OpCount == 2 ? i.Op1Register : i.OpCount == 1 ? i.Op0Register : Register.ST1);
                SetC1(false);
                if (X87Empty(0) || X87Empty(s))
                {
                    if (!X87Underflow(ref env)) return true;
                    // Masked: an empty side is the real indefinite before the exchange (SDM Vol. 2A FXCH).
                    if (X87Empty(0)) SetSt(0, Extended80.Indefinite);
                    if (X87Empty(s)) SetSt(s, Extended80.Indefinite);
                }
                var a = St(0);
                SetSt(0, St(s));
                SetSt(s, a);
                return true;
            }
            case Mnemonic.Ffree or Mnemonic.Ffreep:
                Vec.Fpu.ftwx &= (byte)~(1 << X87Physical(StIndex(i.Op0Register)));
                if (i.Mnemonic == Mnemonic.Ffreep) X87MoveTop(1);
                return true;
            case Mnemonic.Fincstp or Mnemonic.Fdecstp:
                X87MoveTop(i.Mnemonic == Mnemonic.Fincstp ? 1 : -1);
                SetC1(false);
                return true;
            case Mnemonic.Fcmovb or Mnemonic.Fcmove or Mnemonic.Fcmovbe or Mnemonic.Fcmovu or Mnemonic.Fcmovnb or Mnemonic.Fcmovne
                or Mnemonic.Fcmovnbe or Mnemonic.Fcmovnu:
            {
                int s = StIndex(i.Op1Register);
                if (X87Empty(0) || X87Empty(s))
                {
                    if (X87Underflow(ref env)) SetSt(0, Extended80.Indefinite);
                    return true;
                }
                bool cf = (rflags & RFLAGS_CF) != 0, zf = (rflags & RFLAGS_ZF) != 0, pf = (rflags & RFLAGS_PF) != 0;
                bool move = i.Mnemonic switch
                {
                    Mnemonic.Fcmovb => cf,
                    Mnemonic.Fcmove => zf,
                    Mnemonic.Fcmovbe => cf || zf,
                    Mnemonic.Fcmovu => pf,
                    Mnemonic.Fcmovnb => !cf,
                    Mnemonic.Fcmovne => !zf,
                    Mnemonic.Fcmovnbe => !cf && !zf,
                    _ => !pf,
                };
                if (move) SetSt(0, St(s));
                SetC1(false);
                return true;
            }
            default:
                return false;
        }
    }
}
