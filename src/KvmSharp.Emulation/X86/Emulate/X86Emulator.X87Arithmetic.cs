// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// FADD/FSUB(R)/FMUL/FDIV(R) with their P and integer forms, FSQRT, FRNDINT, FSCALE, FXTRACT, FPREM/FPREM1, FCHS and
/// FABS (SDM Vol. 2A, each instruction's page). Iced gives the register forms as (destination, source): "fsub st(i),
/// st(0)" is ST(i) ← ST(i) − ST(0), the R forms reverse the operands. An empty operand is a stack underflow; an
/// unmasked IE/DE/ZE leaves the destination and TOP unchanged (SDM Vol. 1 8.5). C1 is the round-up indication.
/// </summary>
internal sealed partial class X86Emulator
{
    private enum X87Op { Add, Sub, SubR, Mul, Div, DivR }

    private bool TryX87Compute(in Instruction i, ref X87Env env)
    {
        X87Op? op = i.Mnemonic switch
        {
            Mnemonic.Fadd or Mnemonic.Faddp or Mnemonic.Fiadd => X87Op.Add,
            Mnemonic.Fsub or Mnemonic.Fsubp or Mnemonic.Fisub => X87Op.Sub,
            Mnemonic.Fsubr or Mnemonic.Fsubrp or Mnemonic.Fisubr => X87Op.SubR,
            Mnemonic.Fmul or Mnemonic.Fmulp or Mnemonic.Fimul => X87Op.Mul,
            Mnemonic.Fdiv or Mnemonic.Fdivp or Mnemonic.Fidiv => X87Op.Div,
            Mnemonic.Fdivr or Mnemonic.Fdivrp or Mnemonic.Fidivr => X87Op.DivR,
            _ => null,
        };
        if (op is { } o)
        {
            X87Binary(i, o, ref env, pop: i.Mnemonic is Mnemonic.Faddp or Mnemonic.Fsubp or Mnemonic.Fsubrp or Mnemonic.Fmulp
                or Mnemonic.Fdivp or Mnemonic.Fdivrp);
            return true;
        }
        switch (i.Mnemonic)
        {
            case Mnemonic.Fchs or Mnemonic.Fabs:
                // Sign only: no exception for NaNs or denormals (SDM Vol. 2A FCHS/FABS: #IS only).
                X87Unary(ref env, i.Mnemonic == Mnemonic.Fchs ? static x => x.Negate() : static x => x.Abs(), rounds: false);
                return true;
            case Mnemonic.Fsqrt:
                X87Unary(ref env, null, rounds: true, sqrt: true);
                return true;
            case Mnemonic.Frndint:
                X87Unary(ref env, null, rounds: true);
                return true;
            case Mnemonic.Fscale:
                X87TwoRegisters(ref env, (ref X87Env e, Extended80 a, Extended80 b) => X87Math.Scale(a, b, ref e));
                return true;
            case Mnemonic.Fprem or Mnemonic.Fprem1:
                X87Remainder(ref env, ieee: i.Mnemonic == Mnemonic.Fprem1);
                return true;
            case Mnemonic.Fxtract:
                X87Extract(ref env);
                return true;
            default:
                return false;
        }
    }

