// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// CMPS and SCAS with REPE/REPNE (Intel SDM Vol. 2A CMPS/CMPSB…, SCAS/SCASB…, REP/REPE/REPNE): where a REP stops,
/// rCX, rSI, rDI and the CMP flags it leaves, forwards and with DF set. The real CPU runs them; the emulator's
/// interpreter (emulate.c em_cmp in the string loop) must leave the same state.
/// </summary>
public static class StringCompares
{
    private const ulong A = 0x18_0000, B = 0x18_0100, Results = 0x18_0200;

    // ZF, CF, SF of RFLAGS: the flags a compare decides here.
    private const ulong Zf = 1 << 6, Cf = 1, Sf = 1 << 7, Flags = Zf | Cf | Sf;

    /// <summary>Stores rCX, rSI, rDI and RFLAGS after test <paramref name="n"/> into the results (4 qwords per test).</summary>
    private static void Save(Assembler a, int n)
    {
        ulong at = Results + (ulong)n * 32;
        a.pushfq();
        a.pop(rax);
        a.mov(__qword_ptr[at], rcx);
        a.mov(__qword_ptr[at + 8], rsi);
        a.mov(__qword_ptr[at + 16], rdi);
        a.mov(__qword_ptr[at + 24], rax);
    }

    private static (ulong Rcx, ulong Rsi, ulong Rdi, ulong Flags) Result(LongModeGuest g, int n)
    {
        ulong at = Results + (ulong)n * 32;
        return (g.Memory.Read<ulong>(at), g.Memory.Read<ulong>(at + 8), g.Memory.Read<ulong>(at + 16), g.Memory.Read<ulong>(at + 24) & Flags);
    }

