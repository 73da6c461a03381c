// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The undo log's split. An instruction that stops (fault, MMIO read, IN, memory fault) is rolled back to the state
/// it started from, as emulate.c does by committing the register cache only when x86_emulate_insn succeeds
/// (writeback_registers). GPRs, RIP and RFLAGS are saved before every instruction (144 bytes). The 312-byte
/// kvm_sregs (segments, descriptor tables, control registers, EFER, APIC base) is saved only when the decoded
/// instruction is not one of <see cref="s_gprOnly"/>: the ordinary integer, branch and string instructions, whose
/// emulation here never writes kvm_sregs. Event delivery saves everything (<see cref="Save"/>).
/// KVMSHARP_X86_VERIFY_ROLLBACK=1 checks, every instruction, that an instruction whose kvm_sregs was not saved left
/// it unchanged (run the interpreter tests, conformance and the fuzzer with it to check the list).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>Set from KVMSHARP_X86_VERIFY_ROLLBACK=1 at start-up; a static readonly the JIT folds away when off.</summary>
    private static readonly bool VerifyRollback = Environment.GetEnvironmentVariable("KVMSHARP_X86_VERIFY_ROLLBACK") == "1";

    private static readonly bool[] s_gprOnly = BuildGprOnly();

    // kvm_sregs as the instruction found it, for VerifyRollback.
    private Abi.kvm_sregs _verifySregs;

    private static bool[] BuildGprOnly()
    {
        var table = new bool[Enum.GetValues<Mnemonic>().Max(m => (int)m) + 1];
        Mnemonic[] plain =
        [
            Mnemonic.Nop, Mnemonic.Pause, Mnemonic.Endbr64, Mnemonic.Lfence, Mnemonic.Mfence, Mnemonic.Sfence,
            Mnemonic.Mov, Mnemonic.Movzx, Mnemonic.Movsx, Mnemonic.Movsxd, Mnemonic.Lea, Mnemonic.Xchg,
            Mnemonic.Add, Mnemonic.Adc, Mnemonic.Sub, Mnemonic.Sbb, Mnemonic.Cmp, Mnemonic.And, Mnemonic.Or, Mnemonic.Xor,
            Mnemonic.Test, Mnemonic.Inc, Mnemonic.Dec, Mnemonic.Neg, Mnemonic.Not,
            Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar, Mnemonic.Rol, Mnemonic.Ror,
            Mnemonic.Mul, Mnemonic.Imul, Mnemonic.Div, Mnemonic.Idiv,
            Mnemonic.Cbw, Mnemonic.Cwde, Mnemonic.Cdqe, Mnemonic.Cwd, Mnemonic.Cdq, Mnemonic.Cqo,
            Mnemonic.Push, Mnemonic.Pop, Mnemonic.Pushf, Mnemonic.Pushfd, Mnemonic.Pushfq, Mnemonic.Leave,
            Mnemonic.Call, Mnemonic.Ret, Mnemonic.Jmp,
            Mnemonic.Jo, Mnemonic.Jno, Mnemonic.Jb, Mnemonic.Jae, Mnemonic.Je, Mnemonic.Jne, Mnemonic.Jbe, Mnemonic.Ja,
            Mnemonic.Js, Mnemonic.Jns, Mnemonic.Jp, Mnemonic.Jnp, Mnemonic.Jl, Mnemonic.Jge, Mnemonic.Jle, Mnemonic.Jg,
            Mnemonic.Jcxz, Mnemonic.Jecxz, Mnemonic.Jrcxz, Mnemonic.Loop, Mnemonic.Loope, Mnemonic.Loopne,
            Mnemonic.Cmove, Mnemonic.Cmovne, Mnemonic.Cmovb, Mnemonic.Cmovae, Mnemonic.Cmovbe, Mnemonic.Cmova,
            Mnemonic.Cmovs, Mnemonic.Cmovns, Mnemonic.Cmovp, Mnemonic.Cmovnp, Mnemonic.Cmovl, Mnemonic.Cmovge,
            Mnemonic.Cmovle, Mnemonic.Cmovg, Mnemonic.Cmovo, Mnemonic.Cmovno,
            Mnemonic.Sete, Mnemonic.Setne, Mnemonic.Setb, Mnemonic.Setae, Mnemonic.Setbe, Mnemonic.Seta,
            Mnemonic.Sets, Mnemonic.Setns, Mnemonic.Setp, Mnemonic.Setnp, Mnemonic.Setl, Mnemonic.Setge,
            Mnemonic.Setle, Mnemonic.Setg, Mnemonic.Seto, Mnemonic.Setno,
            Mnemonic.Movsb, Mnemonic.Movsw, Mnemonic.Movsd, Mnemonic.Movsq,
            Mnemonic.Stosb, Mnemonic.Stosw, Mnemonic.Stosd, Mnemonic.Stosq,
            Mnemonic.Lodsb, Mnemonic.Lodsw, Mnemonic.Lodsd, Mnemonic.Lodsq,
            Mnemonic.Cmpsb, Mnemonic.Cmpsw, Mnemonic.Cmpsd, Mnemonic.Cmpsq,
            Mnemonic.Scasb, Mnemonic.Scasw, Mnemonic.Scasd, Mnemonic.Scasq,
            Mnemonic.Clc, Mnemonic.Stc, Mnemonic.Cmc, Mnemonic.Cld, Mnemonic.Std,
            Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Btr, Mnemonic.Btc, Mnemonic.Bsf, Mnemonic.Bsr,
            Mnemonic.Tzcnt, Mnemonic.Lzcnt, Mnemonic.Popcnt, Mnemonic.Bswap, Mnemonic.Xadd, Mnemonic.Cmpxchg,
            Mnemonic.Rcl, Mnemonic.Rcr, Mnemonic.Shld, Mnemonic.Shrd,
        ];
        foreach (var m in plain) table[(int)m] = true;
        return table;
    }

    /// <summary>
    /// True when <paramref name="i"/>'s emulation writes GPRs, RFLAGS, RIP, memory or vector registers only. MOV to a
    /// segment, control or debug register, PUSH/POP of a segment register and far CALL/JMP share mnemonics with
    /// plain forms and are excluded by operand.
    /// </summary>
    private static bool WritesOnlyGprs(in Instruction i)
    {
        if (!s_gprOnly[(int)i.Mnemonic]) return false;
        for (int n = 0; n < i.OpCount; n++)
        {
            if (i.GetOpKind(n) != OpKind.Register) continue;
            var r = i.GetOpRegister(n);
            if (r.IsSegmentRegister() || r.IsCR() || r.IsDR() || r.IsTR()) return false;
        }
        return !(i.Mnemonic is Mnemonic.Call or Mnemonic.Jmp && IsFarBranch(i));
    }

    /// <summary>VerifyRollback: an instruction that did not save kvm_sregs must not have changed it.</summary>
    private void CheckSregsUntouched()
    {
        if (_sregsSaved) return;
        var now = _cpu.Sregs;
        var before = _verifySregs;
        if (!MemoryMarshal.AsBytes(new ReadOnlySpan<Abi.kvm_sregs>(ref now)).SequenceEqual(MemoryMarshal.AsBytes(new ReadOnlySpan<Abi.kvm_sregs>(ref before))))
            throw new InvalidOperationException($"x86 rollback: the instruction at RIP {_savedRip:x} changed kvm_sregs without saving it (X86Emulator.Rollback.cs s_gprOnly)");
    }
}