    private void X87Binary(in Instruction i, X87Op op, ref X87Env env, bool pop)
    {
        int dst;
        Extended80 src;
        bool srcDenormal = false, srcEmpty = false;
        if (i.OpCount == 1 && i.Op0Kind == OpKind.Memory)
        {
            dst = 0;
            ulong ea = EffectiveAddress(i);
            src = i.MemorySize switch
            {
                MemorySize.Float32 => X87Math.FromBinary(ReadMemory(i.MemorySegment, ea, 4), FloatFormat.Single, out srcDenormal),
                MemorySize.Float64 => X87Math.FromBinary(ReadMemory(i.MemorySegment, ea, 8), FloatFormat.Double, out srcDenormal),
                _ => X87Math.FromInteger(ReadX87Integer(i)),
            };
        }
        else
        {
            (dst, int s) = i.OpCount == 2 ? (StIndex(i.Op0Register), StIndex(i.Op1Register)) : (1, 0);
            srcEmpty = X87Empty(s);
            src = St(s);
        }
        if (X87Empty(dst) || srcEmpty)
        {
            if (!X87Underflow(ref env)) return;
            SetSt(dst, Extended80.Indefinite);
        }
        else
        {
            var d = St(dst);
            var result = op switch
            {
                X87Op.Add => X87Math.Add(d, src, false, ref env, srcDenormal),
                X87Op.Sub => X87Math.Add(d, src, true, ref env, srcDenormal),
                X87Op.SubR => X87Math.Add(src, d, true, ref env, srcDenormal),
                X87Op.Mul => X87Math.Multiply(d, src, ref env, srcDenormal),
                X87Op.Div => X87Math.Divide(d, src, ref env, srcDenormal),
                _ => X87Math.Divide(src, d, ref env, srcDenormal),
            };
            if (env.PreComputationFault) return;
            SetSt(dst, result);
            SetC1(env.RoundedUp);
        }
        if (pop) X87Pop();
    }

    private void X87Unary(ref X87Env env, Func<Extended80, Extended80>? signOnly, bool rounds, bool sqrt = false)
    {
        if (X87Empty(0))
        {
            if (X87Underflow(ref env)) SetSt(0, Extended80.Indefinite);
            return;
        }
        var x = St(0);
        var result = signOnly is not null ? signOnly(x) : sqrt ? X87Math.Sqrt(x, ref env) : X87Math.RoundToIntegral(x, ref env);
        if (env.PreComputationFault) return;
        SetSt(0, result);
        SetC1(rounds && env.RoundedUp);
    }

    private delegate Extended80 X87Binary2(ref X87Env env, Extended80 a, Extended80 b);

    /// <summary>ST(0) ← f(ST(0), ST(1)).</summary>
    private void X87TwoRegisters(ref X87Env env, X87Binary2 f)
    {
        if (X87Empty(0) || X87Empty(1))
        {
            if (X87Underflow(ref env)) SetSt(0, Extended80.Indefinite);
            return;
        }
        var result = f(ref env, St(0), St(1));
        if (env.PreComputationFault) return;
        SetSt(0, result);
        SetC1(env.RoundedUp);
    }

    /// <summary>FPREM/FPREM1: C2 = incomplete reduction, C0/C3/C1 = Q2/Q1/Q0 (SDM Vol. 2A FPREM).</summary>
    private void X87Remainder(ref X87Env env, bool ieee)
    {
        if (X87Empty(0) || X87Empty(1))
        {
            if (X87Underflow(ref env)) SetSt(0, Extended80.Indefinite);
            return;
        }
        var (result, cc) = X87Math.Remainder(St(0), St(1), ieee, ref env);
        if (env.PreComputationFault) return;
        SetSt(0, result);
        SetConditions(cc, FswConditions);
    }

    /// <summary>FXTRACT: ST(0) ← exponent, then the significand pushed (SDM Vol. 2A FXTRACT).</summary>
    private void X87Extract(ref X87Env env)
    {
        if (X87Empty(0))
        {
            if (!X87Underflow(ref env)) return;
            SetSt(0, Extended80.Indefinite);
            X87Push(Extended80.Indefinite, ref env);
            return;
        }
        if (!X87Empty(7))
        {
            env.Flags |= X87Env.IE | X87Env.SF;
            SetC1(true);
            if (!env.Masked(X87Env.IE)) return;
            SetSt(0, Extended80.Indefinite);
            X87MoveTop(-1);
            SetSt(0, Extended80.Indefinite);
            return;
        }
        var (exponent, significand) = X87Math.Extract(St(0), ref env);
        if (env.PreComputationFault) return;
        SetSt(0, exponent);
        X87MoveTop(-1);
        SetSt(0, significand);
        SetC1(false);
    }
}