    [ConformanceCase("Intel SDM Vol. 2A CMPS/SCAS with REPE/REPNE: stop on rCX = 0 or on the ZF condition; rSI/rDI step by DF")]
    public static void repe_and_repne_string_compares_stop_where_the_cpu_stops(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a =>
        {
            a.cld();
            a.mov(rax, 0x6867_6665_6463_6261L);           // "abcdefgh"
            a.mov(__qword_ptr[A], rax);
            a.mov(__qword_ptr[A + 8], rax);
            a.mov(rax, 0x6867_6658_6463_6261L);           // "abcdXfgh": differs at index 4
            a.mov(__qword_ptr[B], rax);
            a.mov(rax, 0x6867_6665_6463_6261L);
            a.mov(__qword_ptr[B + 8], rax);

            // 0: REPE CMPSB over 8 bytes stops after the mismatch at index 4 ('e' - 'X' = 0x0D: NZ, NC).
            a.mov(rsi, (long)A); a.mov(rdi, (long)B); a.mov(ecx, 8);
            a.repe.cmpsb();
            Save(a, 0);
            // 1: REPNE SCASB for 'f' finds it at index 5.
            a.mov(al, (byte)'f'); a.mov(rdi, (long)A); a.mov(ecx, 8);
            a.repne.scasb();
            Save(a, 1);
            // 2: REPE CMPSQ over two equal qwords runs rCX out with ZF set.
            a.mov(rsi, (long)(A + 8)); a.mov(rdi, (long)(B + 8)); a.mov(ecx, 1);
            a.repe.cmpsq();
            Save(a, 2);
            // 3: DF set, REPNE SCASW backwards from "gh" for "ab" (0x6261): four steps, found at A.
            a.std();
            a.mov(ax, 0x6261); a.mov(rdi, (long)(A + 6)); a.mov(ecx, 10);
            a.repne.scasw();
            Save(a, 3);
            a.cld();
            // 4: SCASD without REP: EAX "abcd" against "abcd" sets ZF, RDI += 4, RCX untouched.
            a.mov(eax, 0x6463_6261); a.mov(rdi, (long)A); a.mov(ecx, 77);
            a.scasd();
            Save(a, 4);
            // 5: REPNE SCASB with RCX = 0 compares nothing: the flags of the XOR before it stay (ZF set).
            a.mov(rdi, (long)A); a.xor(ecx, ecx); a.mov(al, (byte)'z');
            a.repne.scasb();
            Save(a, 5);
            // 6: CMPSB without REP, 'a' (0x61) against 'b' (0x62): borrow and sign (CF, SF), one step each.
            a.mov(rsi, (long)A); a.mov(rdi, (long)(B + 1)); a.mov(ecx, 5);
            a.cmpsb();
            Save(a, 6);
            a.hlt();
        });
        g.IdentityMap(A);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"expected HLT, got {exit.ToString()}");

        Assert.Equal((3UL, A + 5, B + 5, 0UL), Result(g, 0));
        Assert.Equal((2UL, 0UL, A + 6, Zf), Result(g, 1) with { Rsi = 0 });
        Assert.Equal((0UL, A + 16, B + 16, Zf), Result(g, 2));
        Assert.Equal((6UL, 0UL, A - 2, Zf), Result(g, 3) with { Rsi = 0 });
        Assert.Equal((77UL, 0UL, A + 4, Zf), Result(g, 4) with { Rsi = 0 });
        Assert.Equal((0UL, 0UL, A, Zf), Result(g, 5) with { Rsi = 0 });
        Assert.Equal((5UL, A + 1, B + 2, Cf | Sf), Result(g, 6));
    }

    [ConformanceCase("Intel SDM Vol. 2A REP STOS, REPE/REPNE SCAS over several pages: unaligned starts, an element across a page boundary, a stop on a later page")]
    public static void long_string_operations_cross_pages_like_the_cpu(CaseContext ctx)
    {
        const ulong Fill = 0x18_1000 - 4;            // the first qword straddles a page boundary
        const ulong Pattern = 0x5A5A_5A5A_5A5A_5A5AL;
        const ulong Odd = 0x18_2345;                 // one byte that differs, on the second page after Fill's
        const ulong Dword = 0x18_3004;               // a dword to find, on the third
        const int Qwords = 3 * 512 + 1;
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a =>
        {
            a.cld();
            // 0: REP STOSQ of 3 pages + 8 bytes from 4 bytes before a page boundary.
            a.mov(rax, unchecked((long)Pattern)); a.mov(rdi, (long)Fill); a.mov(ecx, Qwords);
            a.rep.stosq();
            Save(a, 0);
            a.mov(__byte_ptr[Odd], 0x11);
            a.mov(__dword_ptr[Dword], 0x1234_5678);
            // 1: REPE SCASB over everything stops just past the odd byte ('Z' - 0x11: NZ, NC, positive).
            a.mov(al, 0x5A); a.mov(rdi, (long)Fill); a.mov(rcx, (long)(Qwords * 8));
            a.repe.scasb();
            Save(a, 1);
            // 2: REPNE SCASD from the odd byte's dword-aligned neighbourhood finds the dword on the next page.
            a.mov(eax, 0x1234_5678); a.mov(rdi, (long)(Odd - 1)); a.mov(ecx, 4096);
            a.repne.scasd();
            Save(a, 2);
            a.hlt();
        });
        for (ulong page = 0x18_0000; page <= 0x18_4000; page += 0x1000) g.IdentityMap(page);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"expected HLT, got {exit.ToString()}");

        Assert.Equal((0UL, Fill + Qwords * 8), (Result(g, 0).Rcx, Result(g, 0).Rdi));
        Assert.Equal(Pattern, g.Memory.Read<ulong>(Fill));
        Assert.Equal(Pattern, g.Memory.Read<ulong>(Fill + (Qwords - 1) * 8));
        ulong scanned = Odd - Fill + 1;
        Assert.Equal(((ulong)Qwords * 8 - scanned, Odd + 1, 0UL), (Result(g, 1).Rcx, Result(g, 1).Rdi, Result(g, 1).Flags));
        ulong dwords = (Dword - (Odd - 1)) / 4 + 1;
        Assert.Equal((4096 - dwords, Dword + 4, Zf), (Result(g, 2).Rcx, Result(g, 2).Rdi, Result(g, 2).Flags));
    }
}
