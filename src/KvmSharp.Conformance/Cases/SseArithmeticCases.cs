// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.Cases.SimdSteps;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// SSE/SSE2 floating point under MXCSR and the packed-integer SSE2/SSSE3 instructions compiled C uses (Intel SDM Vol. 1
/// ch. 4, 10, 11; Vol. 2 per instruction). The CPU is the oracle: the sweep's expected digests come from a C probe that
/// ran the same instructions on the same inputs on this machine's CPU (AMD EPYC, GCC inline assembly, one LDMXCSR
/// per input, see <see cref="SweepDigests"/>; the probe is tests/KvmSharp.Conformance.Tests/Oracles/sse_sweep.c, and
/// SseSweepOracleTests reruns it on every test host); the packed results are computed by this host's CPU through
/// System.Runtime.Intrinsics (default MXCSR). kvm_pvm cannot run these instructions in a guest
/// (<see cref="ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator"/>): there the real kernel's answer
/// (KVM_EXIT_INTERNAL_ERROR on the first one, no exception) is asserted as it is; upstream on VMX/SVM runs them natively.
/// </summary>
public static class SseArithmeticCases
{
    private const ulong In = 0x9_0000, Out = 0xC_0000, Data = 0x8_9000, Result = Data + 0x400;
    private const ulong CR4_OSXMMEXCPT = 1UL << 10;
    private const int UD = 6, XM = 19;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>binary64 inputs: zeros, ±1, fractions, near-overflow, min normal, denormals, ∞, QNaN/SNaN, 2^63 …</summary>
    private static readonly ulong[] Doubles =
    [
        0, 0x8000000000000000, 0x3ff0000000000000, 0xbff0000000000000, 0x3ff8000000000000, 0x4008000000000000,
        0x3fb999999999999a, 0xbfd5555555555555, 0x7fe1ccf385ebc8a0, 0xffe2f0fa2d1a7a74, 0x0010000000000000,
        0x000fffffffffffff, 0x0000000000000001, 0x8000000000000003, 0x7ff0000000000000, 0xfff0000000000000,
        0x7ff8000000000001, 0x7ff0000000000005, 0xfff8000000000002, 0x43e0000000000000, 0xc1e0000000100000,
        0x3ff0000000000001, 0x01a56e1fc2f8f359, 0x0018000000000000, 0x41dfffffffc00000, 0x7fefffffffffffff,
    ];

    /// <summary>binary32 inputs of the same kinds.</summary>
    private static readonly uint[] Singles =
    [
        0, 0x80000000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x40400000, 0x3dcccccd, 0xbeaaaaab, 0x7f61ccf4, 0xff7fffff,
        0x00800000, 0x007fffff, 0x00000001, 0x80000003, 0x7f800000, 0xff800000, 0x7fc00001, 0x7f800005, 0xffc00002,
        0x4f000000, 0xcf000001, 0x3f800001, 0x0da24260, 0x00c00000, 0x4effffff, 0x7f7fffff,
    ];

    /// <summary>MXCSR: all masked with RC nearest, down, up, toward zero; FTZ+DAZ; DAZ; FTZ.</summary>
    private static readonly uint[] Controls = [0x1f80, 0x3f80, 0x5f80, 0x7f80, 0x9fc0, 0x1fc0, 0x9f80];

    private enum Form { Binary, Unary, Compare, ToInteger, FromInteger }

    private sealed record SweepOp(string Name, bool Double, Form Form, Action<Assembler> Emit, ulong Digest);

