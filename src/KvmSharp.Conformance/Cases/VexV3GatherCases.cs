// SPDX-License-Identifier: MIT
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.Cases.SimdSteps;
using Step = KvmSharp.Conformance.Cases.SimdSteps.YmmStep;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The rest of x86-64-v3 that gcc -O3 -march=x86-64-v3 emits for ordinary loops (table lookups, conditional loads
/// and stores, complex multiplies, in-lane permutes): the AVX2 gathers, VMASKMOVPS/PD and VPMASKMOVD/Q, VFMADDSUB and
/// VFMSUBADD, VPERMILPS/PD, against this host's CPU — the gathers and masked moves through the digests of
/// tests/KvmSharp.Conformance.Tests/Oracles/v3_gather_maskmov.c (which V3GatherOracleTests reruns on the test host),
/// the rest through System.Runtime.Intrinsics (Fma, Avx). kvm_pvm decodes no VEX
/// (<see cref="ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator"/>): its KVM_EXIT_INTERNAL_ERROR is asserted there.
/// </summary>
public static class VexV3GatherCases
{
    private const ulong In = 0x9_0000, Out = 0xC_0000, Table = 0xA_0000;
    private const ulong CR4_OSXSAVE = 1 << 18;
    private const int Rounds = 16, InBytes = 160, OutBytes = 64;

    /// <summary>Oracles/v3_gather_maskmov.c's output on the AMD EPYC test host (V3GatherOracleTests recomputes it).</summary>
    public static IReadOnlyList<(string Name, ulong Digest)> OracleDigests { get; } =
    [
        ("vpgatherddy", 0xAF5876BB6D9A88FBUL),
        ("vpgatherddx", 0x961B7FA805D5EB9DUL),
        ("vgatherdpsy", 0x0FE7351D933BE12EUL),
        ("vpgatherdqy", 0x3EF30D7D2E36BD5AUL),
        ("vgatherdpdx", 0x1F89CF7905FC5EE3UL),
        ("vpgatherqdy", 0xBABC2B5B3895EA50UL),
        ("vgatherqpsx", 0x31B8BCD3F4F72223UL),
        ("vpgatherqqy", 0x983C6A757053BC24UL),
        ("vgatherqpdx", 0x65579F97C7791886UL),
        ("vgatherqpdy", 0x58C0557FEDF4B7B0UL),
        ("vmaskmovpsly", 0x3051817983244BE7UL),
        ("vmaskmovpdlx", 0x3E20E1D08D0FFDA4UL),
        ("vpmaskmovdly", 0x6EEBA86C33DE0C7BUL),
        ("vpmaskmovqlx", 0xA2776800C8DF1DC0UL),
        ("vmaskmovpssy", 0xA18DFC6B6211194CUL),
        ("vmaskmovpdsy", 0x43A7F889381C32EFUL),
        ("vpmaskmovdsx", 0xE52D90F71D63524EUL),
        ("vpmaskmovqsy", 0xD2E1D523CF181E3EUL),
    ];

    private enum Form { Gather32, Gather64, Load, Store }

    /// <summary>The probe's variants in its order: the instruction as the guest emits it (YMM2 dest, YMM1 index, YMM3 mask, R8 base).</summary>
    private static readonly (string Name, Form Form, Action<Assembler> Emit)[] Variants =
    [
        ("vpgatherddy", Form.Gather32, a => a.vpgatherdd(ymm2, __[r8 + ymm1 * 4], ymm3)),
        ("vpgatherddx", Form.Gather32, a => a.vpgatherdd(xmm2, __[r8 + xmm1 * 2 + 16], xmm3)),
        ("vgatherdpsy", Form.Gather32, a => a.vgatherdps(ymm2, __[r8 + ymm1 * 4], ymm3)),
        ("vpgatherdqy", Form.Gather32, a => a.vpgatherdq(ymm2, __[r8 + xmm1 * 8], ymm3)),
        ("vgatherdpdx", Form.Gather32, a => a.vgatherdpd(xmm2, __[r8 + xmm1 * 8 - 8], xmm3)),
        ("vpgatherqdy", Form.Gather64, a => a.vpgatherqd(xmm2, __[r8 + ymm1 * 4], xmm3)),
        ("vgatherqpsx", Form.Gather64, a => a.vgatherqps(xmm2, __[r8 + xmm1 * 4], xmm3)),
        ("vpgatherqqy", Form.Gather64, a => a.vpgatherqq(ymm2, __[r8 + ymm1 * 8], ymm3)),
        ("vgatherqpdx", Form.Gather64, a => a.vgatherqpd(xmm2, __[r8 + xmm1 + 8], xmm3)),
        ("vgatherqpdy", Form.Gather64, a => a.vgatherqpd(ymm2, __[r8 + ymm1 * 8], ymm3)),
        ("vmaskmovpsly", Form.Load, a => a.vmaskmovps(ymm2, ymm3, __[r8])),
        ("vmaskmovpdlx", Form.Load, a => a.vmaskmovpd(xmm2, xmm3, __[r8])),
        ("vpmaskmovdly", Form.Load, a => a.vpmaskmovd(ymm2, ymm3, __[r8])),
        ("vpmaskmovqlx", Form.Load, a => a.vpmaskmovq(xmm2, xmm3, __[r8])),
        ("vmaskmovpssy", Form.Store, a => a.vmaskmovps(__[r8], ymm3, ymm2)),
        ("vmaskmovpdsy", Form.Store, a => a.vmaskmovpd(__[r8], ymm3, ymm2)),
        ("vpmaskmovdsx", Form.Store, a => a.vpmaskmovd(__[r8], xmm3, xmm2)),
        ("vpmaskmovqsy", Form.Store, a => a.vpmaskmovq(__[r8], ymm3, ymm2)),
    ];

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>The kernel's supported CPUID with CPUID.1 ECX SSE3/SSSE3/FMA/SSE4.1/SSE4.2/XSAVE/AVX and CPUID.7.0 EBX AVX2.</summary>
    private static CpuidEntry[] FeatureTable(Kvm kvm) =>
    [
        .. kvm.GetSupportedCpuid().Select(e => e.Function switch
        {
            1 => e with { Ecx = e.Ecx | 1u | (1u << 9) | (1u << 12) | (1u << 19) | (1u << 20) | (1u << 26) | (1u << 28) },
            7 when e.Index == 0 => e with { Ebx = e.Ebx | (1u << 5) },
            _ => e,
        }),
    ];

    /// <summary>One round's 160 input bytes as the probe draws them: DEST, the index (IDX32 or IDX64), MASK, MEM.</summary>
    private static byte[] Draw(int variant, int round, Form form)
    {
        var r = new ProbeDigests.Xorshift((ulong)(variant * 1000 + round + 1));
        byte[] b = new byte[InBytes];
        var span = b.AsSpan();
        for (int k = 0; k < 4; k++) BitConverter.TryWriteBytes(span[(8 * k)..], r.Next());
        int[] idx32 = [.. Enumerable.Range(0, 8).Select(_ => (int)(r.Next() % 120) - 60)];
        long[] idx64 = [.. Enumerable.Range(0, 4).Select(_ => (long)(r.Next() % 120) - 60)];
        for (int k = 0; k < 8; k++) BitConverter.TryWriteBytes(span[(32 + 4 * k)..], idx32[k]);
        if (form == Form.Gather64)
            for (int k = 0; k < 4; k++) BitConverter.TryWriteBytes(span[(32 + 8 * k)..], idx64[k]);
        for (int k = 0; k < 8; k++) BitConverter.TryWriteBytes(span[(64 + 4 * k)..], (uint)r.Next());
        for (int k = 0; k < 4; k++) BitConverter.TryWriteBytes(span[(96 + 8 * k)..], r.Next());
        return b;
    }

    [ConformanceCase("Intel SDM Vol. 2 VPGATHERDD/DQ/QD/QQ, VGATHERDPS/DPD/QPS/QPD (VSIB scales 1-8, displacements, xmm and ymm; the mask cleared) and VMASKMOVPS/PD, VPMASKMOVD/Q loads and stores: results as this CPU computes them (digests of Oracles/v3_gather_maskmov.c)")]
    public static void gathers_and_masked_moves_match_the_cpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        int steps = Variants.Length * Rounds;
        using var g = IdtGuest.Create(kvm, a =>
        {
            for (int s = 0; s < steps; s++)
            {
                var (_, form, emit) = Variants[s / Rounds];
                ulong at = In + (ulong)(s * InBytes), to = Out + (ulong)(s * OutBytes);
                a.vmovdqu(ymm2, __ymmword_ptr[at]);
                a.vmovdqu(ymm1, __ymmword_ptr[at + 32]);
                a.vmovdqu(ymm3, __ymmword_ptr[at + 64]);
                a.mov(r8, (long)(form is Form.Load or Form.Store ? at + 96 : Table + 512));
                emit(a);
                if (form == Form.Store)
                {
                    a.vmovdqu(ymm4, __ymmword_ptr[at + 96]);
                    a.vmovdqu(__ymmword_ptr[to], ymm4);
                    a.vmovdqu(__ymmword_ptr[to + 32], ymm2);
                }
                else
                {
                    a.vmovdqu(__ymmword_ptr[to], ymm2);
                    if (form != Form.Load) a.vmovdqu(__ymmword_ptr[to + 32], ymm3);
                }
            }
            a.hlt();
        }, Halting);
        Prepare(kvm, g);
        var table = new ProbeDigests.Xorshift(99);
        for (int k = 0; k < 128; k++) g.Guest.Memory.Write(Table + (ulong)(8 * k), table.Next());
        for (int s = 0; s < steps; s++)
        {
            g.Guest.Memory.Write(In + (ulong)(s * InBytes), Draw(s / Rounds, s % Rounds, Variants[s / Rounds].Form));
            g.Guest.Memory.Write(Out + (ulong)(s * OutBytes), new byte[OutBytes]);
        }
        var exit = g.Vcpu.Run();
        if (HostCannotRun(ctx, g, exit.Reason)) return;
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        Assert.Empty(g.Deliveries);
        ProbeDigests.AssertMatch(g, Out, OutBytes, OutBytes, Rounds, [.. Variants.Select(v => v.Name)], OracleDigests);
    }

    [ConformanceCase("Intel SDM Vol. 2 VPGATHERDD: #UD when any two of the destination, index and mask registers are the same (the registers unchanged)")]
    public static void a_gather_with_overlapping_registers_is_ud(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(r8, (long)Table);
            a.vpcmpeqd(ymm3, ymm3, ymm3);
            a.vpxor(ymm1, ymm1, ymm1);
            a.vpgatherdd(ymm2, __[r8 + ymm2 * 4], ymm3); // destination = index
            a.hlt();
        }, Halting);
        Prepare(kvm, g);
        var exit = g.Vcpu.Run();
        if (HostCannotRun(ctx, g, exit.Reason)) return;
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        Assert.Equal([6UL], g.Deliveries.Select(d => d.Vector)); // #UD
    }

    [ConformanceCase("Intel SDM Vol. 2 VMASKMOV/VPMASKMOV: \"Faults occur only due to mask-bit required memory accesses\": a masked load and a masked store whose masked-off elements lie in a not-present page do not fault (the load zeroes them, the store leaves them), where an unmasked load of the same bytes is #PF")]
    public static void masked_moves_do_not_fault_on_masked_off_elements(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Edge = LongModeGuest.MemorySize - 16; // the last 16 bytes of the identity map, then a not-present page
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(r8, (long)Edge);
            a.vmovdqu(ymm3, __ymmword_ptr[In]);      // mask: dwords 0-3 selected, 4-7 not
            a.vmovdqu(ymm4, __ymmword_ptr[In + 32]); // the store's data
            a.vpcmpeqd(ymm2, ymm2, ymm2);
            a.vpmaskmovd(ymm2, ymm3, __[r8]);
            a.vmovdqu(__ymmword_ptr[Out], ymm2);
            a.vmaskmovps(__[r8], ymm3, ymm4);
            a.vmovdqu(xmm5, __xmmword_ptr[r8]);
            a.vmovdqu(__xmmword_ptr[Out + 32], xmm5);
            a.vmovdqu(ymm5, __[r8]);                  // unmasked: #PF at the next page
            a.hlt();
        }, Halting);
        Prepare(kvm, g);
        byte[] mask = new byte[32], data = new byte[32], old = new byte[16];
        for (int k = 0; k < 4; k++) mask[4 * k + 3] = 0x80;
        for (int k = 0; k < 32; k++) data[k] = (byte)(0xa0 + k);
        for (int k = 0; k < 16; k++) old[k] = (byte)(0x10 + k);
        g.Guest.Memory.Write(In, mask);
        g.Guest.Memory.Write(In + 32, data);
        g.Guest.Memory.Write(Edge, old);
        var exit = g.Vcpu.Run();
        if (HostCannotRun(ctx, g, exit.Reason)) return;
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        var d = Assert.Single(g.Deliveries);
        Assert.Equal(14UL, d.Vector); // #PF from the unmasked load only
        Assert.Equal(LongModeGuest.MemorySize, d.Cr2);
        byte[] loaded = new byte[32], stored = new byte[16];
        g.Guest.Memory.Read(Out, loaded);
        g.Guest.Memory.Read(Out + 32, stored);
        Assert.Equal([.. old, .. new byte[16]], loaded);
        Assert.Equal(data[..16], stored);
    }

    [ConformanceCase("Intel SDM Vol. 2 VFMADDSUB132/213/231PS/PD and VFMSUBADD132/213/231PS/PD (VEX.128/256: even elements subtract, odd add, one rounding) and VPERMILPS/PD (imm8 and variable, in-lane): results as this CPU computes them")]
    public static void fmaddsub_and_vpermil_match_the_cpu(CaseContext ctx)
    {
        if (!Fma.IsSupported) return; // no oracle on this host
        var steps = new List<Step>();
        for (int seed = 1; seed <= 4; seed++)
        {
            var rng = new Random(seed);
            float F() => (float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-30, 30)));
            double D() => (rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-200, 200));
            var x = Vector256.Create([.. Enumerable.Range(0, 8).Select(_ => F())]);
            var y = Vector256.Create([.. Enumerable.Range(0, 8).Select(_ => F())]);
            var z = Vector256.Create([.. Enumerable.Range(0, 8).Select(_ => F())]);
            if (seed == 4) z = Vector256.Create(1e-3f, float.PositiveInfinity, float.NaN, -0f, 3e38f, 1e-45f, -1f, 0f);
            var dx = Vector256.Create(D(), D(), D(), D());
            var dy = Vector256.Create(D(), D(), D(), D());
            var dz = Vector256.Create(D(), D(), D(), D());
            // dest = YMM2 (x), src2 = YMM1 (y), src3 = [rbx + 32] (z): 132 x*z±y, 213 y*x±z, 231 y*z±x.
            steps.Add(new($"vfmaddsub132ps ymm {seed}", x.AsByte(), y.AsByte(), a => a.vfmaddsub132ps(ymm2, ymm1, __ymmword_ptr[rbx + 32]), Fma.MultiplyAddSubtract(x, z, y).AsByte(), z.AsByte()));
            steps.Add(new($"vfmaddsub213ps xmm {seed}", x.AsByte(), y.AsByte(), a => a.vfmaddsub213ps(xmm2, xmm1, __xmmword_ptr[rbx + 32]), Vector256.Create(Fma.MultiplyAddSubtract(y.GetLower(), x.GetLower(), z.GetLower()).AsByte(), Vector128<byte>.Zero), z.AsByte()));
            steps.Add(new($"vfmaddsub231ps ymm {seed}", x.AsByte(), y.AsByte(), a => { a.vmovups(ymm0, __ymmword_ptr[rbx + 32]); a.vfmaddsub231ps(ymm2, ymm1, ymm0); }, Fma.MultiplyAddSubtract(y, z, x).AsByte(), z.AsByte()));
            steps.Add(new($"vfmsubadd132ps ymm {seed}", x.AsByte(), y.AsByte(), a => a.vfmsubadd132ps(ymm2, ymm1, __ymmword_ptr[rbx + 32]), Fma.MultiplySubtractAdd(x, z, y).AsByte(), z.AsByte()));
            steps.Add(new($"vfmsubadd213ps ymm {seed}", x.AsByte(), y.AsByte(), a => a.vfmsubadd213ps(ymm2, ymm1, __ymmword_ptr[rbx + 32]), Fma.MultiplySubtractAdd(y, x, z).AsByte(), z.AsByte()));
            steps.Add(new($"vfmsubadd231ps xmm {seed}", x.AsByte(), y.AsByte(), a => a.vfmsubadd231ps(xmm2, xmm1, __xmmword_ptr[rbx + 32]), Vector256.Create(Fma.MultiplySubtractAdd(y.GetLower(), z.GetLower(), x.GetLower()).AsByte(), Vector128<byte>.Zero), z.AsByte()));
            steps.Add(new($"vfmaddsub132pd ymm {seed}", dx.AsByte(), dy.AsByte(), a => a.vfmaddsub132pd(ymm2, ymm1, __ymmword_ptr[rbx + 32]), Fma.MultiplyAddSubtract(dx, dz, dy).AsByte(), dz.AsByte()));
            steps.Add(new($"vfmaddsub213pd ymm {seed}", dx.AsByte(), dy.AsByte(), a => a.vfmaddsub213pd(ymm2, ymm1, __ymmword_ptr[rbx + 32]), Fma.MultiplyAddSubtract(dy, dx, dz).AsByte(), dz.AsByte()));
            steps.Add(new($"vfmaddsub231pd xmm {seed}", dx.AsByte(), dy.AsByte(), a => a.vfmaddsub231pd(xmm2, xmm1, __xmmword_ptr[rbx + 32]), Vector256.Create(Fma.MultiplyAddSubtract(dy.GetLower(), dz.GetLower(), dx.GetLower()).AsByte(), Vector128<byte>.Zero), dz.AsByte()));
            steps.Add(new($"vfmsubadd132pd xmm {seed}", dx.AsByte(), dy.AsByte(), a => a.vfmsubadd132pd(xmm2, xmm1, __xmmword_ptr[rbx + 32]), Vector256.Create(Fma.MultiplySubtractAdd(dx.GetLower(), dz.GetLower(), dy.GetLower()).AsByte(), Vector128<byte>.Zero), dz.AsByte()));
            steps.Add(new($"vfmsubadd213pd ymm {seed}", dx.AsByte(), dy.AsByte(), a => a.vfmsubadd213pd(ymm2, ymm1, __ymmword_ptr[rbx + 32]), Fma.MultiplySubtractAdd(dy, dx, dz).AsByte(), dz.AsByte()));
            steps.Add(new($"vfmsubadd231pd ymm {seed}", dx.AsByte(), dy.AsByte(), a => a.vfmsubadd231pd(ymm2, ymm1, __ymmword_ptr[rbx + 32]), Fma.MultiplySubtractAdd(dy, dz, dx).AsByte(), dz.AsByte()));
            byte imm = (byte)rng.Next(256);
            var sel = Vector256.Create([.. Enumerable.Range(0, 8).Select(_ => rng.Next())]);
            var qsel = Vector256.Create([.. Enumerable.Range(0, 4).Select(_ => (long)rng.Next() << 1 | (long)rng.Next(2))]);
            // The immediate forms' expected values through the CPU's variable forms (Avx.Permute wants a constant imm8).
            var immSel = Vector256.Create([.. Enumerable.Range(0, 8).Select(k => imm >> (2 * (k % 4)) & 3)]);
            var immQsel = Vector256.Create([.. Enumerable.Range(0, 4).Select(k => (long)(imm >> k & 1) << 1)]);
            steps.Add(S($"vpermilps ymm imm {seed}", x, y, a => a.vpermilps(ymm2, ymm1, imm), Avx.PermuteVar(y, immSel)));
            steps.Add(S128($"vpermilps xmm m128 imm {seed}", x, y, a => a.vpermilps(xmm2, __xmmword_ptr[rbx], imm), Avx.PermuteVar(y.GetLower(), immSel.GetLower())));
            steps.Add(S($"vpermilpd ymm imm {seed}", dx, dy, a => a.vpermilpd(ymm2, ymm1, imm), Avx.PermuteVar(dy, immQsel)));
            steps.Add(new($"vpermilps ymm var {seed}", x.AsByte(), y.AsByte(), a => a.vpermilps(ymm2, ymm1, __ymmword_ptr[rbx + 32]), Avx.PermuteVar(y, sel).AsByte(), sel.AsByte()));
            steps.Add(new($"vpermilpd ymm var {seed}", dx.AsByte(), dy.AsByte(), a => a.vpermilpd(ymm2, ymm1, __ymmword_ptr[rbx + 32]), Avx.PermuteVar(dy, qsel).AsByte(), qsel.AsByte()));
            steps.Add(new($"vpermilpd xmm var {seed}", dx.AsByte(), dy.AsByte(), a => { a.vmovdqu(ymm0, __ymmword_ptr[rbx + 32]); a.vpermilpd(xmm2, xmm1, xmm0); }, Vector256.Create(Avx.PermuteVar(dy.GetLower(), qsel.GetLower()).AsByte(), Vector128<byte>.Zero), qsel.AsByte()));
        }
        using var kvm = ctx.OpenKvm();
        var all = steps.ToArray();
        using var g = IdtGuest.Create(kvm, a =>
        {
            EmitSteps(a, In, Out, all);
            a.hlt();
        }, Halting);
        Prepare(kvm, g);
        RunAndCompare(ctx, g, In, Out, all);
    }

    /// <summary>CPUID with AVX2/FMA, CR4.OSXSAVE, XCR0 = x87|SSE|AVX.</summary>
    private static void Prepare(Kvm kvm, IdtGuest g)
    {
        g.Vcpu.SetCpuid(FeatureTable(kvm));
        var s = g.Vcpu.GetSregs();
        s.cr4 |= CR4_OSXSAVE;
        g.Vcpu.SetSregs(s);
        g.Vcpu.SetXcr0(7);
    }
}
