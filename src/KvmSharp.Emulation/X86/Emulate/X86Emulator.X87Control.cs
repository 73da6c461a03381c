// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The x87 control instructions firmware runs while it sets the FPU up (OVMF's InitializeFloatingPointUnits: FNINIT,
/// FLDCW, and FWAIT after its handlers' FXRSTOR), over the vCPU's fxsave image: FNINIT/FINIT, FLDCW, FNSTCW/FSTCW,
/// FNSTSW/FSTSW (AX and m16), FNCLEX/FCLEX and FWAIT. SDM Vol. 2A (each instruction's page) and Vol. 1 8.1.5/8.7:
/// #NM when CR0.EM or CR0.TS is set (FWAIT: only when CR0.MP and CR0.TS both are), and a waiting form (FWAIT itself,
/// or the 9B prefix Iced folds into FINIT/FSTCW/FSTSW/FCLEX) raises #MF first when FSW.ES says an unmasked exception
/// is pending and CR0.NE is set. The x87 data instructions are in X86Emulator.X87Load.cs and its siblings.
/// </summary>
internal sealed partial class X86Emulator
{
    private const int MF_VECTOR = 16;
    private const ulong CR0_MP = 1UL << 1, CR0_NE = 1UL << 5;

    /// <summary>FSW.ES (bit 7), the exception summary, and FSW bits 15:0 FNCLEX clears (PE UE OE ZE DE IE SF ES B).</summary>
    private const ushort FswEs = 1 << 7, FswClearedByFnclex = 0x80ff;

    private bool TryX87Control(in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Wait:
                if ((_cpu.Sregs.cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS)) throw new GuestFault(NM_VECTOR);
                PendingX87Exception();
                return true;
            case Mnemonic.Fninit or Mnemonic.Finit:
                X87Available(waits: i.Mnemonic == Mnemonic.Finit);
                // FPUControlWord ← 037FH; FPUStatusWord ← 0; FPUTagWord ← FFFFH (all empty: abridged 0); pointers ← 0.
                // TOP becomes 0, so the registers are renamed: kvm_fpu.fpr holds them as ST(0..7) (FXSAVE order), and
                // the old R(j) = ST((j - TOP) mod 8) is the new ST(j). Seen on this host: FNINIT with TOP = 7, then
                // FXSAVE64, writes the old ST(1) as ST(0) (FpuControlRules.fxsave_writes_the_state_set_by_the_guest).
                RenumberStack(oldTop: (Vec.Fpu.fsw >> 11) & 7);
                Vec.Fpu.fcw = VcpuState.FcwDefault;
                Vec.Fpu.fsw = 0;
                Vec.Fpu.ftwx = 0;
                Vec.Fpu.last_opcode = 0;
                Vec.Fpu.last_ip = 0;
                Vec.Fpu.last_dp = 0;
                return true;
            case Mnemonic.Fldcw:
                X87Available(waits: false);
                Vec.Fpu.fcw = (ushort)ReadMemory(i.MemorySegment, EffectiveAddress(i), 2);
                // A newly unmasked pending exception sets ES (SDM FLDCW: "unmasked … exception flags … generate").
                UpdateExceptionSummary();
                return true;
            case Mnemonic.Fnstcw or Mnemonic.Fstcw:
                X87Available(waits: i.Mnemonic == Mnemonic.Fstcw);
                WriteMemory(i.MemorySegment, EffectiveAddress(i), 2, Vec.Fpu.fcw);
                return true;
            case Mnemonic.Fnstsw or Mnemonic.Fstsw:
                X87Available(waits: i.Mnemonic == Mnemonic.Fstsw);
                if (i.Op0Kind == OpKind.Register) WriteReg(Register.AX, Vec.Fpu.fsw);
                else WriteMemory(i.MemorySegment, EffectiveAddress(i), 2, Vec.Fpu.fsw);
                return true;
            case Mnemonic.Fnclex or Mnemonic.Fclex:
                X87Available(waits: i.Mnemonic == Mnemonic.Fclex);
                Vec.Fpu.fsw = (ushort)(Vec.Fpu.fsw & ~FswClearedByFnclex);
                return true;
            default:
                return false;
        }
    }

    private void RenumberStack(int oldTop)
    {
        if (oldTop == 0) return;
        Span<byte> old = stackalloc byte[128];
        ((ReadOnlySpan<byte>)Vec.Fpu.fpr).CopyTo(old);
        Span<byte> fpr = Vec.Fpu.fpr;
        for (int j = 0; j < 8; j++) old.Slice(((j - oldTop) & 7) * 16, 16).CopyTo(fpr[(j * 16)..]);
    }

    private void X87Available(bool waits)
    {
        if ((_cpu.Sregs.cr0 & (CR0_EM | CR0_TS)) != 0) throw new GuestFault(NM_VECTOR);
        if (waits) PendingX87Exception();
    }

    /// <summary>
    /// A waiting instruction with FSW.ES set: #MF when CR0.NE is set; with NE clear the CPU signals FERR# to the
    /// external PIC instead (SDM Vol. 1 8.7), which the emulator does not model — the instruction just proceeds.
    /// </summary>
    private void PendingX87Exception()
    {
        if ((Vec.Fpu.fsw & FswEs) != 0 && (_cpu.Sregs.cr0 & CR0_NE) != 0) throw new GuestFault(MF_VECTOR);
    }

    /// <summary>FSW.ES (and B, bit 15) = any exception flag (bits 5:0) whose mask bit in FCW is clear.</summary>
    private void UpdateExceptionSummary()
    {
        bool pending = (Vec.Fpu.fsw & ~Vec.Fpu.fcw & 0x3f) != 0;
        Vec.Fpu.fsw = pending ? (ushort)(Vec.Fpu.fsw | FswEs | 0x8000) : (ushort)(Vec.Fpu.fsw & ~(FswEs | 0x8000));
    }
}
