// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// LTR/STR (arch/x86/kvm/emulate.c em_ltr → __load_segment_descriptor(VCPU_SREG_TR), em_str) and the bit-test family
/// BT/BTS/BTR/BTC (Intel SDM Vol. 2A BT; emulate.c em_bt …) in a 64-bit guest. The GDT is the guest's (a busy TSS at
/// 0x18); the cases add a descriptor at 0x28 (entries 5 and 6) and widen GDTR over it.
/// </summary>
public static class TaskRegisterAndBitTests
{
    private const ushort NewTss = 0x28;
    private const ulong TssBase = 0x1_0008_9000, TssLimit = 0x67;
    private const ulong Scratch = 0x8_9000;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>A 16-byte system descriptor of <paramref name="type"/> at <see cref="NewTss"/>, GDTR over 7 entries.</summary>
    private static void AddTssDescriptor(IdtGuest g, byte type, bool present = true)
    {
        var tss = Gdt.TaskState;
        (tss.@base, tss.limit, tss.type, tss.present) = (TssBase, (uint)TssLimit, type, (byte)(present ? 1 : 0));
        g.Guest.Memory.Write(Layout.Gdt + NewTss, Gdt.Encode(tss));
        g.Guest.Memory.Write(Layout.Gdt + NewTss + 8, TssBase >> 32);
        var s = g.Vcpu.GetSregs();
        s.gdt.limit = 7 * 8 - 1;
        g.Vcpu.SetSregs(s);
    }

