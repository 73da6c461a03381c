// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// LLDT/SLDT and selectors with TI = 1 in a 64-bit guest (arch/x86/kvm/emulate.c em_lldt →
/// __load_segment_descriptor(VCPU_SREG_LDTR), em_sldt, get_descriptor_table_ptr; Intel SDM Vol. 2A LLDT/SLDT, Vol. 3A
/// 3.5.1). The guest's GDT gets a 16-byte LDT descriptor at 0x28 (entries 5 and 6); the LDT at <see cref="LdtBase"/>
/// holds a data segment (0x0C, not yet accessed), a 64-bit code segment (0x14) and an absent data segment (0x1C).
/// </summary>
public static class LdtTests
{
    private const ushort LdtSelector = 0x28, LdtData = 0x0C, LdtCode = 0x14, LdtAbsent = 0x1C;
    private const ulong LdtBase = 0x8_A000, LdtLimit = 4 * 8 - 1;
    private const ulong Scratch = 0x8_9000;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    private static void AddLdt(IdtGuest g, byte type = 2, bool present = true, uint baseHigh = 0)
    {
        var ldt = new kvm_segment { @base = LdtBase, limit = (uint)LdtLimit, type = type, present = (byte)(present ? 1 : 0) };
        g.Guest.Memory.Write(Layout.Gdt + LdtSelector, Gdt.Encode(ldt));
        g.Guest.Memory.Write(Layout.Gdt + LdtSelector + 8, (ulong)baseHigh);
        var data = Gdt.Data;
        data.type = 2; // read/write, not accessed
        var absent = data;
        absent.present = 0;
        g.Guest.Memory.Write(LdtBase, 0UL);
        g.Guest.Memory.Write(LdtBase + 8, Gdt.Encode(data));
        g.Guest.Memory.Write(LdtBase + 16, Gdt.Encode(Gdt.Code));
        g.Guest.Memory.Write(LdtBase + 24, Gdt.Encode(absent));
        var s = g.Vcpu.GetSregs();
        s.gdt.limit = 7 * 8 - 1;
        g.Vcpu.SetSregs(s);
    }

    [ConformanceCase("emulate.c em_lldt / em_sldt / get_descriptor_table_ptr: LLDT loads LDTR from the GDT's LDT descriptor (type 2) and KVM_GET_SREGS reports it; SLDT reads the selector back (register zero-extended, memory 16 bits); a TI=1 selector loads ES from the LDT (accessed bit set there) and a far JMP takes CS from it")]
    public static void lldt_loads_the_ldt_and_ti_selectors_read_it(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // Up to the far JMP through the m16:32 pointer at Scratch + 0x10, which points right after it.
        static void Prefix(Assembler a)
        {
            a.mov(ax, LdtSelector);
            a.lldt(ax);
            a.mov(rbx, -1L);
            a.sldt(rbx);
            a.sldt(__word_ptr[Scratch]);
            a.mov(ax, LdtData);
            a.mov(es, ax);
            a.AddInstruction(Instruction.Create(Code.Jmp_m1632, new MemoryOperand(Register.None, (long)Scratch + 0x10)));
        }
        using var g = IdtGuest.Create(kvm, a =>
        {
            Prefix(a);
            a.mov(ecx, cs);
            a.hlt();
        }, Halting);
        AddLdt(g);
        g.Guest.Memory.Write(Scratch, ulong.MaxValue);
        ulong targetIp = LongModeGuest.CodeGpa + (ulong)LongModeGuest.Assemble(Prefix).Length;
        g.Guest.Memory.Write(Scratch + 0x10, (uint)targetIp);
        g.Guest.Memory.Write(Scratch + 0x14, LdtCode);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        Assert.Empty(g.Deliveries);
        var s = g.Vcpu.GetSregs();
        Assert.Equal((LdtSelector, LdtBase, (uint)LdtLimit, (byte)2, (byte)0, (byte)1), (s.ldt.selector, s.ldt.@base, s.ldt.limit, s.ldt.type, s.ldt.s, s.ldt.present));
        var r = g.Vcpu.GetRegs();
        Assert.Equal((ulong)LdtSelector, r.rbx);
        Assert.Equal(0xFFFF_FFFF_FFFF_0000UL | LdtSelector, g.Guest.Memory.Read<ulong>(Scratch));
        Assert.Equal((LdtData, (byte)3), (s.es.selector, s.es.type));
        Assert.Equal(3UL, (g.Guest.Memory.Read<ulong>(LdtBase + 8) >> 40) & 0xf); // accessed in the LDT
        Assert.Equal((ulong)LdtCode, r.rcx);
        Assert.Equal(LdtCode, s.cs.selector);
    }

