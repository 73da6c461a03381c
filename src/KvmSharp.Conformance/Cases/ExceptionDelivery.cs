// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Exception delivery through a 64-bit IDT (Intel SDM Vol. 3A 6.12–6.15): the frame, gates, IRETQ, #PF error codes and
/// CR2, and the double/triple fault rules. Each guest reports what its handler saw (<see cref="IdtGuest"/>).
/// </summary>
public static class ExceptionDelivery
{
    private const ulong StartRsp = 0x27ff8; // LongModeGuest: Layout.StackTop - 8, 8 mod 16
    private const ulong Rf = 1UL << 16, If = 1UL << 9;

    private static IdtVector[] AllVectors(Func<int, IdtVector> f) => [.. Enumerable.Range(0, 32).Select(f)];

    private static IdtVector[] Halting => AllVectors(v => new IdtVector(v));

    /// <summary>The frame of a same-privilege delivery (SDM Vol. 3A 6.14.2): RSP aligned to 16 first, SS and RSP pushed.</summary>
    private static void AssertFrame(Delivery d, ulong rip, bool errorCode)
    {
        Assert.Equal(rip, d.Rip);
        Assert.Equal(0x08UL, d.Cs);
        Assert.Equal(0x10UL, d.Ss);
        Assert.Equal(StartRsp, d.Rsp);
        Assert.Equal((StartRsp & ~0xfUL) - (errorCode ? 48UL : 40UL), d.HandlerRsp);
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.14.2 64-bit frame, 6.12.1.3 trap gate keeps IF; IRETQ returns (SDM Vol. 2A IRET)")]
    public static void ud2_is_delivered_through_a_trap_gate_and_iretq_returns(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.sti(); a.ud2(); a.mov(eax, 0x77); a.hlt(); },
            AllVectors(v => new IdtVector(v, GateKind.Trap, v == 6 ? 2 : -1)));
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        Assert.Equal(6UL, d.Vector);
        Assert.Null(d.ErrorCode);
        AssertFrame(d, LongModeGuest.CodeGpa + 1, errorCode: false);
        // A fault: RF set in the pushed image (x86.c kvm_inject_exception); a trap gate leaves IF set.
        Assert.Equal(0x2UL | If | Rf, d.Rflags);
        Assert.Equal(0x2UL | If, d.HandlerRflags);
        var regs = g.Vcpu.GetRegs();
        Assert.Equal(0x77UL, regs.rax);
        Assert.Equal(StartRsp, regs.rsp);
        Assert.Equal(0x2UL | If, regs.rflags); // RF cleared again once an instruction completed
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.12.1.3: an interrupt gate clears IF; #DE is a fault (RIP on the DIV)")]
    public static void divide_error_is_delivered_through_an_interrupt_gate(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.sti(); a.xor(ecx, ecx); a.div(ecx); a.hlt(); }, Halting);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        Assert.Equal(0UL, d.Vector);
        AssertFrame(d, LongModeGuest.CodeGpa + 3, errorCode: false);
        Assert.Equal(If, d.Rflags & If);
        Assert.Equal(0UL, d.HandlerRflags & If);
    }

    [ConformanceCase("Intel SDM Vol. 3A 4.7 page-fault error code (P, W/R, RSVD, I/D) and CR2; arch/x86/kvm/mmu/paging_tmpl.h walk_addr_generic")]
    public static void page_faults_report_error_code_and_cr2(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Spare = IdtGuest.SpareGpa + 0x10;
        const ulong Efer_Nx = 1UL << 11;
        (string What, Action<Assembler> Body, Action<IdtGuest>? Setup, ulong Cr2, ulong Error)[] cases =
        [
            ("write to a not-present page", a => { a.mov(rax, 0x4000_0000L); a.mov(__qword_ptr[rax], rax); }, null, 0x4000_0000, 0x2),
            ("read of the stack guard", a => { a.mov(rax, 0x7008L); a.mov(rbx, __qword_ptr[rax]); }, null, 0x7008, 0x0),
            ("write to a read-only page (CR0.WP)", a => { a.mov(rax, (long)Spare); a.mov(__qword_ptr[rax], rax); },
                g => g.SetPte(IdtGuest.SpareGpa, 1), Spare, 0x3),
            ("read through a PTE with bit 40 (above MAXPHYADDR 36)", a => { a.mov(rax, (long)Spare); a.mov(rbx, __qword_ptr[rax]); },
                g => g.SetPte(IdtGuest.SpareGpa, 3 | (1UL << 40)), Spare, 0x9),
            ("write through a PTE with bit 40", a => { a.mov(rax, (long)Spare); a.mov(__qword_ptr[rax], rax); },
                g => g.SetPte(IdtGuest.SpareGpa, 3 | (1UL << 40)), Spare, 0xb),
            ("read through a PTE with XD but EFER.NXE clear", a => { a.mov(rax, (long)Spare); a.mov(rbx, __qword_ptr[rax]); },
                g => g.SetPte(IdtGuest.SpareGpa, 3 | (1UL << 63)), Spare, 0x9),
            ("a 1 GiB page without CPUID GBPAGES", a => { a.mov(rax, 0x80_0000_0000L + 0x88010); a.mov(rbx, __qword_ptr[rax]); },
                g => { g.Guest.Memory.Write<ulong>(0x2000 + 8, 0x8a000 | 3); g.Guest.Memory.Write<ulong>(0x8a000, 0x83); }, 0x80_0008_8010, 0x9),
            ("a 2 MiB page with bit 13 set", a => { a.mov(rax, 0x4000_0000L + 0x88010); a.mov(rbx, __qword_ptr[rax]); },
                g => { g.Guest.Memory.Write<ulong>(0x3000 + 8, 0x8a000 | 3); g.Guest.Memory.Write<ulong>(0x8a000, 0x83 | (1UL << 13)); }, 0x4008_8010, 0x9),
            ("fetch from a not-present page, NXE clear: no I/D bit", a => { a.mov(rax, 0x7000L); a.jmp(rax); }, null, 0x7000, 0x0),
            ("fetch from a not-present page, NXE set", a => { a.mov(rax, 0x7000L); a.jmp(rax); }, SetNxe, 0x7000, 0x10),
            ("fetch from an XD page", a => { a.mov(rax, (long)IdtGuest.SpareGpa); a.jmp(rax); },
                g => { SetNxe(g); g.SetPte(IdtGuest.SpareGpa, 3 | (1UL << 63)); }, IdtGuest.SpareGpa, 0x11),
        ];
        foreach (var (what, body, setup, cr2, error) in cases)
        {
            using var g = IdtGuest.Create(kvm, a => { body(a); a.hlt(); }, Halting);
            setup?.Invoke(g);
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.Reason}");
            var d = g.Single();
            Assert.True(d.Vector == 14 && d.ErrorCode == error && d.Cr2 == cr2,
                $"{what}: vector {d.Vector}, error 0x{d.ErrorCode:X}, CR2 0x{d.Cr2:X}; expected error 0x{error:X}, CR2 0x{cr2:X}");
            Assert.Equal(cr2, g.Vcpu.GetSregs().cr2);
        }

        static void SetNxe(IdtGuest g)
        {
            var s = g.Vcpu.GetSregs();
            s.efer |= Efer_Nx;
            g.Vcpu.SetSregs(s);
        }
    }

    [ConformanceCase("Intel SDM Vol. 3A 3.3.7.1: a non-canonical data address is #GP(0)")]
    public static void non_canonical_access_is_general_protection_zero(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.mov(rax, long.MinValue); a.mov(rbx, __qword_ptr[rax]); a.hlt(); }, Halting);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        Assert.Equal(13UL, d.Vector);
        Assert.Equal(0UL, d.ErrorCode);
        AssertFrame(d, LongModeGuest.CodeGpa + 10, errorCode: true);
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.12.1, 6.13: a not-present gate is #NP(vector*8+IDT+EXT), delivered serially after a benign #UD")]
    public static void not_present_gate_raises_segment_not_present(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.ud2(); a.hlt(); }, AllVectors(v => new IdtVector(v, Present: v != 6)));
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        if (HostDeviations.KvmPvmNotPresentGateIsDoubleFault(ctx.Target.IsReal))
        {
            Assert.Equal(8UL, d.Vector);
            Assert.Equal(0UL, d.ErrorCode);
            AssertFrame(d, LongModeGuest.CodeGpa, errorCode: true);
            return;
        }
        Assert.Equal(11UL, d.Vector);
        Assert.Equal((6UL << 3) | 2 | 1, d.ErrorCode);
        AssertFrame(d, LongModeGuest.CodeGpa, errorCode: true);
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.15 Table 6-5: #NP while delivering #NP is a double fault, error code 0")]
    public static void fault_while_delivering_a_contributory_fault_is_a_double_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.ud2(); a.hlt(); }, AllVectors(v => new IdtVector(v, Present: v is not (6 or 11))));
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        Assert.Equal(8UL, d.Vector);
        Assert.Equal(0UL, d.ErrorCode);
        AssertFrame(d, LongModeGuest.CodeGpa, errorCode: true);
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.15 Table 6-5: #PF whose gate is beyond the IDT limit -> #GP -> double fault; CR2 stays loaded")]
    public static void page_fault_beyond_the_idt_limit_is_a_double_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // The limit covers vectors 0-13: the #PF gate is outside it, the #GP (0x73) it raises is contributory.
        using var g = IdtGuest.Create(kvm, a => { a.mov(rax, 0x4000_0000L); a.mov(__qword_ptr[rax], rax); a.hlt(); }, Halting, 14 * 16 - 1);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        Assert.Equal(8UL, d.Vector);
        Assert.Equal(0UL, d.ErrorCode);
        Assert.Equal(0x4000_0000UL, d.Cr2);
        AssertFrame(d, LongModeGuest.CodeGpa + 10, errorCode: true);
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.15 Interrupt 8: a fault while delivering #DF is a triple fault -> KVM_EXIT_SHUTDOWN")]
    public static void fault_while_delivering_a_double_fault_shuts_down(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.ud2(); a.hlt(); }, AllVectors(v => new IdtVector(v, Present: v is not (6 or 8 or 11))));
        Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, g.Vcpu.Run().Reason);
        Assert.Empty(g.Deliveries);
        var regs = g.Vcpu.GetRegs();
        Assert.Equal(LongModeGuest.CodeGpa, regs.rip);
        Assert.Equal(StartRsp, regs.rsp);
        Assert.Equal(0x2UL | Rf, regs.rflags);
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.15: without an IDT (limit 0) any exception ends in a triple fault (the sandbox relies on it)")]
    public static void exception_without_an_idt_shuts_down(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.ud2(); a.hlt(); }, [], idtLimit: 0);
        Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, g.Vcpu.Run().Reason);
        var regs = g.Vcpu.GetRegs();
        Assert.Equal(LongModeGuest.CodeGpa, regs.rip);
        Assert.Equal(0x2UL | Rf, regs.rflags);
    }

    [ConformanceCase("Intel SDM Vol. 2A INT n/INT3: delivered with RIP past the instruction, no RF; IRETQ continues after it")]
    public static void int3_and_int_n_are_delivered_and_return(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.int3(); a.@int(0x1f); a.mov(eax, 0x55); a.hlt(); },
            AllVectors(v => new IdtVector(v, ResumeSkip: v is 3 or 0x1f ? 0 : -1)));
        var exit = g.Vcpu.Run();
        if (HostDeviations.KvmPvmSoftwareInterruptsFail(ctx.Target.IsReal))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
            Assert.Equal(LongModeGuest.CodeGpa, g.Vcpu.GetRegs().rip);
            Assert.Empty(g.Deliveries);
            return;
        }
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
        var all = g.Deliveries;
        Assert.Equal(2, all.Count);
        Assert.Equal(3UL, all[0].Vector);
        AssertFrame(all[0], LongModeGuest.CodeGpa + 1, errorCode: false);
        Assert.Equal(0UL, all[0].Rflags & Rf);
        Assert.Equal(0x1fUL, all[1].Vector);
        AssertFrame(all[1], LongModeGuest.CodeGpa + 3, errorCode: false);
        Assert.Equal(0x55UL, g.Vcpu.GetRegs().rax);
    }
}
