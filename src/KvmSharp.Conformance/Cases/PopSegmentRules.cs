// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Abi.KvmVcpuEvents;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// POP to a segment register as KVM's instruction emulator runs it (arch/x86/kvm/emulate.c em_pop_sreg, x86.c
/// toggle_interruptibility), seen while the next instruction waits for its MMIO read. Probed on Linux 6.18 kvm_pvm in
/// C first (real mode): the Intel SDM's POP SS interrupt shadow, KVM_X86_SHADOW_INT_MOV_SS.
/// </summary>
public static class PopSegmentRules
{
    /// <summary>DS = 0x2000 puts [0] at 0x20000, past the real-mode guest's slot: an MMIO read.</summary>
    private const ulong MmioGpa = 0x20000;

    /// <summary>Where SP starts (SS = 0x1000, the slot): the stack words 0x1000 (the guest's own SS) and 0x1234.</summary>
    private const ushort StackTop = 0x7ff0;

    private const ushort Own = (ushort)(RealModeGuest.Gpa >> 4);

    private static RealModeGuest PopGuest(Kvm kvm, Action<Assembler> beforeRead)
    {
        var g = RealModeGuest.Create(kvm, a =>
        {
            a.mov(ax, 0x2000);
            a.mov(ds, ax);
            beforeRead(a);
            a.mov(ax, __word_ptr[0]);
            a.hlt();
        }, backing: GuestMemoryBacking.HostMemory);
        g.Host!.Write(StackTop, new byte[] { Own & 0xff, Own >> 8, 0x34, 0x12, 0, 0, 0, 0 });
        // RealModeGuest sets CS and DS to the slot; SS and ES too here, so the stack is in the slot.
        var s = g.Vcpu.GetSregs();
        s.ss.selector = s.es.selector = Own;
        s.ss.@base = s.es.@base = RealModeGuest.Gpa;
        g.Vcpu.SetSregs(s);
        var r = g.Vcpu.GetRegs();
        r.rsp = StackTop;
        g.Vcpu.SetRegs(r);
        return g;
    }

    /// <summary>Runs to the MMIO read: (interrupt shadow, SP, SS selector, ES selector).</summary>
    private static (byte Shadow, ulong Sp, ushort Ss, ushort Es) RunToRead(RealModeGuest g)
    {
        var exit = g.Vcpu.Run();
        Assert.Equal((KvmExitReason.KVM_EXIT_MMIO, MmioGpa), (exit.Reason, exit.MmioAddress));
        var s = g.Vcpu.GetSregs();
        return (g.Vcpu.GetEvents().interrupt_shadow, g.Vcpu.GetRegs().rsp, s.ss.selector, s.es.selector);
    }

    [ConformanceCase("arch/x86/kvm/emulate.c em_pop_sreg: POP SS sets ctxt->interruptibility = KVM_X86_SHADOW_INT_MOV_SS (also after STI, and with a 32-bit operand, which pops 4 bytes); pop ss; pop ss and mov ss; pop ss leave none (x86.c toggle_interruptibility); POP ES / POP FS none; the shadow ends with the next instruction")]
    public static void pop_ss_opens_a_mov_ss_shadow(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // The stack holds 0x1000, 0x1234: the first POP loads the guest's own selector (the stack stays where it is),
        // a second one 0x1234.
        (string Name, Action<Assembler> Code, byte Shadow, ulong Sp, ushort Ss, ushort Es)[] cases =
        [
            ("pop ss", a => a.pop(ss), KVM_X86_SHADOW_INT_MOV_SS, StackTop + 2, Own, Own),
            ("o32 pop ss", a => a.db(0x66, 0x17), KVM_X86_SHADOW_INT_MOV_SS, StackTop + 4, Own, Own),
            ("sti; pop ss", a => { a.sti(); a.pop(ss); }, KVM_X86_SHADOW_INT_MOV_SS, StackTop + 2, Own, Own),
            ("pop ss; sti", a => { a.pop(ss); a.sti(); }, KVM_X86_SHADOW_INT_STI, StackTop + 2, Own, Own),
            ("pop ss; pop ss", a => { a.pop(ss); a.pop(ss); }, 0, StackTop + 4, 0x1234, Own),
            ("mov ss; pop ss", a => { a.mov(cx, Own); a.mov(ss, cx); a.pop(ss); }, 0, StackTop + 2, Own, Own),
            ("pop es; pop es", a => { a.pop(es); a.pop(es); }, 0, StackTop + 4, Own, 0x1234),
            ("pop fs", a => a.pop(fs), 0, StackTop + 2, Own, Own),
        ];
        foreach (var (name, code, shadow, sp, ssSel, esSel) in cases)
        {
            using var g = PopGuest(kvm, code);
            Assert.True((shadow, sp, ssSel, esSel) == RunToRead(g), $"{name}: expected shadow {shadow}, SP 0x{sp:X}, SS 0x{ssSel:X}, ES 0x{esSel:X}, got {RunToRead0(g)}");
            Assert.False(g.Vcpu.ReadyForInterruptInjection, name);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Equal(0, g.Vcpu.GetEvents().interrupt_shadow);
        }
    }

    private static string RunToRead0(RealModeGuest g)
    {
        var s = g.Vcpu.GetSregs();
        return $"shadow {g.Vcpu.GetEvents().interrupt_shadow}, SP 0x{g.Vcpu.GetRegs().rsp:X}, SS 0x{s.ss.selector:X}, ES 0x{s.es.selector:X}";
    }
}