    [ConformanceCase("SDM Vol. 2A LLDT, emulate.c __load_segment_descriptor(VCPU_SREG_LDTR): LLDT of a TI=1 selector (kvm_pvm: HostDeviations.KvmPvmLdtSelectorInLtrOrLldt), a data segment or a selector beyond the GDT limit is #GP(selector), an absent LDT #NP(selector); in 64-bit mode a non-canonical base from the 16-byte descriptor #GP(selector); LDTR stays as it was")]
    public static void lldt_refuses_ldt_selectors_non_ldt_and_absent_descriptors(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (string What, ushort Selector, int Vector, bool Absent, uint BaseHigh)[] refusals =
        [
            ("TI = 1", LdtSelector | 4, 13, false, 0),
            ("data segment", Gdt.DataSelector, 13, false, 0),
            ("TSS", Gdt.TssSelector, 13, false, 0),
            ("beyond the limit", 0x40, 13, false, 0),
            ("absent LDT", LdtSelector, 11, true, 0),
            ("non-canonical base", LdtSelector, 13, false, 0x8000_0000),
        ];
        foreach (var (what, selector, vector, absent, baseHigh) in refusals)
        {
            using var g = IdtGuest.Create(kvm, a =>
            {
                a.mov(ax, selector);
                a.lldt(ax);
                a.hlt();
            }, Halting);
            AddLdt(g, present: !absent, baseHigh: baseHigh);
            var before = g.Vcpu.GetSregs().ldt;
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.ToString()}");
            var d = g.Single();
            if ((selector & 4) != 0 && HostDeviations.KvmPvmLdtSelectorInLtrOrLldt(ctx.Target.IsReal))
            {
                // The descriptor read at LDTR.base (0 after reset) + 0x28: the guest's unmapped null page.
                Assert.True(d.Vector == 14 && d.ErrorCode == 0, $"{what}: vector {d.Vector} error {d.ErrorCode}");
                continue;
            }
            Assert.True((ulong)vector == d.Vector && (ulong)(selector & 0xfffc) == d.ErrorCode, $"{what}: vector {d.Vector} error {d.ErrorCode}");
            Assert.Equal(LongModeGuest.CodeGpa + 4, d.Rip);
            var ldt = g.Vcpu.GetSregs().ldt;
            Assert.True(before.selector == ldt.selector && before.@base == ldt.@base, what);
        }
    }

    [ConformanceCase("emulate.c get_descriptor_table_ptr / read_segment_descriptor: a TI=1 selector beyond the LDT limit is #GP(selector), an absent LDT data segment #NP(selector); after LLDT of a null selector every TI=1 selector is #GP(selector)")]
    public static void ldt_selectors_fault_beyond_the_ldt(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (string What, ushort Ldtr, ushort Selector, int Vector)[] faults =
        [
            ("beyond the LDT limit", LdtSelector, 0x24, 13),
            ("absent", LdtSelector, LdtAbsent, 11),
            ("null LDTR", 0, LdtData, 13),
        ];
        foreach (var (what, ldtr, selector, vector) in faults)
        {
            using var g = IdtGuest.Create(kvm, a =>
            {
                a.mov(ax, ldtr);
                a.lldt(ax);
                a.mov(ax, selector);
                a.mov(es, ax);
                a.hlt();
            }, Halting);
            AddLdt(g);
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.ToString()}");
            var d = g.Single();
            Assert.True((ulong)vector == d.Vector && (ulong)(selector & 0xfffc) == d.ErrorCode, $"{what}: vector {d.Vector} error {d.ErrorCode}");
            Assert.Equal(LongModeGuest.CodeGpa + 12, d.Rip); // on the MOV ES (after mov ax; lldt ax; mov ax: 4 bytes each)
            Assert.Equal(ldtr, g.Vcpu.GetSregs().ldt.selector);
        }
    }

    [ConformanceCase("SDM Vol. 2A LTR: LTR of a TI=1 selector is #GP(selector), TR unchanged (kvm_pvm: #GP(0), HostDeviations.KvmPvmLdtSelectorInLtrOrLldt)")]
    public static void ltr_of_an_ldt_selector_is_a_gp(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(ax, LdtSelector);
            a.lldt(ax);
            a.mov(ax, LdtData);
            a.ltr(ax);
            a.hlt();
        }, Halting);
        AddLdt(g);
        var before = g.Vcpu.GetSregs().tr;
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        var d = g.Single();
        ulong error = HostDeviations.KvmPvmLdtSelectorInLtrOrLldt(ctx.Target.IsReal) ? 0UL : LdtData & 0xfffcUL;
        Assert.Equal((13UL, error), (d.Vector, d.ErrorCode));
        Assert.Equal(LongModeGuest.CodeGpa + 12, d.Rip);
        Assert.Equal(before.selector, g.Vcpu.GetSregs().tr.selector);
    }
}