    /// <summary>
    /// FNV-1a 64 of the 16-byte outputs (result qword, MXCSR after, RFLAGS &amp; 0x8d5 for the compares) of every input,
    /// in <see cref="Inputs"/> order, as the CPU produced them (C probe, Linux 6.18 host, AMD EPYC).
    /// </summary>
    private static readonly SweepOp[] SweepDigests =
    [
        new("addss", false, Form.Binary, a => a.addss(xmm0, xmm1), 0x29826417EE694B5BUL),
        new("subss", false, Form.Binary, a => a.subss(xmm0, xmm1), 0x3989FF2FB59758CDUL),
        new("mulss", false, Form.Binary, a => a.mulss(xmm0, xmm1), 0x659CED3203E33BECUL),
        new("divss", false, Form.Binary, a => a.divss(xmm0, xmm1), 0x2FA38A200674E116UL),
        new("minss", false, Form.Binary, a => a.minss(xmm0, xmm1), 0x300D2EF3EA9D78C6UL),
        new("maxss", false, Form.Binary, a => a.maxss(xmm0, xmm1), 0xBEE77402DC42A17EUL),
        new("sqrtss", false, Form.Unary, a => a.sqrtss(xmm0, xmm1), 0xD6F5742163F4ED34UL),
        new("addsd", true, Form.Binary, a => a.addsd(xmm0, xmm1), 0x217D066BCF4964D2UL),
        new("subsd", true, Form.Binary, a => a.subsd(xmm0, xmm1), 0xBBD077B3864ACBB9UL),
        new("mulsd", true, Form.Binary, a => a.mulsd(xmm0, xmm1), 0xB09B479D2F11FCBBUL),
        new("divsd", true, Form.Binary, a => a.divsd(xmm0, xmm1), 0x9A324E6B8CFF5726UL),
        new("minsd", true, Form.Binary, a => a.minsd(xmm0, xmm1), 0xDEDDF0F4FB86B602UL),
        new("maxsd", true, Form.Binary, a => a.maxsd(xmm0, xmm1), 0x6E707F83FD876602UL),
        new("sqrtsd", true, Form.Unary, a => a.sqrtsd(xmm0, xmm1), 0xDF7C11E1210C7117UL),
        new("cvtss2sd", false, Form.Unary, a => a.cvtss2sd(xmm0, xmm1), 0x59843581B37E6BAFUL),
        new("cvtsd2ss", true, Form.Unary, a => a.cvtsd2ss(xmm0, xmm1), 0x77423D502C706310UL),
        new("cvtsd2si64", true, Form.ToInteger, a => a.cvtsd2si(rax, xmm1), 0x4E75AD8391559D02UL),
        new("cvttsd2si32", true, Form.ToInteger, a => a.cvttsd2si(eax, xmm1), 0xB74EFBB1E1061C62UL),
        new("cvtss2si32", false, Form.ToInteger, a => a.cvtss2si(eax, xmm1), 0xA0BF94FD42F96CE8UL),
        new("cvttss2si64", false, Form.ToInteger, a => a.cvttss2si(rax, xmm1), 0x95416503DD90A517UL),
        new("cvtsi2sd64", true, Form.FromInteger, a => a.cvtsi2sd(xmm0, rax), 0x0B7DBDB91F1D149CUL),
        new("cvtsi2ss64", true, Form.FromInteger, a => a.cvtsi2ss(xmm0, rax), 0x4707D7E6A9664FCBUL),
        new("cvtsi2ss32", false, Form.FromInteger, a => a.cvtsi2ss(xmm0, eax), 0x2EAAB362B59818B5UL),
        new("ucomisd", true, Form.Compare, a => a.ucomisd(xmm0, xmm1), 0xFAA350F667945F13UL),
        new("comiss", false, Form.Compare, a => a.comiss(xmm0, xmm1), 0x01EEF067547CED53UL),
        new("cmpss0", false, Form.Binary, a => a.cmpss(xmm0, xmm1, 0), 0x6F4A285A4B909CF2UL),
        new("cmpss1", false, Form.Binary, a => a.cmpss(xmm0, xmm1, 1), 0x450AFDD5A5B9EE86UL),
        new("cmpss2", false, Form.Binary, a => a.cmpss(xmm0, xmm1, 2), 0x653B435C4846A302UL),
        new("cmpss3", false, Form.Binary, a => a.cmpss(xmm0, xmm1, 3), 0x43A735D15C08CEB2UL),
        new("cmpss4", false, Form.Binary, a => a.cmpss(xmm0, xmm1, 4), 0xEB676FD4ED0DC49AUL),
        new("cmpss5", false, Form.Binary, a => a.cmpss(xmm0, xmm1, 5), 0xC4136630533D89E6UL),
        new("cmpss6", false, Form.Binary, a => a.cmpss(xmm0, xmm1, 6), 0x35D00F630B9462AAUL),
        new("cmpss7", false, Form.Binary, a => a.cmpss(xmm0, xmm1, 7), 0x7E6F7B390FB8E8FAUL),
        new("cmpsd0", true, Form.Binary, a => a.cmpsd(xmm0, xmm1, 0), 0x802C559828E9491EUL),
        new("cmpsd1", true, Form.Binary, a => a.cmpsd(xmm0, xmm1, 1), 0x69F6DB190AAF4406UL),
        new("cmpsd2", true, Form.Binary, a => a.cmpsd(xmm0, xmm1, 2), 0xD4C1D09DF32F91BEUL),
        new("cmpsd3", true, Form.Binary, a => a.cmpsd(xmm0, xmm1, 3), 0x9AF7A79CAD97C21EUL),
        new("cmpsd4", true, Form.Binary, a => a.cmpsd(xmm0, xmm1, 4), 0x2A262D6E7D214B6EUL),
        new("cmpsd5", true, Form.Binary, a => a.cmpsd(xmm0, xmm1, 5), 0x531C4A899C621AC6UL),
        new("cmpsd6", true, Form.Binary, a => a.cmpsd(xmm0, xmm1, 6), 0x43D81FC05741424EUL),
        new("cmpsd7", true, Form.Binary, a => a.cmpsd(xmm0, xmm1, 7), 0x15E034D3F1A87D2EUL),
        new("cvtsi2sd32", false, Form.FromInteger, a => a.cvtsi2sd(xmm0, eax), 0x560525C58042613EUL),
        // Packed forms: XMM0/XMM1 loaded by MOVQ (upper quadword zero), the low quadword of the result compared.
        new("addps", false, Form.Binary, a => a.addps(xmm0, xmm1), 0xE1DA9A08CF70F41FUL),
        new("subpd", true, Form.Binary, a => a.subpd(xmm0, xmm1), 0xBBD077B3864ACBB9UL),
        new("mulps", false, Form.Binary, a => a.mulps(xmm0, xmm1), 0x461818DC838A9824UL),
        new("mulpd", true, Form.Binary, a => a.mulpd(xmm0, xmm1), 0xB09B479D2F11FCBBUL),
        new("sqrtps", false, Form.Unary, a => a.sqrtps(xmm0, xmm1), 0x0E7616A0E17E1069UL),
        new("sqrtpd", true, Form.Unary, a => a.sqrtpd(xmm0, xmm1), 0xDF7C11E1210C7117UL),
        new("minps", false, Form.Binary, a => a.minps(xmm0, xmm1), 0x300D2EF3EA9D78C6UL),
        new("maxpd", true, Form.Binary, a => a.maxpd(xmm0, xmm1), 0x6E707F83FD876602UL),
        new("cvtps2pd", false, Form.Unary, a => a.cvtps2pd(xmm0, xmm1), 0x59843581B37E6BAFUL),
        new("cvtpd2ps", true, Form.Unary, a => a.cvtpd2ps(xmm0, xmm1), 0x39826AF2D91B1C40UL),
        new("cvtps2dq", false, Form.Unary, a => a.cvtps2dq(xmm0, xmm1), 0xB291DB5EF05422A8UL),
        new("cvttpd2dq", true, Form.Unary, a => a.cvttpd2dq(xmm0, xmm1), 0xB74EFBB1E1061C62UL),
        new("cvtdq2ps", false, Form.Unary, a => a.cvtdq2ps(xmm0, xmm1), 0x79C172876D277285UL),
        new("cmpps5", false, Form.Binary, a => a.cmpps(xmm0, xmm1, 5), 0xB3F210E36036DBF6UL),
        new("cmppd2", true, Form.Binary, a => a.cmppd(xmm0, xmm1, 2), 0xD4C1D09DF32F91BEUL),
    ];

    /// <summary>
    /// The sweep's inputs (MXCSR, xmm0's qword, the source qword): for each MXCSR of <see cref="Controls"/>, every pair
    /// of the format's values (binary forms) or every value as the source with xmm0 = 0x5555… (one-source forms).
    /// binary32 values ride in the low dword of qwords tagged 0xdeadbeef (first) / 0xc0ffee00 (second).
    /// </summary>
    /// <summary>
    /// The sweep's expected digest per instruction, as <see cref="sse_scalar_float_sweep_matches_the_cpu"/> compares
    /// them: the conformance tests check them against the probe (tests/KvmSharp.Conformance.Tests/Oracles/sse_sweep.c)
    /// run live on the test host's CPU.
    /// </summary>
    public static IReadOnlyList<(string Name, ulong Digest)> SweepOracleDigests => [.. SweepDigests.Select(op => (op.Name, op.Digest))];

