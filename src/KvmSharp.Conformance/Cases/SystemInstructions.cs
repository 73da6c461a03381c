// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// MOV to/from CRn, LIDT/SIDT/SGDT and RDMSR EFER in a 64-bit guest (arch/x86/kvm/emulate.c em_cr_write,
/// em_lgdt_lidt, emulate_store_desc_ptr; arch/x86/kvm/x86.c kvm_set_cr3/cr4). Faults are caught by an IDT.
/// </summary>
public static class SystemInstructions
{
    private const ulong Scratch = 0x8_9000;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    [ConformanceCase("Intel SDM Vol. 2B MOV (control registers): CR0/CR3/CR4 read back what KVM_SET_SREGS set; CR2 is writable")]
    public static void control_registers_read_back_and_cr2_is_writable(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(rax, cr0);
            a.mov(rbx, cr3);
            a.mov(rcx, cr4);
            a.mov(rdx, 0x1234_5678_9abcL);
            a.mov(cr2, rdx);
            a.mov(rsi, cr2);
            a.mov(rdi, cr3);
            a.mov(cr3, rdi); // a CR3 write: the next access walks the (same) tables again
            a.mov(r8, __qword_ptr[0x8_0000]);
            a.hlt();
        }, Halting);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Empty(g.Deliveries);
        var r = g.Vcpu.GetRegs();
        var s = g.Vcpu.GetSregs();
        Assert.Equal(s.cr0, r.rax);
        Assert.Equal(s.cr3, r.rbx);
        Assert.Equal(s.cr4, r.rcx);
        Assert.Equal(0x1234_5678_9abcUL, r.rsi);
        Assert.Equal(0x1234_5678_9abcUL, s.cr2);
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_set_cr4: reserved bits and clearing PAE in long mode are #GP(0), RIP on the MOV")]
    public static void invalid_cr4_writes_are_general_protection(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (string What, int Mask, bool Set)[] writes = [("clear PAE", 0x20, false), ("set bit 23", 1 << 23, true)];
        foreach (var (what, mask, set) in writes)
        {
            using var g = IdtGuest.Create(kvm, a =>
            {
                a.mov(rax, cr4);
                if (set) a.or(eax, mask); else a.and(eax, ~mask);
                a.mov(cr4, rax);
                a.hlt();
            }, Halting);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            var d = g.Single();
            Assert.True(d.Vector == 13 && d.ErrorCode == 0, $"{what}: {d}");
            Assert.Equal(LongModeGuest.CodeGpa + 8, d.Rip);
        }
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_set_cr3: a CR3 above MAXPHYADDR (36 without CPUID) is #GP(0)")]
    public static void cr3_beyond_maxphyaddr_is_general_protection(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.mov(rax, cr3); a.mov(rbx, 1L << 40); a.or(rax, rbx); a.mov(cr3, rax); a.hlt(); }, Halting);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        Assert.Equal(13UL, d.Vector);
        Assert.Equal(0UL, d.ErrorCode);
    }

    [ConformanceCase("arch/x86/kvm/emulate.c em_lgdt_lidt: LIDT loads the IDT the next exception goes through; non-canonical base -> #GP(0)")]
    public static void lidt_loads_the_idt_and_checks_the_base(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // The IDT register starts empty (limit 0): only the LIDT makes the #UD deliverable.
        using (var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(__word_ptr[Scratch], 32 * 16 - 1);
            a.mov(rax, (long)IdtGuest.IdtGpa);
            a.mov(__qword_ptr[Scratch + 2], rax);
            a.lidt(__qword_ptr[Scratch]);
            a.ud2();
            a.hlt();
        }, Halting, idtLimit: 0))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Equal(6UL, g.Single().Vector);
            var idt = g.Vcpu.GetSregs().idt;
            Assert.Equal(IdtGuest.IdtGpa, idt.@base);
            Assert.Equal((ushort)(32 * 16 - 1), idt.limit);
        }
        using (var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(rax, long.MinValue);
            a.mov(__qword_ptr[Scratch + 2], rax);
            a.lidt(__qword_ptr[Scratch]);
            a.hlt();
        }, Halting))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            var d = g.Single();
            Assert.Equal(13UL, d.Vector);
            Assert.Equal(0UL, d.ErrorCode);
            Assert.Equal(IdtGuest.IdtGpa, g.Vcpu.GetSregs().idt.@base);
        }
    }

    [ConformanceCase("arch/x86/kvm/emulate.c emulate_store_desc_ptr: SGDT/SIDT store limit and 64-bit base (10 bytes)")]
    public static void sgdt_and_sidt_store_limit_and_base(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => { a.sgdt(__qword_ptr[Scratch]); a.sidt(__qword_ptr[Scratch + 0x10]); a.hlt(); }, Halting);
        g.Guest.Memory.Fill(Scratch, 0x20, 0xee);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var s = g.Vcpu.GetSregs();
        var m = g.Guest.Memory;
        Assert.Equal(s.gdt.limit, m.Read<ushort>(Scratch));
        Assert.Equal(s.gdt.@base, m.Read<ulong>(Scratch + 2));
        Assert.Equal(s.idt.limit, m.Read<ushort>(Scratch + 0x10));
        Assert.Equal(s.idt.@base, m.Read<ulong>(Scratch + 0x12));
        Assert.Equal(0xeeeeUL, m.Read<ushort>(Scratch + 10)); // nothing beyond the 10 bytes
    }

    [ConformanceCase("arch/x86/kvm/x86.c set_efer/__kvm_valid_efer: RDMSR EFER reads LME|LMA; WRMSR of NX without CPUID is #GP(0)")]
    public static void efer_reads_back_and_rejects_bits_without_cpuid(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(ecx, unchecked((int)0xC000_0080));
            a.rdmsr();
            a.mov(esi, eax);
            a.or(eax, 1 << 11);
            a.wrmsr();
            a.hlt();
        }, Halting);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Equal(g.Vcpu.GetSregs().efer, g.Vcpu.GetRegs().rsi);
        var d = g.Single();
        Assert.Equal(13UL, d.Vector);
        Assert.Equal(0UL, d.ErrorCode);
    }
}
