// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.Guests.ModeSwitchGuest;
using static KvmSharp.Conformance.Guests.ReportPort;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Far JMP / CALL / RET and the mode switches boot code makes with them (Intel SDM Vol. 2A JMP/CALL/RET "far",
/// Vol. 3A 9.9 "Mode switching"; emulate.c em_jmp_far, em_call_far, em_ret_far): real mode → 32-bit protected mode
/// → long mode, each step entered with a far jump, each mode's far call returning with a far RET, and far jumps to
/// bad selectors faulting with the selector as the error code. The guest reports its progress on port 0x10.
/// </summary>
public static class FarTransfers
{

    /// <summary>The trampoline: real mode (far call + retf), 32-bit (far call + retf), then long mode with <paramref name="tail64"/>.</summary>
    private static ModeSwitchGuest Trampoline(Kvm kvm, Action<Assembler> tail64, Action<Assembler>? far64 = null) => ModeSwitchGuest.Create(kvm,
        code16: a =>
        {
            a.AddInstruction(Instruction.CreateBranch(Code.Call_ptr1616, (ushort)(Base >> 4), (uint)(Code16Far - Base)));
            Out(a, 0x11);
            EnterProtectedMode(a);
        },
        code16Far: a =>
        {
            Out(a, 0x10);
            a.retf();
        },
        code32: a =>
        {
            a.mov(ax, DataSelector);
            a.mov(ds, ax);
            a.mov(es, ax);
            a.mov(ss, ax);
            a.mov(esp, (uint)StackTop);
            Out(a, 0x20);
            a.AddInstruction(Instruction.CreateBranch(Code.Call_ptr1632, Code32Selector, (uint)Code32Far));
            Out(a, 0x22);
            EnterLongMode(a);
        },
        code32Far: a =>
        {
            Out(a, 0x21);
            a.retf();
        },
        code64: a =>
        {
            Out(a, 0x40);
            tail64(a);
        },
        code64Far: far64);

    [ConformanceCase("Intel SDM Vol. 3A 9.9.1 / 9.8.5 + emulate.c em_jmp_far, em_call_far, em_ret_far: real mode → protected mode → long mode by far jumps")]
    public static void boot_code_reaches_long_mode_through_far_jumps_calls_and_returns(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = Trampoline(kvm,
            tail64: a =>
            {
                // A far call through an m16:64 pointer in memory, returned from with a 64-bit far RET.
                a.mov(rax, Code64Far);
                a.mov(__qword_ptr[(long)Data], rax);
                a.mov(__word_ptr[(long)Data + 8], Code64Selector);
                a.AddInstruction(Instruction.Create(Code.Call_m1664, new MemoryOperand(Register.None, (long)Data)));
                Out(a, 0x42);
                a.hlt();
            },
            far64: a =>
            {
                Out(a, 0x41);
                a.AddInstruction(Instruction.Create(Code.Retfq));
            });
        var (reports, last) = RunToEnd(guest.Vcpu);
        Assert.Equal([0x10, 0x11, 0x20, 0x21, 0x22, 0x40, 0x41, 0x42], reports);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, last);
        var sregs = guest.Vcpu.GetSregs();
        Assert.Equal(Code64Selector, sregs.cs.selector);
        Assert.Equal(1, sregs.cs.l);
        Assert.Equal(DataSelector, sregs.ds.selector);
        Assert.Equal(0UL, sregs.cs.@base);
        Assert.NotEqual(0UL, sregs.efer & (1UL << 10)); // LMA
        Assert.Equal(0x8000_0001UL, sregs.cr0 & 0x8000_0001UL);
        // The 32-bit far call pushed CS and EIP as dwords and the far RET popped them: ESP is back at the top.
        Assert.Equal(StackTop, guest.Vcpu.GetRegs().rsp);
    }

    [ConformanceCase("Intel SDM Vol. 2A JMP far (IA-32e mode): a null, data or beyond-the-GDT selector is #GP(selector)")]
    public static void far_jumps_to_bad_selectors_fault_with_the_selector(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (ushort selector in new ushort[] { 0, DataSelector, GdtLimit + 1 })
        {
            // A 64-bit IDT whose #GP gate (vector 13) reports the error code's low byte and halts.
            const ulong Idt = Data + 0x100;
            const ulong IdtPointer = Data + 0x80;
            using var guest = Trampoline(kvm,
                tail64: a =>
                {
                    a.lidt(__[(long)IdtPointer]);
                    a.mov(rax, Code64);
                    a.mov(__qword_ptr[(long)Data], rax);
                    a.mov(__word_ptr[(long)Data + 8], selector);
                    a.AddInstruction(Instruction.Create(Code.Jmp_m1664, new MemoryOperand(Register.None, (long)Data)));
                    Out(a, 0xEE); // not reached
                },
                far64: a =>
                {
                    a.pop(rax);
                    a.@out(Port, al);
                    a.hlt();
                });
            ulong gateLow = (Code64Far & 0xFFFF) | ((ulong)Code64Selector << 16) | (0x8EUL << 40) | ((Code64Far >> 16 & 0xFFFF) << 48);
            guest.Memory.Write(Idt - Base + 13 * 16, gateLow);
            guest.Memory.Write(Idt - Base + 13 * 16 + 8, Code64Far >> 32);
            guest.Memory.Write<ushort>(IdtPointer - Base, 14 * 16 - 1);
            guest.Memory.Write(IdtPointer - Base + 2, Idt);

            var (reports, last) = RunToEnd(guest.Vcpu);
            Assert.Equal([0x10, 0x11, 0x20, 0x21, 0x22, 0x40, (byte)selector], reports);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, last);
            // The fault left CS as it was.
            Assert.Equal(Code64Selector, guest.Vcpu.GetSregs().cs.selector);
        }
    }
}