    private static List<(uint Mxcsr, ulong First, ulong Second)> Inputs(SweepOp op)
    {
        ulong[] values = op.Double ? Doubles : [.. Singles.Select(s => (ulong)s)];
        bool binary = op.Form is Form.Binary or Form.Compare;
        var list = new List<(uint, ulong, ulong)>();
        foreach (uint m in Controls)
        {
            foreach (ulong x in values)
            {
                ulong a = op.Double ? x : 0xdeadbeef00000000 | x;
                if (!binary)
                {
                    list.Add((m, 0x5555555555555555, a));
                    continue;
                }
                foreach (ulong y in values) list.Add((m, a, op.Double ? y : 0xc0ffee0000000000 | y));
            }
        }
        return list;
    }

    /// <summary>
    /// One loop over the inputs at <see cref="In"/> (24 bytes each): LDMXCSR, xmm0/xmm1 (or RAX) loaded, the
    /// instruction, then the result qword, STMXCSR and the arithmetic flags stored at <see cref="Out"/> (16 bytes each).
    /// </summary>
    private static void SweepProgram(Assembler a, SweepOp op, int count)
    {
        var loop = a.CreateLabel();
        a.mov(rsi, (long)In);
        a.mov(rdi, (long)Out);
        a.mov(ecx, count);
        a.Label(ref loop);
        a.ldmxcsr(__dword_ptr[rsi]);
        a.movq(xmm0, __qword_ptr[rsi + 8]);
        a.movq(xmm1, __qword_ptr[rsi + 16]);
        a.mov(rax, op.Form == Form.FromInteger ? __qword_ptr[rsi + 16] : __qword_ptr[rsi + 8]);
        if (op.Form == Form.ToInteger) a.mov(rax, 0x1111111111111111L);
        op.Emit(a);
        a.pushfq();
        a.pop(rdx);
        a.and(edx, 0x8d5);
        if (op.Form != Form.Compare) a.xor(edx, edx);
        if (op.Form == Form.ToInteger) a.mov(__qword_ptr[rdi], rax);
        else if (op.Form == Form.Compare) a.mov(__qword_ptr[rdi], 0);
        else a.movq(__qword_ptr[rdi], xmm0);
        a.stmxcsr(__dword_ptr[rdi + 8]);
        a.mov(__dword_ptr[rdi + 12], edx);
        a.add(rsi, 24);
        a.add(rdi, 16);
        a.dec(ecx);
        a.jnz(loop);
    }

    private static ulong Fnv(ReadOnlySpan<byte> data)
    {
        ulong h = 0xcbf29ce484222325;
        foreach (byte b in data) h = (h ^ b) * 0x100000001b3;
        return h;
    }

