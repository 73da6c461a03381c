// SPDX-License-Identifier: MIT
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
/// 6-5 and Interrupt 8; KVM_EXIT_SHUTDOWN). Each guest reports what its handler saw (<see cref="IdtGuest"/>).
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

    [ConformanceCase("Intel SDM Vol. 3A 6.15 Table 6-5 and Interrupt 8: #UD whose frame cannot be pushed (RSP on an unmapped page, no IST) raises #PF, " +
                     "whose frame cannot be pushed either: a page fault while delivering a page fault is #DF (error code 0, frame RIP on the UD2 and " +
                     "the unmapped RSP; CR2 on the unmapped stack page), delivered here on TSS.IST1; without IST for #DF it faults too: triple fault, KVM_EXIT_SHUTDOWN")]
    public static void unpushable_frame_is_a_double_fault_then_a_triple_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
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
            if (HostDeviations.KvmPvmDoubleFaultFromAFramePushLeavesCr2(ctx.Target.IsReal))
                Assert.True(d.Cr2 == Cr2Before, $"kvm_pvm: CR2 0x{d.Cr2:X}, expected it left at 0x{Cr2Before:X}");
            else
                Assert.True(d.Cr2 >= UnmappedStackTop - Layout.PageSize && d.Cr2 < UnmappedStackTop,
                    $"CR2 0x{d.Cr2:X} is not on the unmapped stack page below 0x{UnmappedStackTop:X}");
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
        }
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
