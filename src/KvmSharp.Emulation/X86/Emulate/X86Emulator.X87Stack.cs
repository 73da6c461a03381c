// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The x87 register stack over the vCPU's fxsave image (SDM Vol. 1 8.1.2, 8.1.7): <c>kvm_fpu.fpr</c> holds ST(0..7)
/// in FXSAVE order — relative to TOP, as <see cref="RenumberStack"/> keeps it — and <c>ftwx</c> the abridged tag
/// word per physical register R(j), ST(i) = R((TOP + i) mod 8), bit set = not empty (SDM Vol. 2A FXSAVE). A change of
/// TOP therefore rotates <c>fpr</c>. Stack faults (SDM Vol. 1 8.5.1.1): IE and SF, C1 = 1 on overflow, 0 on
/// underflow; masked, the destination gets the real indefinite.
/// </summary>
internal sealed partial class X86Emulator
{
    private const ushort FswC0 = 1 << 8, FswC1 = 1 << 9, FswC2 = 1 << 10, FswC3 = 1 << 14, FswTop = 7 << 11;
    private const ushort FswConditions = FswC0 | FswC1 | FswC2 | FswC3;

    private int X87Top => (Vec.Fpu.fsw >> 11) & 7;

    private int X87Physical(int st) => (X87Top + st) & 7;

    private bool X87Empty(int st) => (Vec.Fpu.ftwx & (1 << X87Physical(st))) == 0;

    private Extended80 St(int st) => Extended80.Read(((ReadOnlySpan<byte>)Vec.Fpu.fpr).Slice(st * 16, 10));

    private void SetSt(int st, Extended80 value)
    {
        value.Write(((Span<byte>)Vec.Fpu.fpr).Slice(st * 16, 10));
        Vec.Fpu.ftwx |= (byte)(1 << X87Physical(st));
    }

    /// <summary>TOP += <paramref name="delta"/>: the physical registers stay, so ST(i) becomes the old ST(i + delta).</summary>
    private void X87MoveTop(int delta)
    {
        Span<byte> old = stackalloc byte[128];
        ((ReadOnlySpan<byte>)Vec.Fpu.fpr).CopyTo(old);
        Span<byte> fpr = Vec.Fpu.fpr;
        for (int i = 0; i < 8; i++) old.Slice(((i + delta) & 7) * 16, 16).CopyTo(fpr[(i * 16)..]);
        Vec.Fpu.fsw = (ushort)((Vec.Fpu.fsw & ~FswTop) | (((X87Top + delta) & 7) << 11));
    }

    /// <summary>
    /// Pushes <paramref name="value"/> (FLD and the constants). ST(7) in use is a stack overflow: masked, the
    /// real indefinite is pushed; unmasked, nothing changes (SDM Vol. 1 8.5.1.1).
    /// </summary>
    private void X87Push(Extended80 value, ref X87Env env)
    {
        if (!X87Empty(7))
        {
            env.Flags |= X87Env.IE | X87Env.SF;
            SetC1(true);
            if (!env.Masked(X87Env.IE)) return;
            value = Extended80.Indefinite;
        }
        X87MoveTop(-1);
        SetSt(0, value);
    }

    /// <summary>Marks ST(0) empty and increments TOP.</summary>
    private void X87Pop()
    {
        Vec.Fpu.ftwx &= (byte)~(1 << X87Physical(0));
        X87MoveTop(1);
    }

    /// <summary>A stack underflow: IE and SF, C1 = 0; true when masked (the caller stores the real indefinite).</summary>
    private bool X87Underflow(ref X87Env env)
    {
        env.Flags |= X87Env.IE | X87Env.SF;
        SetC1(false);
        return env.Masked(X87Env.IE);
    }

    private void SetC1(bool on) => Vec.Fpu.fsw = (ushort)(on ? Vec.Fpu.fsw | FswC1 : Vec.Fpu.fsw & ~FswC1);

    private void SetConditions(ushort bits, ushort which) => Vec.Fpu.fsw = (ushort)((Vec.Fpu.fsw & ~which) | (bits & which));

    /// <summary>The raised flags join FSW's sticky ones; ES and B follow the unmasked ones (SDM Vol. 1 8.1.3.1).</summary>
    private void X87Commit(in X87Env env)
    {
        Vec.Fpu.fsw |= env.Flags;
        UpdateExceptionSummary();
    }

    /// <summary>
    /// FOP, FIP and FDP as FXSAVE reports them after a non-control instruction (SDM Vol. 1 8.1.8-8.1.9): FOP is the
    /// low 3 bits of the D8-DF opcode byte and the ModR/M byte; FIP the instruction's offset (its RIP); FDP the
    /// memory operand's offset, unchanged by a register-only instruction. The selectors are not kept (Fxsave.cs).
    /// </summary>
    private void X87NoteInstruction(in Instruction i)
    {
        int at = 0;
        while (at < _fetchedLength - 1 && _fetched[at] is < 0xd8 or > 0xdf) at++;
        if (_fetched[at] is >= 0xd8 and <= 0xdf) Vec.Fpu.last_opcode = (ushort)(((_fetched[at] & 7) << 8) | _fetched[at + 1]);
        Vec.Fpu.last_ip = _cpu.Rip;
        if (i.Op0Kind == OpKind.Memory || (i.OpCount > 1 && i.Op1Kind == OpKind.Memory)) Vec.Fpu.last_dp = EffectiveAddress(i);
    }

    private static int StIndex(Register r) => r - Register.ST0;
}