    [ConformanceCase("emulate.c __load_segment_descriptor(VCPU_SREG_TR): LTR of an available 64-bit TSS loads TR with the 16-byte descriptor's base and the busy type (0xB) and sets the busy bit in the GDT; em_str: STR reads the selector back, zero-extended in a register")]
    public static void ltr_loads_an_available_tss_and_marks_it_busy(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(rbx, -1L);
            a.mov(ax, NewTss);
            a.ltr(ax);
            a.str(rbx);
            a.str(__word_ptr[Scratch]);
            a.hlt();
        }, Halting);
        AddTssDescriptor(g, type: 9);
        g.Guest.Memory.Write(Scratch, ulong.MaxValue);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == Abi.KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        Assert.Empty(g.Deliveries);
        var tr = g.Vcpu.GetSregs().tr;
        Assert.Equal((NewTss, TssBase, (uint)TssLimit, (byte)0xB, (byte)0, (byte)1), (tr.selector, tr.@base, tr.limit, tr.type, tr.s, tr.present));
        Assert.Equal(0xBUL, (g.Guest.Memory.Read<ulong>(Layout.Gdt + NewTss) >> 40) & 0xf);
        Assert.Equal((ulong)NewTss, g.Vcpu.GetRegs().rbx);
        Assert.Equal(0xFFFF_FFFF_FFFF_0000UL | NewTss, g.Guest.Memory.Read<ulong>(Scratch));
    }

    [ConformanceCase("emulate.c __load_segment_descriptor(VCPU_SREG_TR): LTR of a null selector is #GP(0); a busy TSS, a data segment or a selector beyond the GDT limit #GP(selector); an absent TSS #NP(selector); TR stays as it was")]
    public static void ltr_refuses_null_busy_non_tss_and_absent_descriptors(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (string What, ushort Selector, int Vector, ulong Error, bool Absent)[] refusals =
        [
            ("null", 0, 13, 0, false),
            ("busy TSS", Gdt.TssSelector, 13, Gdt.TssSelector, false),
            ("data segment", Gdt.DataSelector, 13, Gdt.DataSelector, false),
            ("beyond the limit", 0x40, 13, 0x40, false),
            ("absent TSS", NewTss, 11, NewTss, true),
        ];
        foreach (var (what, selector, vector, error, absent) in refusals)
        {
            using var g = IdtGuest.Create(kvm, a =>
            {
                a.mov(ax, selector);
                a.ltr(ax);
                a.hlt();
            }, Halting);
            AddTssDescriptor(g, type: 9, present: !absent);
            var before = g.Vcpu.GetSregs().tr;
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == Abi.KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.ToString()}");
            var d = g.Single();
            Assert.True((ulong)vector == d.Vector && error == d.ErrorCode, $"{what}: vector {d.Vector} error {d.ErrorCode}");
            Assert.Equal(LongModeGuest.CodeGpa + 4, d.Rip); // on the LTR (after the 4-byte MOV AX)
            var tr = g.Vcpu.GetSregs().tr;
            Assert.True(before.selector == tr.selector && before.@base == tr.@base && before.type == tr.type, what);
            Assert.Equal(9UL, (g.Guest.Memory.Read<ulong>(Layout.Gdt + NewTss) >> 40) & 0xf);
        }
    }

    [ConformanceCase("Intel SDM Vol. 2A BT/BTS/BTR/BTC: CF = the selected bit, then set/clear/complement it; an immediate offset is taken modulo the operand size, a register offset into memory is signed and selects a word beyond the operand")]
    public static void bit_tests_set_cf_and_change_only_their_bit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Out = Scratch + 0x100;
        using var g = IdtGuest.Create(kvm, a =>
        {
            int slot = 0;
            void Save(AssemblerRegister64 reg)
            {
                a.pushfq();
                a.pop(rax);
                a.and(eax, 1); // CF
                a.mov(__qword_ptr[Out + (ulong)slot * 16], reg);
                a.mov(__qword_ptr[Out + (ulong)slot * 16 + 8], rax);
                slot++;
            }
            a.mov(rbx, 0x8000_0000_0000_0005L);
            a.bt(rbx, 63); Save(rbx);
            a.bt(rbx, 1); Save(rbx);
            a.bts(rbx, 65); Save(rbx); // modulo 64: bit 1
            a.btr(ebx, 0); Save(rbx); // 32-bit: zero-extends
            a.mov(rcx, 0x10L);
            a.btc(rbx, rcx); Save(rbx);
            a.mov(rcx, -1L); // bit 63 of the qword below Scratch + 8
            a.bts(__qword_ptr[Scratch + 8], rcx);
            a.mov(rdx, __qword_ptr[Scratch]); Save(rdx);
            a.mov(ecx, 70); // bit 6 of the dword at Scratch + 8
            a.btr(__dword_ptr[Scratch], ecx);
            a.mov(rdx, __qword_ptr[Scratch + 8]); Save(rdx);
            a.bt(__word_ptr[Scratch + 8], 3); Save(rdx);
            a.hlt();
        }, Halting);
        g.Guest.Memory.Write(Scratch, 0x1111_1111_1111_1111UL);
        g.Guest.Memory.Write(Scratch + 8, 0x0000_0000_0000_00C8UL);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == Abi.KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        Assert.Empty(g.Deliveries);
        (ulong Value, ulong Cf)[] expected =
        [
            (0x8000_0000_0000_0005, 1), // BT 63
            (0x8000_0000_0000_0005, 0), // BT 1
            (0x8000_0000_0000_0007, 0), // BTS 65 → bit 1
            (0x0000_0000_0000_0006, 1), // BTR ebx, 0
            (0x0000_0000_0001_0006, 0), // BTC bit 16
            (0x9111_1111_1111_1111, 0), // BTS [Scratch + 8], -1 → bit 63 of [Scratch]
            (0x0000_0000_0000_0088, 1), // BTR [Scratch], 70 → bit 6 of [Scratch + 8]
            (0x0000_0000_0000_0088, 1), // BT word [Scratch + 8], 3
        ];
        for (int i = 0; i < expected.Length; i++)
        {
            ulong value = g.Guest.Memory.Read<ulong>(Out + (ulong)i * 16), cf = g.Guest.Memory.Read<ulong>(Out + (ulong)i * 16 + 8);
            Assert.True(expected[i] == (value, cf), $"step {i}: 0x{value:X} CF {cf}, expected 0x{expected[i].Value:X} CF {expected[i].Cf}");
        }
    }
}
