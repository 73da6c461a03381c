// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// RDRAND and RDSEED in a 64-bit guest: 64-, 32- and 16-bit destinations, CF = 1 for a valid value with OF, SF, ZF,
/// AF and PF cleared (Intel SDM Vol. 2B RDRAND/RDSEED), two draws that differ. Upstream on SVM cannot intercept
/// either instruction (the VMCB has no such intercept; only vmx.c has RDRAND/RDSEED exiting), so the CPU runs them
/// whatever the guest's CPUID table says; kvm_pvm runs them natively too. OVMF 2025.02's SEC uses RDRAND.
/// </summary>
public static class RandomNumberInstructions
{
    private const uint RdrandBit = 1u << 30, RdseedBit = 1u << 18;
    private const ulong Arith = 0x8d5; // OF | SF | ZF | AF | PF | CF
    private const ulong Cf = 1;

    /// <summary>
    /// One draw into RBX, tried up to 100 times while CF = 0 (hardware may run dry; R15 counts draws that never got a
    /// value), each try with every arithmetic flag but CF set first; RFLAGS after the valid draw goes to
    /// <paramref name="flagsTo"/>.
    /// </summary>
    private static void Draw(Assembler a, Action<Assembler> instruction, AssemblerRegister64? flagsTo)
    {
        var retry = a.CreateLabel();
        var ok = a.CreateLabel();
        a.mov(r14d, 100);
        a.Label(ref retry);
        a.push((int)(Arith & ~Cf));
        a.popfq();
        instruction(a);
        a.jc(ok);
        a.dec(r14d);
        a.jnz(retry);
        a.inc(r15);
        a.Label(ref ok);
        if (flagsTo is { } to)
        {
            a.pushfq();
            a.pop(to);
        }
    }

    /// <summary>
    /// R8, R10 = two RDRAND r64; R9 = RFLAGS after the first; R11 = RDRAND r32 over all-ones; R12 = RDRAND r16 over
    /// all-ones; R13, RDI = two RDSEED r64, RSI = RFLAGS after the first; R15 = draws that never got a value; HLT.
    /// </summary>
    private static void Program(Assembler a)
    {
        a.xor(r15d, r15d);
        Draw(a, x => x.rdrand(rbx), r9);
        a.mov(r8, rbx);
        Draw(a, x => x.rdrand(rbx), null);
        a.mov(r10, rbx);
        a.mov(rbx, -1);
        Draw(a, x => x.rdrand(ebx), null);
        a.mov(r11, rbx);
        a.mov(rbx, -1);
        Draw(a, x => x.rdrand(bx), null);
        a.mov(r12, rbx);
        Draw(a, x => x.rdseed(rbx), rsi);
        a.mov(r13, rbx);
        Draw(a, x => x.rdseed(rbx), null);
        a.mov(rdi, rbx);
        a.hlt();
    }

    [ConformanceCase("SDM Vol. 2B RDRAND/RDSEED; svm.c init_vmcb (no RDRAND/RDSEED intercept exists: the CPU runs them whatever the guest's CPUID says): random 64/32/16-bit values, CF = 1 with OF/SF/ZF/AF/PF cleared, with no CPUID table and with one that lacks both bits")]
    public static void rdrand_and_rdseed_return_random_values_whatever_cpuid_says(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (bool withTable in new[] { false, true })
        {
            using var g = IdtGuest.Create(kvm, Program, Enumerable.Range(0, 32).Select(v => new IdtVector(v)));
            if (withTable)
            {
                g.Vcpu.SetCpuid([.. kvm.GetSupportedCpuid().Select(e => e.Function switch
                {
                    1 => e with { Ecx = e.Ecx & ~RdrandBit },
                    7 when e.Index == 0 => e with { Ebx = e.Ebx & ~RdseedBit },
                    _ => e,
                })]);
            }
            string what = withTable ? "a table without RDRAND and RDSEED" : "no CPUID table";

            var exit = g.Vcpu.Run().Reason;
            var r = g.Vcpu.GetRegs();
            Assert.True(exit == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit} at RIP 0x{r.rip:X}, {string.Join("; ", g.Deliveries)}");
            Assert.Empty(g.Deliveries);
            Assert.Equal(0UL, r.r15);
            Assert.Equal(Cf, r.r9 & Arith);
            Assert.Equal(Cf, r.rsi & Arith);
            Assert.NotEqual(r.r8, r.r10);
            Assert.NotEqual(r.r13, r.rdi);
            Assert.Equal(0UL, r.r11 >> 32); // a 32-bit destination zero-extends
            Assert.Equal(0xffff_ffff_ffffUL, r.r12 >> 16); // a 16-bit one keeps bits 63:16
        }
    }
}
