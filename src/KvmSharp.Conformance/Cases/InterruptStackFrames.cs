// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Where a 64-bit exception frame goes (Intel SDM Vol. 3A 6.14.2 "64-Bit Mode Stack Frame", 6.14.5 "Interrupt Stack
/// Table"; AMD APM Vol. 2 8.9.3): the new RSP is aligned down to 16 bytes before SS, RSP, RFLAGS, CS and RIP are
/// pushed, and a gate with a non-zero IST index switches to that TSS.IST entry even without a privilege change.
/// Ported from tests/KvmSharp.Emulation.Tests/ExceptionDeliveryTests.cs (An_ist_gate_switches_to_the_tss_stack), which
/// checked the emulator only.
/// </summary>
public static class InterruptStackFrames
{
    private const int UdVector = 6;
    private const ulong IstTop = 0x8_a000;
    private const ulong FrameBytes = 5 * 8;

    [ConformanceCase("Intel SDM Vol. 3A 6.14.2: in 64-bit mode the CPU aligns RSP to 16 bytes before pushing the frame; the frame's RSP is the " +
                     "unaligned one and IRETQ restores it")]
    public static void the_frame_is_pushed_on_a_16_byte_aligned_stack(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.and(rsp, -16);
            a.sub(rsp, 8);
            a.ud2();
            a.mov(rax, rsp);
            a.hlt();
        }, [new IdtVector(UdVector, ResumeSkip: 2)]);
        ulong start = g.Vcpu.GetRegs().rsp;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        ulong interrupted = (start & ~0xfUL) - 8;
        Assert.Equal(((ulong)UdVector, interrupted, (interrupted & ~0xfUL) - FrameBytes), (d.Vector, d.Rsp, d.HandlerRsp));
        // IRETQ put the unaligned RSP back.
        Assert.Equal(interrupted, g.Vcpu.GetRegs().rax);
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.14.5: a gate with IST = 1 switches to TSS.IST1 at the same privilege level (the frame is pushed below " +
                     "it, holding the interrupted RSP and SS); a gate with IST = 0 keeps the current stack")]
    public static void an_ist_gate_switches_to_the_tss_stack(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.ud2();
            a.hlt();
        }, [new IdtVector(UdVector)]);
        var mem = g.Guest.Memory;
        // TSS.IST1 (offset 0x24) and the gate's IST field (bits 34:32 of its low quadword).
        mem.Write(Layout.Tss + 0x24, IstTop);
        ulong gate = IdtGuest.IdtGpa + UdVector * 16;
        mem.Write(gate, mem.Read<ulong>(gate) | (1UL << 32));
        var sregs = g.Vcpu.GetSregs();
        sregs.tr = Gdt.TaskState;
        g.Vcpu.SetSregs(sregs);
        var regs = g.Vcpu.GetRegs();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        Assert.Equal(((ulong)UdVector, LongModeGuest.CodeGpa, regs.rsp, IstTop - FrameBytes),
            (d.Vector, d.Rip, d.Rsp, d.HandlerRsp));
        Assert.Equal((ulong)sregs.ss.selector, d.Ss);
    }
}