    private static IdtGuest Guest(Kvm kvm, Action<Assembler> program, bool osxmmexcpt = true)
    {
        var g = IdtGuest.Create(kvm, a => { program(a); a.hlt(); }, Halting);
        try
        {
            g.Vcpu.SetCpuid(FeatureTable(kvm));
            var s = g.Vcpu.GetSregs();
            s.cr4 = osxmmexcpt ? s.cr4 | CR4_OSXMMEXCPT : s.cr4 & ~CR4_OSXMMEXCPT;
            g.Vcpu.SetSregs(s);
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    /// <summary>The kernel's supported CPUID with CPUID.1 ECX SSSE3 (9) and SSE4.1 (19) set.</summary>
    private static CpuidEntry[] FeatureTable(Kvm kvm) =>
        [.. kvm.GetSupportedCpuid().Select(e => e.Function == 1 ? e with { Ecx = e.Ecx | (1u << 9) | (1u << 19) } : e)];

    [ConformanceCase("Intel SDM Vol. 1 4.8-4.9, 10.2.3, 11.5; Vol. 2 ADDSS…SQRTSD, MINSS/MAXSS, CMPSS/CMPSD (all 8 predicates), CVT*, (U)COMIS*, and packed forms (ADDPS … CMPPD) on their low quadword: results, MXCSR flags (IE DE ZE OE UE PE) and ZF/PF/CF under RC nearest/down/up/zero, FTZ, DAZ, for zeros, denormals, infinities, QNaN/SNaN and overflow/underflow inputs, as the CPU computes them")]
    public static void sse_scalar_float_sweep_matches_the_cpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var failures = new List<string>();
        foreach (var op in SweepDigests)
        {
            var inputs = Inputs(op);
            using var g = Guest(kvm, a => SweepProgram(a, op, inputs.Count));
            byte[] table = new byte[inputs.Count * 24];
            for (int k = 0; k < inputs.Count; k++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(k * 24), inputs[k].Mxcsr);
                BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(k * 24 + 8), inputs[k].First);
                BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(k * 24 + 16), inputs[k].Second);
            }
            g.Guest.Memory.Write(In, table);
            var exit = g.Vcpu.Run();
            if (HostCannotRun(ctx, g, exit.Reason)) return;
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{op.Name}: {exit.ToString()}");
            Assert.Empty(g.Deliveries);
            byte[] output = new byte[inputs.Count * 16];
            g.Guest.Memory.Read(Out, output);
            ulong digest = Fnv(output);
            if (digest != op.Digest) failures.Add($"{op.Name}: digest 0x{digest:X16}, the CPU's 0x{op.Digest:X16}");
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    /// <summary>
    /// Runs the steps in one guest (inputs at <see cref="In"/>, 32 bytes a step; XMM2 after each at <see cref="Out"/>)
    /// and compares each result with the host CPU's; false when this host cannot run them (asserted).
    /// </summary>
    private static void RunSteps(CaseContext ctx, Step[] steps)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a => EmitSteps(a, In, Out, steps));
        RunAndCompare(ctx, g, In, Out, steps);
    }

    [ConformanceCase("Intel SDM Vol. 2 ADDPS…SQRTPD, MINPS/MAXPD, AND/ANDN/OR PS/PD, SHUFPS/PD, UNPCKL/H PS/PD, MOVHLPS/MOVLHPS, MOVSS/MOVSD, CVTDQ2PS/PD, CVT(T)PS2DQ, CVT(T)PD2DQ, CVTPS2PD/CVTPD2PS, CMPPS/CMPPD/CMPSD, MOVLPS/MOVHPS/MOVLPD/MOVHPD loads: packed results as this CPU computes them (MXCSR default)")]
    public static void sse_packed_float_matches_the_cpu(CaseContext ctx)
    {
        var f0 = Vector128.Create(1.5f, -2f, 3.25f, 1e-3f);
        var f1 = Vector128.Create(0.1f, 4f, -1f, float.NaN);
        var d0 = Vector128.Create(1.5, -2.25);
        var d1 = Vector128.Create(0.1, -0.0);
        var big = Vector128.Create(3e9f, -2.5f, 2.5f, -7.7f);
        var bigD = Vector128.Create(-3e10, 2.5);
        var ints = Vector128.Create(1, -7, int.MaxValue, 16_777_217);
        Step[] steps =
        [
            S("addps", f0, f1, a => a.addps(xmm2, xmm1), Sse.Add(f0, f1)),
            S("subps m128", f0, f1, a => a.subps(xmm2, __xmmword_ptr[rbx]), Sse.Subtract(f0, f1)),
            S("mulps", f0, f1, a => a.mulps(xmm2, xmm1), Sse.Multiply(f0, f1)),
            S("divps", f0, f1, a => a.divps(xmm2, xmm1), Sse.Divide(f0, f1)),
            S("minps", f0, f1, a => a.minps(xmm2, xmm1), Sse.Min(f0, f1)),
            S("maxps", f0, f1, a => a.maxps(xmm2, xmm1), Sse.Max(f0, f1)),
            S("sqrtps", f0, f1, a => a.sqrtps(xmm2, xmm1), Sse.Sqrt(f1)),
            S("addpd", d0, d1, a => a.addpd(xmm2, xmm1), Sse2.Add(d0, d1)),
            S("subpd", d0, d1, a => a.subpd(xmm2, xmm1), Sse2.Subtract(d0, d1)),
            S("mulpd m128", d0, d1, a => a.mulpd(xmm2, __xmmword_ptr[rbx]), Sse2.Multiply(d0, d1)),
            S("divpd", d0, d1, a => a.divpd(xmm2, xmm1), Sse2.Divide(d0, d1)),
            S("minpd", d0, d1, a => a.minpd(xmm2, xmm1), Sse2.Min(d0, d1)),
            S("maxpd", d0, d1, a => a.maxpd(xmm2, xmm1), Sse2.Max(d0, d1)),
            S("sqrtpd", d0, d0, a => a.sqrtpd(xmm2, xmm1), Sse2.Sqrt(d0)),
            S("addss", f0, f1, a => a.addss(xmm2, xmm1), Sse.AddScalar(f0, f1)),
            S("divsd m64", d0, d1, a => a.divsd(xmm2, __qword_ptr[rbx]), Sse2.DivideScalar(d0, d1)),
            S("sqrtss", f0, f1, a => a.sqrtss(xmm2, xmm1), Sse.SqrtScalar(f0, f1)),
            S("andps", f0, f1, a => a.andps(xmm2, xmm1), Sse.And(f0, f1)),
            S("andnps", f0, f1, a => a.andnps(xmm2, xmm1), Sse.AndNot(f0, f1)),
            S("orps", f0, f1, a => a.orps(xmm2, xmm1), Sse.Or(f0, f1)),
            S("andpd", d0, d1, a => a.andpd(xmm2, xmm1), Sse2.And(d0, d1)),
            S("andnpd", d0, d1, a => a.andnpd(xmm2, xmm1), Sse2.AndNot(d0, d1)),
            S("orpd", d0, d1, a => a.orpd(xmm2, xmm1), Sse2.Or(d0, d1)),
            S("shufps 0x1b", f0, f1, a => a.shufps(xmm2, xmm1, 0x1b), Sse.Shuffle(f0, f1, 0x1b)),
            S("shufps 0xe4", f0, f1, a => a.shufps(xmm2, xmm1, 0xe4), Sse.Shuffle(f0, f1, 0xe4)),
            S("shufpd 1", d0, d1, a => a.shufpd(xmm2, xmm1, 1), Sse2.Shuffle(d0, d1, 1)),
            S("shufpd 2", d0, d1, a => a.shufpd(xmm2, xmm1, 2), Sse2.Shuffle(d0, d1, 2)),
            S("unpcklps", f0, f1, a => a.unpcklps(xmm2, xmm1), Sse.UnpackLow(f0, f1)),
            S("unpckhps", f0, f1, a => a.unpckhps(xmm2, xmm1), Sse.UnpackHigh(f0, f1)),
            S("unpcklpd", d0, d1, a => a.unpcklpd(xmm2, xmm1), Sse2.UnpackLow(d0, d1)),
            S("unpckhpd", d0, d1, a => a.unpckhpd(xmm2, xmm1), Sse2.UnpackHigh(d0, d1)),
            S("movhlps", f0, f1, a => a.movhlps(xmm2, xmm1), Sse.MoveHighToLow(f0, f1)),
            S("movlhps", f0, f1, a => a.movlhps(xmm2, xmm1), Sse.MoveLowToHigh(f0, f1)),
            S("movss xmm", f0, f1, a => a.movss(xmm2, xmm1), Sse.MoveScalar(f0, f1)),
            S("movss m32", f0, f1, a => a.movss(xmm2, __dword_ptr[rbx]), Vector128.CreateScalar(f1.GetElement(0))),
            S("movsd xmm", d0, d1, a => a.movsd(xmm2, xmm1), Sse2.MoveScalar(d0, d1)),
            S("movsd m64", d0, d1, a => a.movsd(xmm2, __qword_ptr[rbx]), Vector128.CreateScalar(d1.GetElement(0))),
            S("cvtdq2ps", ints, ints, a => a.cvtdq2ps(xmm2, xmm1), Sse2.ConvertToVector128Single(ints)),
            S("cvtdq2pd", ints, ints, a => a.cvtdq2pd(xmm2, xmm1), Sse2.ConvertToVector128Double(ints)),
            S("cvttps2dq", big, big, a => a.cvttps2dq(xmm2, xmm1), Sse2.ConvertToVector128Int32WithTruncation(big)),
            S("cvtps2dq", big, big, a => a.cvtps2dq(xmm2, xmm1), Sse2.ConvertToVector128Int32(big)),
            S("cvttpd2dq", bigD, bigD, a => a.cvttpd2dq(xmm2, xmm1), Sse2.ConvertToVector128Int32WithTruncation(bigD)),
            S("cvtpd2dq", bigD, bigD, a => a.cvtpd2dq(xmm2, xmm1), Sse2.ConvertToVector128Int32(bigD)),
            S("cvtps2pd", f0, f1, a => a.cvtps2pd(xmm2, xmm1), Sse2.ConvertToVector128Double(f1)),
            S("cvtpd2ps", d0, d1, a => a.cvtpd2ps(xmm2, xmm1), Sse2.ConvertToVector128Single(d1)),
            S("cmpps lt", f0, f1, a => a.cmpps(xmm2, xmm1, 1), Sse.CompareLessThan(f0, f1)),
            S("cmpps neq", f0, f1, a => a.cmpps(xmm2, xmm1, 4), Sse.CompareNotEqual(f0, f1)),
            S("cmppd nle", d0, d1, a => a.cmppd(xmm2, xmm1, 6), Sse2.CompareNotLessThanOrEqual(d0, d1)),
            S("cmpsd le", d0, d1, a => a.cmpsd(xmm2, xmm1, 2), Sse2.CompareScalarLessThanOrEqual(d0, d1)),
            S("movlps m64", f0, f1, a => a.movlps(xmm2, __qword_ptr[rbx]), f0.AsUInt64().WithElement(0, f1.AsUInt64().GetElement(0))),
            S("movhps m64", f0, f1, a => a.movhps(xmm2, __qword_ptr[rbx]), f0.AsUInt64().WithElement(1, f1.AsUInt64().GetElement(0))),
            S("movlpd m64", d0, d1, a => a.movlpd(xmm2, __qword_ptr[rbx]), d0.WithElement(0, d1.GetElement(0))),
            S("movhpd m64", d0, d1, a => a.movhpd(xmm2, __qword_ptr[rbx]), d0.WithElement(1, d1.GetElement(0))),
        ];
        RunSteps(ctx, steps);
    }

    [ConformanceCase("Intel SDM Vol. 2 PADD*/PSUB*, PAND/PANDN/POR, PCMPGT*, PUNPCK*, PMINUB/PMAXUB/PMINSW/PMAXSW, PMULLW/PMULHW/PMULHUW/PMULUDQ, PMADDWD, PACK*, PADDUS/PADDS/PSUBUS/PSUBS, PAVGB/W, PSADBW, PINSRW, PSHUFD/LW/HW, PSHUFB, PALIGNR, PSLL/PSRL/PSRA (imm8, xmm), PSLLDQ/PSRLDQ: results as this CPU computes them")]
    public static void sse_packed_integer_matches_the_cpu(CaseContext ctx)
    {
        var b0 = Vector128.Create((byte)0x01, 0x80, 0xff, 0x7f, 0x10, 0x20, 0xfe, 0x00, 0x33, 0x44, 0x55, 0x66, 0x99, 0xaa, 0xbb, 0xcc);
        var b1 = Vector128.Create((byte)0xff, 0x80, 0x01, 0x81, 0x0f, 0x21, 0x02, 0x00, 0x8d, 0x0c, 0x03, 0x0a, 0x99, 0x55, 0x80, 0x0d);
        var w0 = b0.AsInt16();
        var w1 = b1.AsInt16();
        var d0 = b0.AsInt32();
        var d1 = b1.AsInt32();
        var q0 = b0.AsInt64();
        var q1 = b1.AsInt64();
        var count5 = Vector128.Create(5L, 0x1234).AsByte();
        var count70 = Vector128.Create(70L, 0).AsByte();
        Step[] steps =
        [
            S("paddb", b0, b1, a => a.paddb(xmm2, xmm1), Sse2.Add(b0, b1)),
            S("paddw m128", w0, w1, a => a.paddw(xmm2, __xmmword_ptr[rbx]), Sse2.Add(w0, w1)),
            S("paddd", d0, d1, a => a.paddd(xmm2, xmm1), Sse2.Add(d0, d1)),
            S("paddq", q0, q1, a => a.paddq(xmm2, xmm1), Sse2.Add(q0, q1)),
            S("psubb", b0, b1, a => a.psubb(xmm2, xmm1), Sse2.Subtract(b0, b1)),
            S("psubw", w0, w1, a => a.psubw(xmm2, xmm1), Sse2.Subtract(w0, w1)),
            S("psubd", d0, d1, a => a.psubd(xmm2, xmm1), Sse2.Subtract(d0, d1)),
            S("psubq", q0, q1, a => a.psubq(xmm2, xmm1), Sse2.Subtract(q0, q1)),
            S("pand", b0, b1, a => a.pand(xmm2, xmm1), Sse2.And(b0, b1)),
            S("pandn", b0, b1, a => a.pandn(xmm2, xmm1), Sse2.AndNot(b0, b1)),
            S("por", b0, b1, a => a.por(xmm2, xmm1), Sse2.Or(b0, b1)),
            S("pcmpgtb", b0, b1, a => a.pcmpgtb(xmm2, xmm1), Sse2.CompareGreaterThan(b0.AsSByte(), b1.AsSByte())),
            S("pcmpgtw", w0, w1, a => a.pcmpgtw(xmm2, xmm1), Sse2.CompareGreaterThan(w0, w1)),
            S("pcmpgtd", d0, d1, a => a.pcmpgtd(xmm2, xmm1), Sse2.CompareGreaterThan(d0, d1)),
            S("punpcklbw", b0, b1, a => a.punpcklbw(xmm2, xmm1), Sse2.UnpackLow(b0, b1)),
            S("punpckhbw", b0, b1, a => a.punpckhbw(xmm2, xmm1), Sse2.UnpackHigh(b0, b1)),
            S("punpcklwd", w0, w1, a => a.punpcklwd(xmm2, xmm1), Sse2.UnpackLow(w0, w1)),
            S("punpckhwd", w0, w1, a => a.punpckhwd(xmm2, xmm1), Sse2.UnpackHigh(w0, w1)),
            S("punpckldq", d0, d1, a => a.punpckldq(xmm2, xmm1), Sse2.UnpackLow(d0, d1)),
            S("punpckhdq", d0, d1, a => a.punpckhdq(xmm2, xmm1), Sse2.UnpackHigh(d0, d1)),
            S("punpcklqdq", q0, q1, a => a.punpcklqdq(xmm2, xmm1), Sse2.UnpackLow(q0, q1)),
            S("punpckhqdq", q0, q1, a => a.punpckhqdq(xmm2, xmm1), Sse2.UnpackHigh(q0, q1)),
            S("pminub", b0, b1, a => a.pminub(xmm2, xmm1), Sse2.Min(b0, b1)),
            S("pmaxub", b0, b1, a => a.pmaxub(xmm2, xmm1), Sse2.Max(b0, b1)),
            S("pminsw", w0, w1, a => a.pminsw(xmm2, xmm1), Sse2.Min(w0, w1)),
            S("pmaxsw", w0, w1, a => a.pmaxsw(xmm2, xmm1), Sse2.Max(w0, w1)),
            S("pmullw", w0, w1, a => a.pmullw(xmm2, xmm1), Sse2.MultiplyLow(w0, w1)),
            S("pmulhw", w0, w1, a => a.pmulhw(xmm2, xmm1), Sse2.MultiplyHigh(w0, w1)),
            S("pmulhuw", w0, w1, a => a.pmulhuw(xmm2, xmm1), Sse2.MultiplyHigh(w0.AsUInt16(), w1.AsUInt16())),
            S("pmuludq", d0, d1, a => a.pmuludq(xmm2, xmm1), Sse2.Multiply(d0.AsUInt32(), d1.AsUInt32())),
            S("pmaddwd", w0, w1, a => a.pmaddwd(xmm2, xmm1), Sse2.MultiplyAddAdjacent(w0, w1)),
            S("pmaddwd 0x8000", Vector128.Create((short)-32768), Vector128.Create((short)-32768), a => a.pmaddwd(xmm2, xmm1),
                Sse2.MultiplyAddAdjacent(Vector128.Create((short)-32768), Vector128.Create((short)-32768))),
            S("packuswb", w0, w1, a => a.packuswb(xmm2, xmm1), Sse2.PackUnsignedSaturate(w0, w1)),
            S("packsswb", w0, w1, a => a.packsswb(xmm2, xmm1), Sse2.PackSignedSaturate(w0, w1)),
            S("packssdw", d0, d1, a => a.packssdw(xmm2, xmm1), Sse2.PackSignedSaturate(d0, d1)),
            S("pshufd 0x1b", d0, d1, a => a.pshufd(xmm2, xmm1, 0x1b), Sse2.Shuffle(d1, 0x1b)),
            S("pshuflw 0xb1", w0, w1, a => a.pshuflw(xmm2, xmm1, 0xb1), Sse2.ShuffleLow(w1, 0xb1)),
            S("pshufhw 0x4e", w0, w1, a => a.pshufhw(xmm2, __xmmword_ptr[rbx], 0x4e), Sse2.ShuffleHigh(w1, 0x4e)),
            S("pshufb", b0, b1, a => a.pshufb(xmm2, xmm1), Ssse3.Shuffle(b0, b1)),
            S("palignr 5", b0, b1, a => a.palignr(xmm2, xmm1, 5), Ssse3.AlignRight(b0, b1, 5)),
            S("palignr 20", b0, b1, a => a.palignr(xmm2, xmm1, 20), Ssse3.AlignRight(b0, b1, 20)),
            S("palignr 33", b0, b1, a => a.palignr(xmm2, xmm1, 33), Ssse3.AlignRight(b0, b1, 33)),
            S("psllw 3", w0, w1, a => a.psllw(xmm2, 3), Sse2.ShiftLeftLogical(w0, 3)),
            S("psllw 16", w0, w1, a => a.psllw(xmm2, 16), Sse2.ShiftLeftLogical(w0, 16)),
            S("pslld 7", d0, d1, a => a.pslld(xmm2, 7), Sse2.ShiftLeftLogical(d0, 7)),
            S("psllq 33", q0, q1, a => a.psllq(xmm2, 33), Sse2.ShiftLeftLogical(q0, 33)),
            S("psrlw 9", w0, w1, a => a.psrlw(xmm2, 9), Sse2.ShiftRightLogical(w0, 9)),
            S("psrld 31", d0, d1, a => a.psrld(xmm2, 31), Sse2.ShiftRightLogical(d0, 31)),
            S("psrlq 64", q0, q1, a => a.psrlq(xmm2, 64), Sse2.ShiftRightLogical(q0, 64)),
            S("psraw 20", w0, w1, a => a.psraw(xmm2, 20), Sse2.ShiftRightArithmetic(w0, 20)),
            S("psrad 7", d0, d1, a => a.psrad(xmm2, 7), Sse2.ShiftRightArithmetic(d0, 7)),
            S("psllw xmm 5", w0, count5.AsInt16(), a => a.psllw(xmm2, xmm1), Sse2.ShiftLeftLogical(w0, count5.AsInt16())),
            S("psrld xmm 5", d0, count5.AsInt32(), a => a.psrld(xmm2, xmm1), Sse2.ShiftRightLogical(d0, count5.AsInt32())),
            S("psrad m128 70", d0, count70.AsInt32(), a => a.psrad(xmm2, __xmmword_ptr[rbx]), Sse2.ShiftRightArithmetic(d0, count70.AsInt32())),
            S("psllq xmm 70", q0, count70.AsInt64(), a => a.psllq(xmm2, xmm1), Sse2.ShiftLeftLogical(q0, count70.AsInt64())),
            S("pslldq 5", b0, b1, a => a.pslldq(xmm2, 5), Sse2.ShiftLeftLogical128BitLane(b0, 5)),
            S("psrldq 3", b0, b1, a => a.psrldq(xmm2, 3), Sse2.ShiftRightLogical128BitLane(b0, 3)),
            S("psrldq 20", b0, b1, a => a.psrldq(xmm2, 20), Sse2.ShiftRightLogical128BitLane(b0, 20)),
            S("paddusb", b0, b1, a => a.paddusb(xmm2, xmm1), Sse2.AddSaturate(b0, b1)),
            S("paddsb", b0, b1, a => a.paddsb(xmm2, xmm1), Sse2.AddSaturate(b0.AsSByte(), b1.AsSByte())),
            S("paddusw", w0, w1, a => a.paddusw(xmm2, xmm1), Sse2.AddSaturate(w0.AsUInt16(), w1.AsUInt16())),
            S("paddsw", w0, w1, a => a.paddsw(xmm2, xmm1), Sse2.AddSaturate(w0, w1)),
            S("psubusb", b0, b1, a => a.psubusb(xmm2, xmm1), Sse2.SubtractSaturate(b0, b1)),
            S("psubsb", b0, b1, a => a.psubsb(xmm2, xmm1), Sse2.SubtractSaturate(b0.AsSByte(), b1.AsSByte())),
            S("psubusw", w0, w1, a => a.psubusw(xmm2, xmm1), Sse2.SubtractSaturate(w0.AsUInt16(), w1.AsUInt16())),
            S("psubsw", w0, w1, a => a.psubsw(xmm2, xmm1), Sse2.SubtractSaturate(w0, w1)),
            S("pavgb", b0, b1, a => a.pavgb(xmm2, xmm1), Sse2.Average(b0, b1)),
            S("pavgw", w0, w1, a => a.pavgw(xmm2, xmm1), Sse2.Average(w0.AsUInt16(), w1.AsUInt16())),
            S("psadbw", b0, b1, a => a.psadbw(xmm2, xmm1), Sse2.SumAbsoluteDifferences(b0, b1)),
            S("pinsrw m16 3", w0, w1, a => a.pinsrw(xmm2, __word_ptr[rbx], 3), Sse2.Insert(w0, w1.GetElement(0), 3)),
        ];
        RunSteps(ctx, steps);
    }

    [ConformanceCase("Intel SDM Vol. 2 MOVMSKPS/MOVMSKPD/PMOVMSKB: the elements' sign bits, zero-extended into the register; PEXTRW zero-extends its word; MOVSS/MOVSD/MOVHPD m, xmm store only their element")]
    public static void sse_sign_masks_and_scalar_stores(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var v = Vector128.Create((byte)0x80, 0, 0x7f, 0xff, 0, 0, 0, 0x80, 1, 2, 3, 0x84, 0x90, 0, 0, 0xc0);
        using var g = Guest(kvm, a =>
        {
            a.movdqu(xmm3, __xmmword_ptr[Data]);
            a.mov(rax, -1L);
            a.mov(rbx, -1L);
            a.mov(rcx, -1L);
            a.movmskps(eax, xmm3);
            a.movmskpd(rbx, xmm3);
            a.pmovmskb(ecx, xmm3);
            a.mov(rdx, -1L);
            a.pextrw(edx, xmm3, 5);
            a.movhpd(__qword_ptr[Result + 0x21], xmm3);
            a.movss(__dword_ptr[Result + 1], xmm3);
            a.movsd(__qword_ptr[Result + 0x11], xmm3);
        });
        g.Guest.Memory.Write(Data, Bytes(v));
        g.Guest.Memory.Fill(Result, 0x40, 0xee);
        var exit = g.Vcpu.Run();
        if (HostCannotRun(ctx, g, exit.Reason)) return;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
        Assert.Empty(g.Deliveries);
        var r = g.Vcpu.GetRegs();
        Assert.Equal((ulong)Sse.MoveMask(v.AsSingle()), r.rax);
        Assert.Equal((ulong)Sse2.MoveMask(v.AsDouble()), r.rbx);
        Assert.Equal((ulong)Sse2.MoveMask(v), r.rcx);
        Assert.Equal((ulong)Sse2.Extract(v.AsUInt16(), 5), r.rdx);
        byte[] stored = new byte[0x30];
        g.Guest.Memory.Read(Result, stored);
        byte[] expected = [.. Enumerable.Repeat((byte)0xee, 0x30)];
        Bytes(v).AsSpan(0, 4).CopyTo(expected.AsSpan(1));
        Bytes(v).AsSpan(0, 8).CopyTo(expected.AsSpan(0x11));
        Bytes(v).AsSpan(8, 8).CopyTo(expected.AsSpan(0x21));
        Assert.Equal(expected, stored);
    }

    [ConformanceCase("Intel SDM Vol. 1 11.5.1, Vol. 3A 6.15 interrupt 19: an unmasked SIMD FP exception (ZE of DIVPD, PE of ADDSD, IE of an SNaN in ADDPS, OE/UE of MULSD alone, DE of ADDSD alone) sets its MXCSR flag as the CPU does, leaves the destination unchanged and raises #XM with CR4.OSXMMEXCPT, #UD without it")]
    public static void sse_unmasked_exceptions_raise_xm_or_ud(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var one = Vector128.Create(1.0, 2.0).AsByte();
        var zero = Vector128.Create(0.0, 1.0).AsByte();
        var tenth = Vector128.Create(0.1, 1.0).AsByte();
        var snan = Vector128.Create(0x3f800000u, 0x7f800001u, 0x40000000u, 0x40400000u).AsByte(); // 1, SNaN, 2, 3
        static Vector128<byte> Q(ulong low) => Vector128.Create(low, 0x4000000000000000).AsByte(); // (low, 2.0)
        // Expected MXCSR flags as this host's CPU left them at the #XM (C probe: SIGFPE handler reading MXCSR).
        (string What, Action<Assembler> Op, uint Mxcsr, Vector128<byte> First, Vector128<byte> Source, uint Flags)[] cases =
        [
            ("DIVPD by zero, ZM clear", a => a.divpd(xmm0, xmm1), 0x1d80, one, zero, 0x4),
            ("ADDSD inexact, PM clear", a => a.addsd(xmm0, xmm1), 0x0f80, one, tenth, 0x20),
            ("ADDPS SNaN, IM clear", a => a.addps(xmm0, xmm1), 0x1f00, one, snan, 0x1),
            ("MULSD overflow, OM clear: OE alone", a => a.mulsd(xmm0, xmm1), 0x1b80, Q(0x7fe0000000000000), Q(0x4000000000000000), 0x8),
            ("MULSD masked overflow, PM clear: OE and PE", a => a.mulsd(xmm0, xmm1), 0x0f80, Q(0x7fe0000000000000), Q(0x4000000000000000), 0x28),
            ("MULSD exact tiny, UM clear: UE", a => a.mulsd(xmm0, xmm1), 0x1780, Q(0x0010000000000000), Q(0x3fe0000000000000), 0x10),
            ("MULSD inexact tiny with FTZ, UM clear: UE alone", a => a.mulsd(xmm0, xmm1), 0x9780, Q(0x0010000000000001), Q(0x3fe0000000000000), 0x10),
            ("MULSD masked inexact tiny, PM clear: UE and PE", a => a.mulsd(xmm0, xmm1), 0x0f80, Q(0x0010000000000001), Q(0x3fe0000000000000), 0x30),
            ("ADDSD denormal, DM clear: DE alone", a => a.addsd(xmm0, xmm1), 0x1e80, Q(1), Q(0x3ff0000000000000), 0x2),
            ("DIVSD denormal by zero, ZM and DM clear: ZE alone", a => a.divsd(xmm0, xmm1), 0x1c80, Q(1), Q(0), 0x4),
        ];
        foreach (var (what, op, mxcsr, first, source, flags) in cases)
        {
            foreach (bool osxmmexcpt in new[] { true, false })
            {
                int at = 0;
                using var g = Guest(kvm, a =>
                {
                    a.movdqu(xmm0, __xmmword_ptr[Data]);
                    a.movdqu(xmm1, __xmmword_ptr[Data + 16]);
                    a.ldmxcsr(__dword_ptr[Data + 32]);
                    at = LongModeGuest.Assemble(b =>
                    {
                        b.movdqu(xmm0, __xmmword_ptr[Data]);
                        b.movdqu(xmm1, __xmmword_ptr[Data + 16]);
                        b.ldmxcsr(__dword_ptr[Data + 32]);
                    }).Length;
                    op(a);
                    a.mov(eax, 0x77);
                }, osxmmexcpt);
                g.Guest.Memory.Write(Data, Bytes(first));
                g.Guest.Memory.Write(Data + 16, Bytes(source));
                g.Guest.Memory.Write(Data + 32, mxcsr);
                var exit = g.Vcpu.Run();
                if (HostCannotRun(ctx, g, exit.Reason)) return;
                Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
                Assert.True(g.Deliveries.Count == 1, $"{what}, OSXMMEXCPT {osxmmexcpt}: {g.Deliveries.Count} deliveries, RAX 0x{g.Vcpu.GetRegs().rax:X}, MXCSR 0x{BinaryPrimitives.ReadUInt32LittleEndian(g.Vcpu.GetXsave().AsSpan(24)):X}");
                var d = g.Single();
                Assert.True(d.Vector == (ulong)(osxmmexcpt ? XM : UD) && d.Rip == LongModeGuest.CodeGpa + (ulong)at,
                    $"{what}, OSXMMEXCPT {osxmmexcpt}: {d}");
                var image = g.Vcpu.GetXsave();
                uint after = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(24));
                Assert.True(after == (mxcsr | flags), $"{what}: MXCSR 0x{after:X}, expected 0x{mxcsr | flags:X}");
                byte[] low = new byte[16];
                var fpu = g.Vcpu.GetFpu();
                ((ReadOnlySpan<byte>)fpu.xmm)[..16].CopyTo(low);
                Assert.True(Bytes(first).AsSpan().SequenceEqual(low), $"{what}: XMM0 changed");
            }
        }
    }

    [ConformanceCase("Intel SDM Vol. 2A 2.5 / Vol. 3A 13.1 legacy SIMD exception classes: CR4.OSFXSR = 0 or CR0.EM = 1 -> #UD, CR0.TS = 1 -> #NM, a misaligned m128 of a packed form -> #GP(0) (a scalar m32/m64 need not be aligned), PSHUFB without CPUID SSSE3 -> #UD")]
    public static void sse_arithmetic_faults(CaseContext ctx)
    {
        const ulong CR0_EM = 1 << 2, CR0_TS = 1 << 3, CR4_OSFXSR = 1 << 9;
        const int NM = 7, GP = 13;
        (string What, Action<Assembler> Op, ulong Cr0, ulong Cr4Clear, bool Ssse3, int Vector)[] cases =
        [
            ("ADDPS with CR0.TS", a => a.addps(xmm0, xmm1), CR0_TS, 0, true, NM),
            ("MULSD without OSFXSR", a => a.mulsd(xmm0, xmm1), 0, CR4_OSFXSR, true, UD),
            ("PADDB with CR0.EM", a => a.paddb(xmm0, xmm1), CR0_EM, 0, true, UD),
            ("PADDD m128 at +8", a => a.paddd(xmm0, __xmmword_ptr[Data + 8]), 0, 0, true, GP),
            ("SQRTPD m128 at +4", a => a.sqrtpd(xmm0, __xmmword_ptr[Data + 4]), 0, 0, true, GP),
            ("PSHUFB without SSSE3", a => a.pshufb(xmm0, xmm1), 0, 0, false, UD),
            ("MULSS m32 at +1", a => a.mulss(xmm0, __dword_ptr[Data + 1]), 0, 0, true, -1),
        ];
        using var kvm = ctx.OpenKvm();
        foreach (var (what, op, cr0, cr4Clear, ssse3, vector) in cases)
        {
            using var g = IdtGuest.Create(kvm, a => { op(a); a.mov(eax, 0x77); a.hlt(); }, Halting);
            g.Vcpu.SetCpuid(ssse3 ? FeatureTable(kvm) : [.. kvm.GetSupportedCpuid().Select(e => e.Function == 1 ? e with { Ecx = e.Ecx & ~(1u << 9) } : e)]);
            var sregs = g.Vcpu.GetSregs();
            sregs.cr0 |= cr0;
            sregs.cr4 &= ~cr4Clear;
            g.Vcpu.SetSregs(sregs);
            var exit = g.Vcpu.Run();
            if (HostCannotRun(ctx, g, exit.Reason)) continue;
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.ToString()}");
            if (vector < 0)
            {
                Assert.Empty(g.Deliveries);
                Assert.Equal(0x77UL, g.Vcpu.GetRegs().rax);
                continue;
            }
            var d = g.Single();
            Assert.True(d.Vector == (ulong)vector && d.Rip == LongModeGuest.CodeGpa, $"{what}: {d}");
            Assert.Equal(vector == GP ? 0UL : null, d.ErrorCode);
        }
    }
}
