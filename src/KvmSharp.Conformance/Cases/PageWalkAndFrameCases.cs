// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Two rules the audit left: CR0.WP decides whether a supervisor write may go through a read-only PTE (Intel SDM
/// Vol. 3A 4.6.1; arch/x86/kvm/mmu/paging_tmpl.h walk_addr_generic → permission_fault with the vCPU's CR0.WP), and
/// an exception whose frame cannot be pushed turns into #PF, then #DF, then a triple fault (SDM Vol. 3A 6.15 Table
/// 6-5 and Interrupt 8; KVM_EXIT_SHUTDOWN) — for an exception, an external interrupt and a page fault, with and without
/// IST gates, and what CR2 holds each time (kvm_pvm's differences: HostDeviations.KvmPvmDoubleFaultFromAFramePushLeavesCr2).
/// Each guest reports what its handler saw (<see cref="IdtGuest"/>).
/// </summary>
public static class PageWalkAndFrameCases
{
    private const ulong Spare = IdtGuest.SpareGpa + 0x10;
    private const ulong Cr0Wp = 1UL << 16;
    private const ulong Marker = 0x0bad_c0de_5eed_0001;

    /// <summary>A linear address no guest piece maps (the identity map covers the first 2 MiB only), 16-byte aligned.</summary>
    private const ulong UnmappedStackTop = 0x4000_1000;

    /// <summary>A mapped, otherwise unused stack for the #DF gate's IST1 (call-data area).</summary>
    private const ulong IstTop = 0x8_a000;

    private const int DfVector = 8, PfVector = 14;

