// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Interrupt delivery through an in-kernel local APIC into a 64-bit guest: KVM_SIGNAL_MSI sets IRR
/// (lapic.c __apic_accept_irq), kvm_check_and_inject_events takes the highest vector above PPR into ISR
/// (kvm_get_apic_interrupt) and the CPU delivers it through the guest's IDT; a lower priority class waits until the
/// guest's EOI, written to the xAPIC page at 0xFEE000B0 — handled in the kernel (apic_mmio_write), not a
/// KVM_EXIT_MMIO. The guest never halts: with an in-kernel APIC, HLT would wait in the kernel.
/// </summary>
public static class LapicDelivery
{
    private const byte DonePort = 0x10;
    private const int High = 0x2e, Low = 0x21; // priority classes 2 and 2: the lower waits for the EOI of the higher

    /// <summary>Maps the xAPIC page (GPA 0xFEE00000) with a 2 MiB uncached page: PDPT[3] → a page directory at SpareGpa.</summary>
    private static void MapApicPage(IdtGuest g)
    {
        var mem = g.Guest.Memory;
        mem.Fill(IdtGuest.SpareGpa, Layout.PageSize, 0);
        mem.Write(Layout.Pdpt + 3 * 8, IdtGuest.SpareGpa | 0x3UL);
        mem.Write(IdtGuest.SpareGpa + ((0xFEE00000UL - 0xC0000000UL) >> 21) * 8, 0xFEE00000UL | 0x80 | 0x10 | 0x3);
    }

    private static IdtGuest Guest(Kvm kvm, bool eoi) => IdtGuest.Create(kvm, a =>
    {
        a.nop();
        if (eoi)
        {
            a.mov(rax, 0xFEE000B0UL);
            a.mov(__dword_ptr[rax], 0);
            a.nop();
        }
        var done = a.CreateLabel();
        a.Label(ref done);
        a.mov(al, 0x77);
        a.@out(DonePort, al);
        a.jmp(done);
    }, [new IdtVector(High, ResumeSkip: 0), new IdtVector(Low, ResumeSkip: 0)], idtLimit: 256 * 16 - 1, prepareVm: vm => vm.CreateIrqchip());

    /// <summary>Software-enables the APIC, signals both vectors to APIC 0 and opens RFLAGS.IF for the entry.</summary>
    private static void Arm(IdtGuest g)
    {
        var l = g.Vcpu.GetLapic();
        l.SoftwareEnabled = true;
        g.Vcpu.SetLapic(l);
        Assert.Equal(1, g.Guest.Vm.SignalMsi(0xfee00000, Low));
        Assert.Equal(1, g.Guest.Vm.SignalMsi(0xfee00000, High));
        var regs = g.Vcpu.GetRegs();
        regs.rflags |= 0x200;
        g.Vcpu.SetRegs(regs);
    }

    private static void RunToDone(IdtGuest g)
    {
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == DonePort, $"expected OUT to 0x{DonePort:X}, got {exit.ToString()}");
    }

    [ConformanceCase("arch/x86/kvm/lapic.c __apic_accept_irq, kvm_get_apic_interrupt, __apic_update_ppr + x86.c kvm_check_and_inject_events: two MSIs in one priority class (kvm_run->cr8 ignored on entry, TPR's class and ready_for_interrupt_injection 1 on exit); the higher vector is delivered at entry and moves to ISR, PPR rises to its class, and the lower one stays in IRR, also over later KVM_RUNs, while the guest does not EOI (kvm_pvm: HostDeviations.KvmPvmDeliveredApicVectorNotInService)")]
    public static void msi_is_delivered_by_priority_and_the_next_waits_for_eoi(CaseContext ctx)
    {
        bool pvm = HostDeviations.KvmPvmDeliveredApicVectorNotInService(ctx.Target.IsReal);
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, eoi: false);
        Arm(g);
        // x86.c kvm_arch_vcpu_ioctl_run reads kvm_run->cr8 only "if (!lapic_in_kernel(vcpu))": 0x10 would be EINVAL.
        g.Vcpu.Cr8 = 0x10;
        RunToDone(g);
        Assert.Equal([(ulong)High], g.Deliveries.Select(d => d.Vector));
        // post_kvm_run_save: cr8 is the APIC's TPR class (0); ready_for_interrupt_injection is 1 with an in-kernel PIC.
        Assert.Equal((0UL, true), (g.Vcpu.Cr8, g.Vcpu.ReadyForInterruptInjection));
        var l = g.Vcpu.GetLapic();
        Assert.True(l.IsInService(High) != pvm, $"ISR holds the delivered vector: {l.IsInService(High)}");
        Assert.False(l.IsRequested(High), "IRR no longer holds it");
        Assert.True(l.IsRequested(Low), "the lower vector waits in IRR");
        Assert.Equal(pvm ? 0u : (uint)(High & 0xf0), l.Ppr);
        RunToDone(g);
        ulong[] expected = pvm ? [High, Low] : [High];
        Assert.Equal(expected, g.Deliveries.Select(d => d.Vector));
    }

    [ConformanceCase("arch/x86/kvm/lapic.c apic_mmio_write APIC_EOI → apic_set_eoi: the guest's EOI through the xAPIC page (no KVM_EXIT_MMIO with an in-kernel APIC) clears the in-service vector, PPR drops and the waiting vector is delivered at the next instruction boundary (kvm_pvm: at the next KVM_RUN, HostDeviations.KvmPvmDeliveredApicVectorNotInService)")]
    public static void guest_eoi_through_the_xapic_page_lets_the_next_vector_in(CaseContext ctx)
    {
        bool pvm = HostDeviations.KvmPvmDeliveredApicVectorNotInService(ctx.Target.IsReal);
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, eoi: true);
        MapApicPage(g);
        Arm(g);
        RunToDone(g);
        if (pvm) RunToDone(g);
        Assert.Equal([(ulong)High, (ulong)Low], g.Deliveries.Select(d => d.Vector));
        var l = g.Vcpu.GetLapic();
        Assert.False(l.IsInService(High), "the EOI cleared the first vector");
        Assert.True(l.IsInService(Low) != pvm, "the second vector is in service (never EOI'd)");
        Assert.False(l.IsRequested(Low), "nothing left in IRR");
    }
}
