// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The interpreter's per-instruction undo log (X86/Emulate/X86Emulator.Rollback.cs): an instruction that faults after
/// writing registers is rolled back to where it started, so the fault is delivered with the instruction's RIP and the
/// RSP it started with. LEAVE (RSP ← RBP, then a pop that faults), POP to a memory operand (the pop, then a store that
/// faults), XCHG with a faulting memory operand and a near CALL whose target load faults — integer instructions whose
/// kvm_sregs is not saved — are each compared with this host's kernel, which runs them on the CPU.
/// </summary>
public sealed class X86RollbackTests
{
    private const ulong Idt = 0x6000, Handlers = 0x7000, Report = 0x9000, Unmapped = 0x80_0000, Stack = 0x30_0000;

    /// <summary>The guest state after the #PF handler halted: vector, the frame's RIP and RSP, and RAX/RBP/RSI.</summary>
    private static string Trace(IKernel k, Action<Assembler> faulting, ulong rbp)
    {
        using var g = new RawGuest(k);
        g.LongMode(a =>
        {
            a.mov(rax, 0x1111_2222_3333_4444);
            a.mov(esi, 0x5555);
            faulting(a);
            a.hlt();
        }, rsp: Stack);
        g.Write64(0x5008, 0x00af_9b00_0000_ffffUL);
        g.Write64(0x5010, 0x00cf_9300_0000_ffffUL);
        for (int v = 0; v < 32; v++)
        {
            ulong handler = Handlers + (ulong)v * 0x20;
            g.Write(handler, RawGuest.Assemble(64, handler, h => { h.mov(__qword_ptr[Report], v); h.hlt(); }));
            g.Write64(Idt + (ulong)v * 16, (handler & 0xffff) | (8UL << 16) | (0x8eUL << 40) | (((handler >> 16) & 0xffff) << 48));
        }
        g.Write64(Report, ulong.MaxValue);
        g.Write64(Stack, 0x20_0abc); // what the pops read
        var s = g.Sregs;
        s.gdt = new kvm_dtable { @base = 0x5000, limit = 23 };
        s.idt = new kvm_dtable { @base = Idt, limit = 32 * 16 - 1 };
        g.Sregs = s;
        var r = g.Regs;
        r.rbp = rbp;
        g.Regs = r;
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        var after = g.Regs;
        // #PF pushes an error code: the frame is error code, RIP, CS, RFLAGS, RSP, SS.
        return $"vector={g.Read64(Report)} rip=+{g.Read64(after.rsp + 8) - RawGuest.CodeGpa:x} rsp={g.Read64(after.rsp + 32):x} " +
            $"rax={after.rax:x} rbp={after.rbp:x} rsi={after.rsi:x} cr2={g.Sregs.cr2:x}";
    }

    // mov rax, imm64 (10 bytes) and mov esi, imm32 (5 bytes) come first: the faulting instruction is at +f.
    public static TheoryData<string, string> Cases => new()
    {
        { "leave", $"vector=14 rip=+f rsp={Stack:x} rax=1111222233334444 rbp={Unmapped:x} rsi=5555 cr2={Unmapped:x}" },
        { "pop", $"vector=14 rip=+f rsp={Stack:x} rax=1111222233334444 rbp=0 rsi=5555 cr2={Unmapped:x}" },
        { "xchg", $"vector=14 rip=+f rsp={Stack:x} rax=1111222233334444 rbp=0 rsi=5555 cr2={Unmapped:x}" },
        { "call", $"vector=14 rip=+f rsp={Stack:x} rax=1111222233334444 rbp=0 rsi=5555 cr2={Unmapped:x}" },
    };

    private static (Action<Assembler> Emit, ulong Rbp) Case(string name) => name switch
    {
        "leave" => (a => a.leave(), Unmapped),
        "pop" => (a => a.pop(__qword_ptr[Unmapped]), 0),
        "xchg" => (a => a.xchg(__qword_ptr[Unmapped], rax), 0),
        "call" => (a => a.call(__qword_ptr[Unmapped]), 0),
        _ => throw new ArgumentException(name),
    };

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void A_faulting_instruction_is_delivered_from_the_state_it_started_with(string name, string expected)
    {
        var (emit, rbp) = Case(name);
        using var emu = new EmulatedKernel();
        Assert.Equal(expected, Trace(emu, emit, rbp));
        Skip.IfNot(Raw.HostHasKvm, "/dev/kvm cannot be opened here: the emulator's trace is checked, not compared with the CPU's");
        Assert.Equal(Trace(LinuxKernel.Instance, emit, rbp), Trace(emu, emit, rbp));
    }
}
