// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The <c>exits</c> vCPU statistic (arch/x86/kvm/x86.c vcpu_enter_guest "++vcpu-&gt;stat.exits" after every VM exit)
/// for instructions the kernel completes without returning to userspace.
/// </summary>
public static class ExitStatistics
{
    private const int N = 100;

    private static ulong ExitsOf(CaseContext ctx, bool irqchip, Action<Iced.Intel.Assembler> body)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, VmType.Default, null, irqchip ? vm => vm.CreateIrqchip() : null, a =>
        {
            for (int i = 0; i < N; i++) body(a);
            a.@out(0x10, al);
        });
        if (irqchip) g.IdentityMap(0xfee0_0000);
        using var stats = g.Vcpu.OpenStatistics();
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, exit.ToString());
        return stats.Read()["exits"];
    }

    [ConformanceCase("x86.c vcpu_enter_guest \"++vcpu->stat.exits\": 100 CPUIDs, RDMSRs, WRMSRs, in-kernel xAPIC MMIO reads or in-kernel PIC port writes/reads before an OUT to userspace count no exit each on this host (observed on Linux 6.18 kvm_pvm: exits 1, the OUT, on a quiet host; host interrupts may add a few) and on the emulator (exactly 1); VMX/SVM would count each intercepted one, which the emulator does not model (VcpuStatSlots.cs)")]
    public static void instructions_completed_in_the_kernel_count_no_exit_here(CaseContext ctx)
    {
        var measured = new (string What, ulong Exits)[]
        {
            ("nop", ExitsOf(ctx, false, a => a.nop())),
            ("cpuid", ExitsOf(ctx, false, a => { a.xor(eax, eax); a.cpuid(); })),
            ("rdmsr IA32_APIC_BASE", ExitsOf(ctx, false, a => { a.mov(ecx, 0x1b); a.rdmsr(); })),
            ("wrmsr IA32_PAT", ExitsOf(ctx, false, a => { a.mov(ecx, 0x277); a.rdmsr(); a.wrmsr(); })),
            ("xAPIC ID read", ExitsOf(ctx, true, a => a.mov(eax, __dword_ptr[0xfee0_0020]))),
            ("out 0x21 (PIC)", ExitsOf(ctx, true, a => { a.mov(al, 0xff); a.@out(0x21, al); })),
            ("in 0x21 (PIC)", ExitsOf(ctx, true, a => a.@in(al, 0x21))),
        };
        string all = string.Join(", ", measured.Select(m => $"{m.What} {m.Exits}"));
        // The real kernel also counts exits for host interrupts (vcpu_enter_guest counts every VM exit), a few at most
        // while a loaded host runs the case; an exit per instruction would be 100 more.
        foreach (var (_, exits) in measured) Assert.True(ctx.Target.IsReal ? exits is >= 1 and <= N / 4 : exits == 1, all);
    }
}
