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
/// Exceptions in 32-bit protected mode, delivered through 32-bit interrupt and trap gates of a legacy IDT and
/// returned from with IRETD (Intel SDM Vol. 3A 6.10–6.12, Vol. 2A IRET). Real mode enters 32-bit code with a far
/// jump; handlers report on port 0x10 and step over the faulting instruction.
/// </summary>
public static class ProtectedModeExceptions
{
    private const ulong Idt = Base + 0xB00, IdtPointer = Base + 0xAF0;
    private const ulong UdHandler = Base + 0xC00, DeHandler = Base + 0xC40, GpHandler = Base + 0xC80;

    /// <summary>A handler's report of RFLAGS.IF: an interrupt gate clears it, a trap gate keeps it.</summary>
    private static void OutInterruptFlag(Assembler a)
    {
        a.pushfd();
        a.pop(eax);
        a.shr(eax, 9);
        a.and(al, 1);
        a.@out(Port, al);
    }

    /// <summary>An 8-byte 32-bit gate: offset, selector and the type/attribute byte (0x8E interrupt, 0x8F trap).</summary>
    private static ulong Gate(ulong offset, ushort selector, byte typeAttr) =>
        (offset & 0xFFFF) | ((ulong)selector << 16) | ((ulong)typeAttr << 40) | ((offset >> 16 & 0xFFFF) << 48);

    /// <summary>Real mode → 32-bit protected mode (flat segments, ESP = StackTop), then <paramref name="code32"/>.</summary>
    private static ModeSwitchGuest Enter32(Kvm kvm, Action<Assembler> code32, Action<Assembler>? code32Far = null) => ModeSwitchGuest.Create(kvm,
        code16: EnterProtectedMode,
        code32: a =>
        {
            a.mov(ax, DataSelector);
            a.mov(ds, ax);
            a.mov(es, ax);
            a.mov(ss, ax);
            a.mov(esp, (uint)StackTop);
            code32(a);
        },
        code32Far: code32Far);

    /// <summary>
    /// A handler that reports its vector, the error code's low byte (when there is one), RFLAGS.IF as the gate left it,
    /// and the pushed CS and EFLAGS.IF, then drops the frame and resumes <paramref name="skip"/> bytes past the faulting
    /// instruction with a near jump (no IRET, which kvm_pvm cannot run in 32-bit code).
    /// </summary>
    private static byte[] Handler(ulong address, byte vector, bool errorCode, int skip) => Assemble(32, address, a =>
    {
        Out(a, vector);
        if (errorCode)
        {
            a.pop(eax);
            a.@out(Port, al);
        }
        OutInterruptFlag(a);
        a.mov(eax, __dword_ptr[esp + 4]);   // pushed CS
        a.@out(Port, al);
        a.mov(eax, __dword_ptr[esp + 8]);   // pushed EFLAGS: IF
        a.shr(eax, 9);
        a.and(al, 1);
        a.@out(Port, al);
        a.mov(eax, __dword_ptr[esp]);       // pushed EIP: the faulting instruction
        a.add(eax, skip);
        a.add(esp, 12);
        a.jmp(eax);
    });

