// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// PTEST, VPTEST and VTESTPS/VTESTPD (Intel SDM Vol. 2B PTEST "Logical Compare"; Vol. 2C "VTESTPD/VTESTPS—Packed Bit
/// Test": ZF from SRC1 AND SRC2, CF from (NOT SRC1) AND SRC2 — all bits for PTEST, the elements' sign bits for VTEST;
/// AF, OF, PF, SF cleared; no register written) against this host's CPU through the digests of
/// tests/KvmSharp.Conformance.Tests/Oracles/v3_vtest.c (which SseSweepOracleTests reruns on the test host). kvm_pvm
/// decodes no VEX (<see cref="ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator"/>): its
/// KVM_EXIT_INTERNAL_ERROR is asserted there.
/// </summary>
public static class VexTestCases
{
    private const ulong In = 0x9_0000, Out = 0xC_0000;
    private const ulong CR4_OSXSAVE = 1 << 18;
    private const int Rounds = 64, InBytes = 96, OutBytes = 64, Digested = 36, SecondAt = 36;

    /// <summary>Oracles/v3_vtest.c's output on the AMD EPYC test host (SseSweepOracleTests recomputes it).</summary>
    public static IReadOnlyList<(string Name, ulong Digest)> OracleDigests { get; } =
    [
        ("ptest", 0xA6E91FAE30CC2176UL),
        ("vptestx", 0xA7E7978834E0B264UL),
        ("vptesty", 0xEBFCC7A821007022UL),
        ("vtestpsx", 0x4E5823879001BCEFUL),
        ("vtestpsy", 0xF8FA4741A9DF781DUL),
        ("vtestpdx", 0xEE7E740E7A25B101UL),
        ("vtestpdy", 0x20728B187504EB2AUL),
        ("vtestpsxm", 0xE504AA2526447ADCUL),
        ("vtestpsym", 0x17C56F6D593FBF38UL),
        ("vtestpdxm", 0x1940FB1D1F94201EUL),
        ("vtestpdym", 0x6D3C81DF5A0F848BUL),
    ];

    /// <summary>The probe's variants in its order: SRC1 = XMM2/YMM2, SRC2 = XMM1/YMM1 or the memory at R8 (unaligned).</summary>
    private static readonly (string Name, Action<Assembler> Emit)[] Variants =
    [
        ("ptest", a => a.ptest(xmm2, xmm1)),
        ("vptestx", a => a.vptest(xmm2, xmm1)),
        ("vptesty", a => a.vptest(ymm2, ymm1)),
        ("vtestpsx", a => a.vtestps(xmm2, xmm1)),
        ("vtestpsy", a => a.vtestps(ymm2, ymm1)),
        ("vtestpdx", a => a.vtestpd(xmm2, xmm1)),
        ("vtestpdy", a => a.vtestpd(ymm2, ymm1)),
        ("vtestpsxm", a => a.vtestps(xmm2, __xmmword_ptr[r8])),
        ("vtestpsym", a => a.vtestps(ymm2, __ymmword_ptr[r8])),
        ("vtestpdxm", a => a.vtestpd(xmm2, __xmmword_ptr[r8])),
        ("vtestpdym", a => a.vtestpd(ymm2, __ymmword_ptr[r8])),
    ];

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>One round's input block as the probe lays it out: A (32 bytes), 4 zero bytes, B (32 bytes).</summary>
    private static byte[] Draw(int variant, int round)
    {
        var r = new ProbeDigests.Xorshift((ulong)(variant * 1000 + round + 1));
        byte[] b = new byte[InBytes];
        for (int k = 0; k < 8; k++) BitConverter.TryWriteBytes(b.AsSpan((k < 4 ? 0 : SecondAt - 32) + 8 * k), r.Sparse(round));
        return b;
    }

    [ConformanceCase("Intel SDM Vol. 2B PTEST, Vol. 2C VTESTPS/VTESTPD (VEX.128/256, register and unaligned memory sources): ZF/CF as this CPU sets them, AF/OF/PF/SF cleared, no register written (digests of Oracles/v3_vtest.c)")]
    public static void ptest_and_vtest_flags_match_the_cpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        int steps = Variants.Length * Rounds;
        using var g = IdtGuest.Create(kvm, a =>
        {
            for (int s = 0; s < steps; s++)
            {
                ulong at = In + (ulong)(s * InBytes), to = Out + (ulong)(s * OutBytes);
                a.vmovdqu(ymm2, __ymmword_ptr[at]);
                a.vmovdqu(ymm1, __ymmword_ptr[at + SecondAt]);
                a.mov(r8, (long)(at + SecondAt));
                a.push(0x8d7);
                a.popfq();
                Variants[s / Rounds].Emit(a);
                a.pushfq();
                a.pop(rax);
                a.and(eax, 0x8d5);
                a.mov(__dword_ptr[to], eax);
                a.vmovdqu(__ymmword_ptr[to + 4], ymm2);
            }
            a.hlt();
        }, Halting);
        g.Vcpu.SetCpuid(FeatureTable(kvm));
        var sregs = g.Vcpu.GetSregs();
        sregs.cr4 |= CR4_OSXSAVE;
        g.Vcpu.SetSregs(sregs);
        g.Vcpu.SetXcr0(7);
        for (int s = 0; s < steps; s++)
        {
            g.Guest.Memory.Write(In + (ulong)(s * InBytes), Draw(s / Rounds, s % Rounds));
            g.Guest.Memory.Write(Out + (ulong)(s * OutBytes), new byte[OutBytes]);
        }
        var exit = g.Vcpu.Run();
        if (SimdSteps.HostCannotRun(ctx, g, exit.Reason)) return;
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        Assert.Empty(g.Deliveries);
        ProbeDigests.AssertMatch(g, Out, OutBytes, Digested, Rounds, [.. Variants.Select(v => v.Name)], OracleDigests);
    }

    /// <summary>The kernel's supported CPUID with CPUID.1 ECX SSE4.1/XSAVE/OSXSAVE/AVX.</summary>
    private static CpuidEntry[] FeatureTable(Kvm kvm) =>
    [
        .. kvm.GetSupportedCpuid().Select(e => e.Function == 1 ? e with { Ecx = e.Ecx | (1u << 19) | (1u << 26) | (1u << 28) } : e),
    ];
}
