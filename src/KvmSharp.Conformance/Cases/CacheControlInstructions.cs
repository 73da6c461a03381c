// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// INVD, WBINVD and WBNOINVD at CPL 0 (Intel SDM Vol. 2A INVD/WBINVD, Vol. 2B WBNOINVD): KVM intercepts each and
/// skips it — x86.c kvm_emulate_invd "Treat an INVD instruction as a NOP", kvm_emulate_wbinvd (host caches only) —
/// so even INVD, which on bare metal may drop modified lines, leaves a store just made visible. SeaBIOS runs WBINVD
/// in its 32-bit init. (CPL 3: #GP(0), PrivilegeChecks.privileged_instructions_at_cpl_3_are_gp.)
/// </summary>
public static class CacheControlInstructions
{
    [ConformanceCase("x86.c kvm_emulate_invd / kvm_emulate_wbinvd (SDM Vol. 2A INVD, WBINVD; Vol. 2B WBNOINVD, F3 0F 09, which is WBINVD on a CPU without it): at CPL 0 each completes with no exception and no exit, RIP past it, and a store made just before INVD reads back")]
    public static void invd_and_wbinvd_are_skipped_at_cpl_0(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(rbx, IdtGuest.SpareGpa);
            a.mov(rax, 0x1122_3344_5566_7788);
            a.mov(__qword_ptr[rbx], rax);
            a.invd();
            a.mov(rcx, __qword_ptr[rbx]);  // = RAX: KVM's INVD drops nothing
            a.wbinvd();
            a.db(0xf3, 0x0f, 0x09);         // WBNOINVD
            a.mov(rdx, 0x5a5a);             // reached: every one of them went on to the next instruction
            a.hlt();
        }, [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))]);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        Assert.Empty(g.Deliveries);
        var r = g.Vcpu.GetRegs();
        Assert.Equal(0x1122_3344_5566_7788UL, r.rcx);
        Assert.Equal(0x5a5aUL, r.rdx);
    }
}