    [ConformanceCase("Intel SDM Vol. 3A 6.12.1 (32-bit interrupt and trap gates, same privilege; frame EIP, CS, EFLAGS, error code)")]
    public static void exceptions_in_32_bit_code_go_through_legacy_interrupt_and_trap_gates(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = Enter32(kvm, a =>
        {
            a.lidt(__[(uint)IdtPointer]);
            a.sti();
            Out(a, 0x20);
            a.ud2();                      // #UD through a trap gate
            Out(a, 0x21);
            a.xor(edx, edx);
            a.mov(eax, 1);
            a.xor(ecx, ecx);
            a.div(ecx);                   // #DE through an interrupt gate
            Out(a, 0x22);
            a.mov(ax, GdtLimit + 1);
            a.mov(ds, ax);                // #GP(0x28): beyond the GDT (66 8E D8, 3 bytes)
            Out(a, 0x23);
            a.hlt();
        });
        guest.Write(UdHandler, Handler(UdHandler, 0x06, errorCode: false, skip: 2));
        guest.Write(DeHandler, Handler(DeHandler, 0x00, errorCode: false, skip: 2));
        guest.Write(GpHandler, Handler(GpHandler, 0x0D, errorCode: true, skip: 3));
        WriteIdt(guest);

        var (reports, last) = RunToEnd(guest.Vcpu);
        Assert.True(last == KvmExitReason.KVM_EXIT_HLT, $"expected KVM_EXIT_HLT, got {last} after [{string.Join(", ", reports)}]");
        // vector, [error,] IF in the handler, pushed CS, pushed IF.
        const byte Cs = (byte)Code32Selector, Bad = (byte)(GdtLimit + 1);
        // The #DE handler resumes with a jump, not IRET: IF stays clear from its interrupt gate on, so the #GP frame has IF = 0.
        byte[] expected = [0x20, 0x06, 1, Cs, 1, 0x21, 0x00, 0, Cs, 1, 0x22, 0x0D, Bad, 0, Cs, 0, 0x23];
        Assert.Equal(expected, reports);
        Assert.Equal(StackTop, guest.Vcpu.GetRegs().rsp);
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.15 Interrupt 8: in 32-bit code with an empty IDT, #UD finds no gate (#GP), #GP none either (#DF), #DF none: a triple fault, KVM_EXIT_SHUTDOWN (x86.c kvm_multiple_exception, KVM_REQ_TRIPLE_FAULT)")]
    public static void an_exception_without_any_gate_in_32_bit_code_is_a_triple_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = Enter32(kvm, a =>
        {
            a.lidt(__[(uint)IdtPointer]);
            Out(a, 0x20);
            a.ud2();
            Out(a, 0x21);
            a.hlt();
        });
        guest.Write(IdtPointer, [0, 0, 0, 0, 0, 0]); // limit 0, base 0: not even vector 0 fits
        var (reports, last) = RunToEnd(guest.Vcpu);
        Assert.True(last == KvmExitReason.KVM_EXIT_SHUTDOWN, $"expected KVM_EXIT_SHUTDOWN, got {last} after [{string.Join(", ", reports)}]");
        Assert.Equal([(byte)0x20], reports);
    }

    [ConformanceCase("Intel SDM Vol. 2A IRET, protected-mode return to the same privilege level: pop EIP, CS, EFLAGS")]
    public static void iretd_returns_to_the_same_privilege_level(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = Enter32(kvm,
            a =>
            {
                a.pushfd();
                a.or(__dword_ptr[esp], 1 << 9);   // IF comes back from the frame
                a.push(Code32Selector);
                a.push((uint)Code32Far);
                a.iretd();
                Out(a, 0xEE);                     // skipped
            },
            code32Far: a =>
            {
                Out(a, 0x30);
                a.hlt();
            });
        var (reports, last) = RunToEnd(guest.Vcpu);
        var regs = guest.Vcpu.GetRegs();
        if (HostDeviations.KvmPvmIretIn32BitCodeFails(ctx.Target.IsReal))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, last);
            Assert.Empty(reports);
            Assert.Equal(StackTop - 12, regs.rsp);
            return;
        }
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, last);
        Assert.Equal([0x30], reports);
        Assert.Equal(StackTop, regs.rsp);
        Assert.NotEqual(0UL, regs.rflags & (1UL << 9));
        Assert.Equal(Code32Selector, guest.Vcpu.GetSregs().cs.selector);
    }

    private static void WriteIdt(ModeSwitchGuest guest)
    {
        guest.Write(Idt + 0 * 8, Gate(DeHandler, Code32Selector, 0x8E));
        guest.Write(Idt + 6 * 8, Gate(UdHandler, Code32Selector, 0x8F));
        guest.Write(Idt + 13 * 8, Gate(GpHandler, Code32Selector, 0x8E));
        guest.Write<ushort>(IdtPointer, 14 * 8 - 1);
        guest.Write(IdtPointer + 2, (uint)Idt);
    }
}