    /// <summary>CR2 as KVM_SET_SREGS leaves it before the run: a page fault must replace it.</summary>
    private const ulong Cr2Before = 0x1234_5000;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    [ConformanceCase("Intel SDM Vol. 3A 4.6.1 + arch/x86/kvm/mmu/paging_tmpl.h walk_addr_generic / mmu.h permission_fault: at CPL 0 a write through " +
                     "a read-only PTE (R/W = 0) succeeds with CR0.WP = 0 and is #PF with error code P|W (0x3), CR2 the address, with CR0.WP = 1")]
    public static void cr0_wp_decides_supervisor_writes_to_read_only_pages(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (bool wp in new[] { false, true })
        {
            using var g = IdtGuest.Create(kvm, a =>
            {
                a.mov(rax, (long)Spare);
                a.mov(rbx, unchecked((long)Marker));
                a.mov(__qword_ptr[rax], rbx);
                a.hlt();
            }, Halting);
            g.SetPte(IdtGuest.SpareGpa, 1); // present, read-only, supervisor
            g.Guest.Memory.Write(Spare, 0UL);
            var s = g.Vcpu.GetSregs();
            s.cr0 = wp ? s.cr0 | Cr0Wp : s.cr0 & ~Cr0Wp;
            g.Vcpu.SetSregs(s);
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"CR0.WP = {(wp ? 1 : 0)}: {exit.ToString()}");
            if (!wp)
            {
                Assert.Empty(g.Deliveries);
                Assert.Equal(Marker, g.Guest.Memory.Read<ulong>(Spare));
                continue;
            }
            var d = g.Single();
            Assert.True(d.Vector == PfVector && d.ErrorCode == 0x3 && d.Cr2 == Spare,
                $"CR0.WP = 1: vector {d.Vector}, error 0x{d.ErrorCode:X}, CR2 0x{d.Cr2:X}; expected #PF 0x3 at 0x{Spare:X}");
            Assert.Equal(LongModeGuest.CodeGpa + 20, d.Rip); // the faulting MOV (after two 10-byte MOV r64, imm64)
            Assert.Equal(0UL, g.Guest.Memory.Read<ulong>(Spare));
        }
    }

    private const string DoubleFaultRule =
        "Intel SDM Vol. 3A 6.15 Table 6-5 and Interrupt 8: #UD whose frame cannot be pushed (RSP on an unmapped page, no IST) raises #PF, " +
        "whose frame cannot be pushed either: a page fault while delivering a page fault is #DF (error code 0, frame RIP on the UD2 and " +
        "the unmapped RSP; CR2 on the unmapped stack page), delivered here on TSS.IST1; without IST for #DF it faults too: triple fault, " +
        "KVM_EXIT_SHUTDOWN with CR2 on the stack page (kvm_pvm: CR2 left as it was, HostDeviations.KvmPvmDoubleFaultFromAFramePushLeavesCr2)";

    [ConformanceCase(DoubleFaultRule)]
    public static void unpushable_frame_is_a_double_fault_then_a_triple_fault(CaseContext ctx) => AssertDoubleThenTripleFault(ctx);

    [ConformanceCase(DoubleFaultRule + "; on the emulator in the upstream x86 preset (EmulatorConfig.X86FramePushFaultLeavesCr2 off)", Profile = EmulatedProfile.X86)]
    public static void unpushable_frame_is_a_double_fault_then_a_triple_fault_upstream_preset(CaseContext ctx) => AssertDoubleThenTripleFault(ctx);

    private static void AssertDoubleThenTripleFault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool pvm = FramePushLeavesCr2(ctx);
        // The #DF gate switches to a good stack (IST1): the double fault is delivered and recorded.
        using (var g = UnpushableFrameGuest(kvm, doubleFaultIst: true))
        {
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"#DF on IST1: {exit.ToString()}");
            var d = g.Single();
            Assert.True(d.Vector == DfVector && d.ErrorCode == 0,
                $"expected #DF with error code 0, got vector {d.Vector}, error 0x{d.ErrorCode:X}");
            Assert.Equal(LongModeGuest.CodeGpa + 10, d.Rip); // on the UD2 (after MOV RSP, imm64)
            Assert.Equal(UnmappedStackTop, d.Rsp);
            AssertStackCr2(d.Cr2, pvm, "#DF handler");
            Assert.Equal(IstTop - 6 * 8, d.HandlerRsp); // the frame with its error code, pushed below IST1
        }
        // No IST anywhere: delivering #DF faults as well.
        using (var g = UnpushableFrameGuest(kvm, doubleFaultIst: false))
        {
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SHUTDOWN, $"#DF without IST: {exit.ToString()}");
            Assert.Empty(g.Deliveries);
            var regs = g.Vcpu.GetRegs();
            Assert.Equal(LongModeGuest.CodeGpa + 10, regs.rip);
            Assert.Equal(UnmappedStackTop, regs.rsp);
            AssertStackCr2(g.Vcpu.GetSregs().cr2, pvm, "after the triple fault");
        }
    }

    private const string ExceptionPushRule =
        "Intel SDM Vol. 3A 6.15 Table 6-5: a benign (#UD) or contributory (#GP) exception whose frame cannot be pushed raises #PF (error code W = 0x2, " +
        "CR2 on the unmapped stack page; SDM 4.7), delivered serially: a #PF gate on IST1 takes it (frame RIP on the faulting instruction, the " +
        "unmapped RSP). kvm_pvm turns the failed push into #DF(0) at once and loads no CR2: with no IST for #DF that is KVM_EXIT_SHUTDOWN " +
        "(HostDeviations.KvmPvmDoubleFaultFromAFramePushLeavesCr2)";

    [ConformanceCase(ExceptionPushRule)]
    public static void unpushable_exception_frame_is_a_page_fault_on_an_ist_gate(CaseContext ctx) => AssertExceptionPushFault(ctx);

    [ConformanceCase(ExceptionPushRule + "; on the emulator in the upstream x86 preset", Profile = EmulatedProfile.X86)]
    public static void unpushable_exception_frame_is_a_page_fault_on_an_ist_gate_upstream_preset(CaseContext ctx) => AssertExceptionPushFault(ctx);

    private static void AssertExceptionPushFault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool pvm = FramePushLeavesCr2(ctx);
        // UD2 at +10 (after MOV RSP, imm64); the #GP store (non-canonical RAX) at +20 (after two MOV r64, imm64).
        foreach (var (name, program, rip) in new (string, Action<Assembler>, ulong)[]
                 {
                     ("#UD", a => { a.mov(rsp, (long)UnmappedStackTop); a.ud2(); a.hlt(); }, LongModeGuest.CodeGpa + 10),
                     ("#GP", a => { a.mov(rsp, (long)UnmappedStackTop); a.mov(rax, long.MinValue); a.mov(__qword_ptr[rax], rbx); a.hlt(); },
                         LongModeGuest.CodeGpa + 20),
                 })
        {
            using var g = IstGuest(kvm, program, PfVector);
            var exit = g.Vcpu.Run();
            if (pvm)
            {
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SHUTDOWN, $"{name}, kvm_pvm: {exit.ToString()}");
                Assert.Empty(g.Deliveries);
                Assert.Equal(rip, g.Vcpu.GetRegs().rip);
                Assert.Equal(Cr2Before, g.Vcpu.GetSregs().cr2);
                continue;
            }
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{name}: {exit.ToString()}");
            var d = g.Single();
            Assert.True(d.Vector == PfVector && d.ErrorCode == 0x2, $"{name}: vector {d.Vector}, error 0x{d.ErrorCode:X}; expected #PF 0x2");
            Assert.Equal((rip, UnmappedStackTop), (d.Rip, d.Rsp));
            AssertStackCr2(d.Cr2, pvm: false, name);
        }
    }

    private const string InterruptPushRule =
        "Intel SDM Vol. 3A 6.15 Table 6-5: an external interrupt (KVM_INTERRUPT, no in-kernel irqchip) whose frame cannot be pushed raises #PF " +
        "(error code 0x2), delivered serially: on an IST1 #PF gate it is taken (frame RIP on the interrupted instruction, the unmapped RSP); " +
        "without, its own push faults: #DF(0), on IST1 if the #DF gate has it, else KVM_EXIT_SHUTDOWN. CR2 on the unmapped stack page each time " +
        "(kvm_pvm: the same vectors, CR2 left as it was, HostDeviations.KvmPvmDoubleFaultFromAFramePushLeavesCr2)";

    [ConformanceCase(InterruptPushRule)]
    public static void unpushable_interrupt_frame_is_a_page_fault_then_a_double_fault(CaseContext ctx) => AssertInterruptPushFault(ctx);

    [ConformanceCase(InterruptPushRule + "; on the emulator in the upstream x86 preset", Profile = EmulatedProfile.X86)]
    public static void unpushable_interrupt_frame_is_a_page_fault_then_a_double_fault_upstream_preset(CaseContext ctx) => AssertInterruptPushFault(ctx);

    private static void AssertInterruptPushFault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool pvm = FramePushLeavesCr2(ctx);
        foreach (int ist in new[] { PfVector, DfVector, -1 })
        {
            using var g = IstGuest(kvm, a => { a.hlt(); a.hlt(); }, ist);
            var r = g.Vcpu.GetRegs();
            r.rsp = UnmappedStackTop;
            g.Vcpu.SetRegs(r);
            g.Vcpu.InjectInterrupt(0x21);
            var exit = g.Vcpu.Run();
            string what = ist < 0 ? "no IST" : $"IST1 on vector {ist}";
            if (ist < 0)
            {
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SHUTDOWN, $"{what}: {exit.ToString()}");
                Assert.Empty(g.Deliveries);
                Assert.Equal((LongModeGuest.CodeGpa, UnmappedStackTop), (g.Vcpu.GetRegs().rip, g.Vcpu.GetRegs().rsp));
                AssertStackCr2(g.Vcpu.GetSregs().cr2, pvm, what);
                continue;
            }
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.ToString()}");
            var d = g.Single();
            ulong error = ist == PfVector ? 0x2UL : 0;
            Assert.True(d.Vector == (ulong)ist && d.ErrorCode == error, $"{what}: vector {d.Vector}, error 0x{d.ErrorCode:X}");
            Assert.Equal((LongModeGuest.CodeGpa, UnmappedStackTop), (d.Rip, d.Rsp));
            AssertStackCr2(d.Cr2, pvm, what);
        }
    }

    [ConformanceCase("Intel SDM Vol. 3A 4.7, 6.15 Table 6-5 + arch/x86/kvm/x86.c kvm_multiple_exception: a #PF on a data access (CR2 = its address) whose " +
                     "frame cannot be pushed is #DF(0) — the second #PF is merged into #DF without its payload, so CR2 keeps the first address — on " +
                     "IST1, else KVM_EXIT_SHUTDOWN with that CR2; with the #PF gate on IST1 it is delivered (error code W = 0x2)")]
    public static void unpushable_page_fault_frame_keeps_the_first_cr2(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong data = 0x5000_0000;
        foreach (int ist in new[] { DfVector, PfVector, -1 })
        {
            using var g = IstGuest(kvm, a => { a.mov(rsp, (long)UnmappedStackTop); a.mov(rax, (long)data); a.mov(__qword_ptr[rax], rbx); a.hlt(); }, ist);
            var exit = g.Vcpu.Run();
            string what = ist < 0 ? "no IST" : $"IST1 on vector {ist}";
            ulong rip = LongModeGuest.CodeGpa + 20;
            if (ist < 0)
            {
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SHUTDOWN, $"{what}: {exit.ToString()}");
                Assert.Equal(rip, g.Vcpu.GetRegs().rip);
                Assert.Equal(data, g.Vcpu.GetSregs().cr2);
                continue;
            }
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.ToString()}");
            var d = g.Single();
            ulong error = ist == PfVector ? 0x2UL : 0;
            Assert.True(d.Vector == (ulong)ist && d.ErrorCode == error, $"{what}: vector {d.Vector}, error 0x{d.ErrorCode:X}");
            Assert.Equal((rip, UnmappedStackTop, data), (d.Rip, d.Rsp, d.Cr2));
        }
    }

    /// <summary>
    /// Whether the kernel under test loads no CR2 for a frame push's #PF (kvm_pvm; the emulator with
    /// EmulatorConfig.X86FramePushFaultLeavesCr2, on in its LikeThisHost preset).
    /// </summary>
    private static bool FramePushLeavesCr2(CaseContext ctx) => ctx.Target.IsReal
        ? HostDeviations.KvmPvmDoubleFaultFromAFramePushLeavesCr2(realKernel: true)
        : ctx.Kernel is Emulation.EmulatedKernel { Config.X86FramePushFaultLeavesCr2: true };

    /// <summary>CR2 as a frame push's #PF leaves it: on the unmapped stack page, or (kvm_pvm) as KVM_SET_SREGS gave it.</summary>
    private static void AssertStackCr2(ulong cr2, bool pvm, string what)
    {
        if (pvm)
            Assert.True(cr2 == Cr2Before, $"{what}, kvm_pvm: CR2 0x{cr2:X}, expected it left at 0x{Cr2Before:X}");
        else
            Assert.True(cr2 >= UnmappedStackTop - Layout.PageSize && cr2 < UnmappedStackTop,
                $"{what}: CR2 0x{cr2:X} is not on the unmapped stack page below 0x{UnmappedStackTop:X}");
    }

    /// <summary>
    /// <paramref name="program"/> with 48 halting gates (0x21 the interrupt's), CR2 = <see cref="Cr2Before"/>, TR loaded
    /// with TSS.IST1 = <see cref="IstTop"/>, and the gate of <paramref name="istVector"/> (none when negative) on IST1.
    /// </summary>
    private static IdtGuest IstGuest(Kvm kvm, Action<Assembler> program, int istVector)
    {
        var g = IdtGuest.Create(kvm, program, Enumerable.Range(0, 48).Select(v => new IdtVector(v)), 48 * 16 - 1);
        var s = g.Vcpu.GetSregs();
        s.cr2 = Cr2Before;
        s.tr = Gdt.TaskState;
        g.Vcpu.SetSregs(s);
        var mem = g.Guest.Memory;
        mem.Write(Layout.Tss + 0x24, IstTop);
        if (istVector >= 0)
        {
            ulong gate = IdtGuest.IdtGpa + (ulong)istVector * 16;
            mem.Write(gate, mem.Read<ulong>(gate) | (1UL << 32));
        }
        return g;
    }

    /// <summary>MOV RSP, <see cref="UnmappedStackTop"/>; UD2 — every vector halting; with <paramref name="doubleFaultIst"/> the #DF gate uses IST1.</summary>
    private static IdtGuest UnpushableFrameGuest(Kvm kvm, bool doubleFaultIst)
    {
        var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(rsp, (long)UnmappedStackTop);
            a.ud2();
            a.hlt();
        }, Halting);
        var s = g.Vcpu.GetSregs();
        s.cr2 = Cr2Before;
        g.Vcpu.SetSregs(s);
        if (!doubleFaultIst) return g;
        var mem = g.Guest.Memory;
        // TSS.IST1 (offset 0x24) and the #DF gate's IST field (bits 34:32 of its low quadword), TR loaded with the TSS.
        mem.Write(Layout.Tss + 0x24, IstTop);
        ulong gate = IdtGuest.IdtGpa + DfVector * 16;
        mem.Write(gate, mem.Read<ulong>(gate) | (1UL << 32));
        var sregs = g.Vcpu.GetSregs();
        sregs.tr = Gdt.TaskState;
        g.Vcpu.SetSregs(sregs);
        return g;
    }
}
