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
}
