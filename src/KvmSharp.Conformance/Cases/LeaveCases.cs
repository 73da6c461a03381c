// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// LEAVE (Intel SDM Vol. 2A "LEAVE—High Level Procedure Exit"): RSP ← RBP, then RBP ← Pop() — the frame gcc builds for
/// a function that realigns its stack (push rbp; mov rbp, rsp; and rsp, -32; sub rsp, n … leave; ret), as its -O3
/// -march=x86-64-v3 code does for 32-byte spills. Runs natively on both kernels.
/// </summary>
public static class LeaveCases
{
    [ConformanceCase("Intel SDM Vol. 2A LEAVE (64-bit operand size, and the 16-bit 66h form): RSP = the frame pointer + 8 (+ 2), RBP = the saved value, after a realigned frame")]
    public static void leave_restores_the_stack_and_frame_pointers(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(rcx, rsp);
            a.mov(rbp, 0x1234_5678_9abc_def0);
            a.push(rbp);
            a.mov(rbp, rsp);
            a.and(rsp, -32);
            a.sub(rsp, 0x220);
            a.mov(__qword_ptr[rsp], rcx); // a spill in the realigned frame
            a.leave();
            a.mov(rdx, rsp);             // = RCX
            a.mov(rsi, rbp);             // = the saved 0x123456789abcdef0
            a.mov(rbp, 0x4444);
            a.push(bp);                  // a 16-bit frame: push bp; mov bp, sp; leave (66h): SP += 2, BP = 0x4444
            a.mov(rbp, rsp);
            a.sub(rsp, 0x10);
            a.db(0x66, 0xc9);            // leave with a 16-bit operand size
            a.mov(rdi, rsp);             // = RCX
            a.hlt();
        }, [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))]);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        Assert.Empty(g.Deliveries);
        var r = g.Vcpu.GetRegs();
        Assert.Equal(r.rcx, r.rdx);
        Assert.Equal(0x1234_5678_9abc_def0UL, r.rsi);
        Assert.Equal(r.rcx, r.rdi);
        Assert.Equal(((r.rcx - 2) & ~0xffffUL) | 0x4444, r.rbp); // a 16-bit pop writes BP only
    }
}
