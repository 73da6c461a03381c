// SPDX-License-Identifier: MIT
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
/// The x86-64-v2 SIMD additions (SSE3, SSSE3, SSE4.1, SSE4.2 PCMPGTQ/CRC32; Intel SDM Vol. 2 per instruction) on
/// edge operands — NaN payloads, ±∞, denormals, −0, halfway values, integer minimums and maximums — against this host's
/// CPU through System.Runtime.Intrinsics (default MXCSR). kvm_pvm cannot run them in a guest
/// (<see cref="ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator"/>): there the real kernel's
/// KVM_EXIT_INTERNAL_ERROR is asserted as it is; the emulator is held to the CPU's results.
/// </summary>
public static class SseV2Cases
{
    private const ulong In = 0x9_0000, Out = 0xC_0000, Mask = 0x8_9000, Data = 0x8_A000;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>The kernel's supported CPUID with CPUID.1 ECX SSE3 (0), SSSE3 (9), SSE4.1 (19) and SSE4.2 (20) set.</summary>
    private static CpuidEntry[] FeatureTable(Kvm kvm) =>
        [.. kvm.GetSupportedCpuid().Select(e => e.Function == 1 ? e with { Ecx = e.Ecx | 1u | (1u << 9) | (1u << 19) | (1u << 20) } : e)];

    /// <summary>
    /// Runs the steps in one guest: XMM0 = <paramref name="mask"/> (the BLENDV/PBLENDVB mask), then per step XMM2 =
    /// First, XMM1 = Second (RBX its address), the instruction, XMM2 stored; each compared with the CPU's result.
    /// </summary>
    private static void RunSteps(CaseContext ctx, Vector128<byte> mask, Step[] steps)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.movdqu(xmm0, __xmmword_ptr[Mask]);
            EmitSteps(a, In, Out, steps);
            a.hlt();
        }, Halting);
        g.Vcpu.SetCpuid(FeatureTable(kvm));
        g.Guest.Memory.Write(Mask, Bytes(mask));
        RunAndCompare(ctx, g, In, Out, steps);
    }

    private static Vector128<float> F(uint a, uint b, uint c, uint d) => Vector128.Create(a, b, c, d).AsSingle();

    private static Vector128<double> D(ulong a, ulong b) => Vector128.Create(a, b).AsDouble();

    [ConformanceCase("Intel SDM Vol. 2 ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD, MOVSHDUP/MOVSLDUP/MOVDDUP, LDDQU (SSE3); ROUNDPS/PD/SS/SD (imm8 modes 0-3, MXCSR mode, imm8[3]), DPPS/DPPD (imm8 masks), BLENDPS/PD, BLENDVPS/PD, INSERTPS, EXTRACTPS via the register (SSE4.1): NaN payload order, ±inf, denormals, -0 and halfway values, as this CPU computes them")]
    public static void sse_v2_float_matches_the_cpu(CaseContext ctx)
    {
        // QNaN payloads 1/2, SNaN, ±inf, denormal, -0, halfway values, large integral values.
        var f0 = F(0x7fc00001, 0xff800000, 0x00000003, 0x80000000);
        var f1 = F(0xffc00002, 0x7f800000, 0x7f800005, 0x3f000000);
        var f2 = Vector128.Create(2.5f, -2.5f, 0.5f, -1.5f);
        var f3 = Vector128.Create(1.25f, -3.75f, 8388607.5f, -0.49999997f);
        var f4 = Vector128.Create(1e-3f, 3e38f, -7.25f, 16777216f);
        var d0 = D(0x7ff8000000000001, 0xfff0000000000000);
        var d1 = D(0xfff8000000000002, 0x8000000000000000);
        var d2 = Vector128.Create(2.5, -0.5);
        var d3 = Vector128.Create(4503599627370495.5, -3.5);
        var d4 = Vector128.Create(1e308, 0.1);
        var mask = Vector128.Create(0x80000000u, 0x7fffffffu, 0xffffffffu, 0u);
        var fm = mask.AsSingle();
        var dm = mask.AsDouble();
        var steps = new List<Step>
        {
            S("addsubps nan", f0, f1, a => a.addsubps(xmm2, xmm1), Sse3.AddSubtract(f0, f1)),
            S("addsubps", f2, f4, a => a.addsubps(xmm2, __xmmword_ptr[rbx]), Sse3.AddSubtract(f2, f4)),
            S("addsubpd nan", d0, d1, a => a.addsubpd(xmm2, xmm1), Sse3.AddSubtract(d0, d1)),
            S("addsubpd", d2, d4, a => a.addsubpd(xmm2, xmm1), Sse3.AddSubtract(d2, d4)),
            S("haddps nan", f0, f1, a => a.haddps(xmm2, xmm1), Sse3.HorizontalAdd(f0, f1)),
            S("haddps nan swapped", f1, f0, a => a.haddps(xmm2, xmm1), Sse3.HorizontalAdd(f1, f0)),
            S("haddps", f2, f3, a => a.haddps(xmm2, xmm1), Sse3.HorizontalAdd(f2, f3)),
            S("hsubps nan", f0, f1, a => a.hsubps(xmm2, xmm1), Sse3.HorizontalSubtract(f0, f1)),
            S("hsubps", f3, f4, a => a.hsubps(xmm2, __xmmword_ptr[rbx]), Sse3.HorizontalSubtract(f3, f4)),
            S("haddpd nan", d0, d1, a => a.haddpd(xmm2, xmm1), Sse3.HorizontalAdd(d0, d1)),
            S("haddpd", d2, d4, a => a.haddpd(xmm2, xmm1), Sse3.HorizontalAdd(d2, d4)),
            S("hsubpd nan", d1, d0, a => a.hsubpd(xmm2, xmm1), Sse3.HorizontalSubtract(d1, d0)),
            S("hsubpd", d3, d2, a => a.hsubpd(xmm2, xmm1), Sse3.HorizontalSubtract(d3, d2)),
            S("movshdup", f2, f0, a => a.movshdup(xmm2, xmm1), Sse3.MoveHighAndDuplicate(f0)),
            S("movsldup", f2, f0, a => a.movsldup(xmm2, __xmmword_ptr[rbx]), Sse3.MoveLowAndDuplicate(f0)),
            S("movddup", d2, d0, a => a.movddup(xmm2, xmm1), Sse3.MoveAndDuplicate(d0)),
            S("movddup m64", d2, d1, a => a.movddup(xmm2, __qword_ptr[rbx]), Sse3.MoveAndDuplicate(d1)),
            S("lddqu", d2, d1, a => a.lddqu(xmm2, __xmmword_ptr[rbx]), d1),
            S("dpps 0xff", f2, f3, a => a.dpps(xmm2, xmm1, 0xff), Sse41.DotProduct(f2, f3, 0xff)),
            S("dpps 0x35", f2, f4, a => a.dpps(xmm2, xmm1, 0x35), Sse41.DotProduct(f2, f4, 0x35)),
            S("dpps 0xd2", f3, f4, a => a.dpps(xmm2, __xmmword_ptr[rbx], 0xd2), Sse41.DotProduct(f3, f4, 0xd2)),
            S("dpps nan", f0, f1, a => a.dpps(xmm2, xmm1, 0xf1), Sse41.DotProduct(f0, f1, 0xf1)),
            S("dpps nan masked", f0, f2, a => a.dpps(xmm2, xmm1, 0x4c), Sse41.DotProduct(f0, f2, 0x4c)),
            S("dppd 0x33", d2, d4, a => a.dppd(xmm2, xmm1, 0x33), Sse41.DotProduct(d2, d4, 0x33)),
            S("dppd 0x12", d3, d2, a => a.dppd(xmm2, xmm1, 0x12), Sse41.DotProduct(d3, d2, 0x12)),
            S("dppd nan", d0, d1, a => a.dppd(xmm2, xmm1, 0x31), Sse41.DotProduct(d0, d1, 0x31)),
            S("blendps 0x5", f2, f4, a => a.blendps(xmm2, xmm1, 0x5), Sse41.Blend(f2, f4, 0x5)),
            S("blendpd 0x2", d2, d4, a => a.blendpd(xmm2, __xmmword_ptr[rbx], 0x2), Sse41.Blend(d2, d4, 0x2)),
            S("blendvps", f2, f4, a => a.blendvps(xmm2, xmm1), Sse41.BlendVariable(f2, f4, fm)),
            S("blendvpd", d2, d4, a => a.blendvpd(xmm2, xmm1), Sse41.BlendVariable(d2, d4, dm)),
            S("insertps 0x9a", f2, f4, a => a.insertps(xmm2, xmm1, 0x9a), Sse41.Insert(f2, f4, 0x9a)),
            S("insertps 0xe0", f2, f4, a => a.insertps(xmm2, xmm1, 0xe0), Sse41.Insert(f2, f4, 0xe0)),
            S("insertps m32 0x31", f2, f4, a => a.insertps(xmm2, __dword_ptr[rbx], 0x31), Sse41.Insert(f2, Vector128.CreateScalar(f4.GetElement(0)), 0x31)),
        };
        foreach (var (v, name) in new[] { (f0, "specials"), (f1, "nans"), (f2, "halves"), (f3, "near"), (f4, "wide") })
        {
            foreach (byte mode in new byte[] { 0x8, 0x9, 0xa, 0xb, 0xc, 0x0, 0x1, 0x2, 0x3, 0x4 })
            {
                var x = v;
                steps.Add(S($"roundps {name} {mode:x}", f2, x, a => a.roundps(xmm2, xmm1, mode), RoundPs(x, mode)));
                steps.Add(S($"roundss {name} {mode:x}", f3, x, a => a.roundss(xmm2, xmm1, mode), RoundSs(f3, x, mode)));
            }
        }
        foreach (var (v, name) in new[] { (d0, "nan"), (d1, "-0"), (d2, "halves"), (d3, "near"), (d4, "wide") })
        {
            foreach (byte mode in new byte[] { 0x8, 0x9, 0xa, 0xb, 0xc })
            {
                var x = v;
                steps.Add(S($"roundpd {name} {mode:x}", d2, x, a => a.roundpd(xmm2, __xmmword_ptr[rbx], mode), RoundPd(x, mode)));
                steps.Add(S($"roundsd {name} {mode:x}", d3, x, a => a.roundsd(xmm2, __qword_ptr[rbx], mode), RoundSd(d3, x, mode)));
            }
        }
        RunSteps(ctx, mask.AsByte(), [.. steps]);
    }

    // ROUND* through the intrinsic with the mode as a constant (the JIT needs one; imm8 bit 3 only suppresses PE).
    private static Vector128<float> RoundPs(Vector128<float> x, byte mode) => (mode & 7) switch
    {
        0 => Sse41.RoundToNearestInteger(x),
        1 => Sse41.RoundToNegativeInfinity(x),
        2 => Sse41.RoundToPositiveInfinity(x),
        3 => Sse41.RoundToZero(x),
        _ => Sse41.RoundCurrentDirection(x),
    };

    private static Vector128<float> RoundSs(Vector128<float> upper, Vector128<float> x, byte mode) => (mode & 7) switch
    {
        0 => Sse41.RoundToNearestIntegerScalar(upper, x),
        1 => Sse41.RoundToNegativeInfinityScalar(upper, x),
        2 => Sse41.RoundToPositiveInfinityScalar(upper, x),
        3 => Sse41.RoundToZeroScalar(upper, x),
        _ => Sse41.RoundCurrentDirectionScalar(upper, x),
    };

    private static Vector128<double> RoundPd(Vector128<double> x, byte mode) => (mode & 7) switch
    {
        0 => Sse41.RoundToNearestInteger(x),
        1 => Sse41.RoundToNegativeInfinity(x),
        2 => Sse41.RoundToPositiveInfinity(x),
        3 => Sse41.RoundToZero(x),
        _ => Sse41.RoundCurrentDirection(x),
    };

    private static Vector128<double> RoundSd(Vector128<double> upper, Vector128<double> x, byte mode) => (mode & 7) switch
    {
        0 => Sse41.RoundToNearestIntegerScalar(upper, x),
        1 => Sse41.RoundToNegativeInfinityScalar(upper, x),
        2 => Sse41.RoundToPositiveInfinityScalar(upper, x),
        3 => Sse41.RoundToZeroScalar(upper, x),
        _ => Sse41.RoundCurrentDirectionScalar(upper, x),
    };

    [ConformanceCase("Intel SDM Vol. 2 PHADD/PHSUB W/D/SW, PMADDUBSW, PMULHRSW, PSIGN B/W/D, PABS B/W/D (SSSE3); PMIN/PMAX SB/UW/SD/UD, PMULLD, PMULDQ, PACKUSDW, PCMPEQQ, PBLENDW, PBLENDVB, MPSADBW, PHMINPOSUW, PMOVSX/ZX (xmm and m), PINSRB/PINSRD (SSE4.1); PCMPGTQ (SSE4.2): results on the integer minimums and maximums, as this CPU computes them")]
    public static void sse_v2_integer_matches_the_cpu(CaseContext ctx)
    {
        var b0 = Vector128.Create((byte)0x01, 0x80, 0xff, 0x7f, 0x10, 0x20, 0xfe, 0x00, 0x33, 0x44, 0x55, 0x66, 0x99, 0xaa, 0xbb, 0xcc);
        var b1 = Vector128.Create((byte)0xff, 0x80, 0x01, 0x81, 0x0f, 0x21, 0x02, 0x00, 0x8d, 0x0c, 0x03, 0x0a, 0x99, 0x55, 0x80, 0x0d);
        var w0 = Vector128.Create((short)-32768, 32767, -1, 0, 12345, -12345, 256, -32767);
        var w1 = Vector128.Create((short)-32768, 32767, 32767, -32768, -2, 3, 0x4000, 1);
        var d0 = Vector128.Create(int.MinValue, int.MaxValue, -1, 7);
        var d1 = Vector128.Create(int.MinValue, -5, int.MaxValue, 0);
        var q0 = Vector128.Create(long.MinValue, 5L);
        var q1 = Vector128.Create(long.MaxValue, 5L);
        var q2 = Vector128.Create(-1L, long.MinValue);
        var mask = Vector128.Create((byte)0x80, 0x7f, 0xff, 0, 0x81, 1, 0xc0, 0x40, 0x80, 0x80, 0, 0, 0xff, 0x7f, 0x80, 1);
        Step[] steps =
        [
            S("phaddw", w0, w1, a => a.phaddw(xmm2, xmm1), Ssse3.HorizontalAdd(w0, w1)),
            S("phaddd", d0, d1, a => a.phaddd(xmm2, xmm1), Ssse3.HorizontalAdd(d0, d1)),
            S("phaddsw", w0, w1, a => a.phaddsw(xmm2, __xmmword_ptr[rbx]), Ssse3.HorizontalAddSaturate(w0, w1)),
            S("phsubw", w0, w1, a => a.phsubw(xmm2, xmm1), Ssse3.HorizontalSubtract(w0, w1)),
            S("phsubd", d0, d1, a => a.phsubd(xmm2, xmm1), Ssse3.HorizontalSubtract(d0, d1)),
            S("phsubsw", w0, w1, a => a.phsubsw(xmm2, xmm1), Ssse3.HorizontalSubtractSaturate(w0, w1)),
            S("pmaddubsw", b0, b1, a => a.pmaddubsw(xmm2, xmm1), Ssse3.MultiplyAddAdjacent(b0, b1.AsSByte())),
            S("pmaddubsw sat", Vector128.Create((byte)0xff), Vector128.Create((byte)0x7f), a => a.pmaddubsw(xmm2, xmm1),
                Ssse3.MultiplyAddAdjacent(Vector128.Create((byte)0xff), Vector128.Create((sbyte)0x7f))),
            S("pmulhrsw", w0, w1, a => a.pmulhrsw(xmm2, xmm1), Ssse3.MultiplyHighRoundScale(w0, w1)),
            S("psignb", b0, b1, a => a.psignb(xmm2, xmm1), Ssse3.Sign(b0.AsSByte(), b1.AsSByte())),
            S("psignw", w0, w1, a => a.psignw(xmm2, xmm1), Ssse3.Sign(w0, w1)),
            S("psignd", d0, d1, a => a.psignd(xmm2, xmm1), Ssse3.Sign(d0, d1)),
            S("pabsb", b0, b1, a => a.pabsb(xmm2, xmm1), Ssse3.Abs(b1.AsSByte())),
            S("pabsw", w0, w0, a => a.pabsw(xmm2, xmm1), Ssse3.Abs(w0)),
            S("pabsd", d0, d1, a => a.pabsd(xmm2, __xmmword_ptr[rbx]), Ssse3.Abs(d1)),
            S("pminsb", b0, b1, a => a.pminsb(xmm2, xmm1), Sse41.Min(b0.AsSByte(), b1.AsSByte())),
            S("pmaxsb", b0, b1, a => a.pmaxsb(xmm2, xmm1), Sse41.Max(b0.AsSByte(), b1.AsSByte())),
            S("pminuw", w0, w1, a => a.pminuw(xmm2, xmm1), Sse41.Min(w0.AsUInt16(), w1.AsUInt16())),
            S("pmaxuw", w0, w1, a => a.pmaxuw(xmm2, xmm1), Sse41.Max(w0.AsUInt16(), w1.AsUInt16())),
            S("pminsd", d0, d1, a => a.pminsd(xmm2, xmm1), Sse41.Min(d0, d1)),
            S("pmaxsd", d0, d1, a => a.pmaxsd(xmm2, xmm1), Sse41.Max(d0, d1)),
            S("pminud", d0, d1, a => a.pminud(xmm2, xmm1), Sse41.Min(d0.AsUInt32(), d1.AsUInt32())),
            S("pmaxud", d0, d1, a => a.pmaxud(xmm2, __xmmword_ptr[rbx]), Sse41.Max(d0.AsUInt32(), d1.AsUInt32())),
            S("pmulld", d0, d1, a => a.pmulld(xmm2, xmm1), Sse41.MultiplyLow(d0, d1)),
            S("pmuldq", d0, d1, a => a.pmuldq(xmm2, xmm1), Sse41.Multiply(d0, d1)),
            S("packusdw", d0, d1, a => a.packusdw(xmm2, xmm1), Sse41.PackUnsignedSaturate(d0, d1)),
            S("pcmpeqq", q0, Vector128.Create(long.MinValue, 6L), a => a.pcmpeqq(xmm2, xmm1), Sse41.CompareEqual(q0, Vector128.Create(long.MinValue, 6L))),
            S("pcmpgtq", q0, q1, a => a.pcmpgtq(xmm2, xmm1), Sse42.CompareGreaterThan(q0, q1)),
            S("pcmpgtq 2", q1, q2, a => a.pcmpgtq(xmm2, xmm1), Sse42.CompareGreaterThan(q1, q2)),
            S("pblendw 0xa5", w0, w1, a => a.pblendw(xmm2, xmm1, 0xa5), Sse41.Blend(w0, w1, 0xa5)),
            S("pblendvb", b0, b1, a => a.pblendvb(xmm2, xmm1), Sse41.BlendVariable(b0, b1, mask)),
            S("mpsadbw 0", b0, b1, a => a.mpsadbw(xmm2, xmm1, 0), Sse41.MultipleSumAbsoluteDifferences(b0, b1, 0)),
            S("mpsadbw 7", b0, b1, a => a.mpsadbw(xmm2, xmm1, 7), Sse41.MultipleSumAbsoluteDifferences(b0, b1, 7)),
            S("mpsadbw 6", b1, b0, a => a.mpsadbw(xmm2, __xmmword_ptr[rbx], 6), Sse41.MultipleSumAbsoluteDifferences(b1, b0, 6)),
            S("phminposuw", w0, w1, a => a.phminposuw(xmm2, xmm1), Sse41.MinHorizontal(w1.AsUInt16())),
            S("phminposuw ties", w0.AsUInt16(), Vector128.Create((ushort)9, 3, 7, 3, 3, 8, 3, 4), a => a.phminposuw(xmm2, xmm1),
                Sse41.MinHorizontal(Vector128.Create((ushort)9, 3, 7, 3, 3, 8, 3, 4))),
            S("pmovsxbw", b0, b1, a => a.pmovsxbw(xmm2, xmm1), Sse41.ConvertToVector128Int16(b1.AsSByte())),
            S("pmovsxbd m32", b0, b1, a => a.pmovsxbd(xmm2, __dword_ptr[rbx]), Sse41.ConvertToVector128Int32(b1.AsSByte())),
            S("pmovsxbq", b0, b1, a => a.pmovsxbq(xmm2, xmm1), Sse41.ConvertToVector128Int64(b1.AsSByte())),
            S("pmovsxwd m64", w0, w1, a => a.pmovsxwd(xmm2, __qword_ptr[rbx]), Sse41.ConvertToVector128Int32(w1)),
            S("pmovsxwq", w0, w1, a => a.pmovsxwq(xmm2, xmm1), Sse41.ConvertToVector128Int64(w1)),
            S("pmovsxdq", d0, d1, a => a.pmovsxdq(xmm2, xmm1), Sse41.ConvertToVector128Int64(d1)),
            S("pmovzxbw m64", b0, b1, a => a.pmovzxbw(xmm2, __qword_ptr[rbx]), Sse41.ConvertToVector128Int16(b1)),
            S("pmovzxbd", b0, b1, a => a.pmovzxbd(xmm2, xmm1), Sse41.ConvertToVector128Int32(b1)),
            S("pmovzxbq m16", b0, b1, a => a.pmovzxbq(xmm2, __word_ptr[rbx]), Sse41.ConvertToVector128Int64(b1)),
            S("pmovzxwd", w0, w1, a => a.pmovzxwd(xmm2, xmm1), Sse41.ConvertToVector128Int32(w1.AsUInt16())),
            S("pmovzxwq", w0, w1, a => a.pmovzxwq(xmm2, xmm1), Sse41.ConvertToVector128Int64(w1.AsUInt16())),
            S("pmovzxdq", d0, d1, a => a.pmovzxdq(xmm2, xmm1), Sse41.ConvertToVector128Int64(d1.AsUInt32())),
            S("pinsrb m8 13", b0, b1, a => a.pinsrb(xmm2, __byte_ptr[rbx], 13), Sse41.Insert(b0, b1.GetElement(0), 13)),
            S("pinsrd m32 2", d0, d1, a => a.pinsrd(xmm2, __dword_ptr[rbx], 6), Sse41.Insert(d0, d1.GetElement(0), 2)),
        ];
        RunSteps(ctx, mask, steps);
    }

    [ConformanceCase("Intel SDM Vol. 2 PEXTRB/PEXTRW (0F 3A 15)/PEXTRD/EXTRACTPS r and m, PINSRB from r32, CRC32 r32/r64 on r/m8/16/32/64 (CRC-32C), MOVNTDQA: results as this CPU computes them; CRC32 leaves the flags alone")]
    public static void sse_v2_extract_insert_and_crc32(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var v = Vector128.Create((byte)0x80, 0x11, 0x7f, 0xff, 0x22, 0x33, 0x44, 0x85, 1, 2, 3, 0x84, 0x90, 0x55, 0x66, 0xc0);
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.movdqu(xmm3, __xmmword_ptr[Data]);
            a.mov(rax, -1L);
            a.pextrb(eax, xmm3, 7);
            a.mov(rbx, -1L);
            a.pextrw(__word_ptr[Data + 0x41], xmm3, 13); // 0F 3A 15 memory form (imm 13 → word 5)
            a.pextrd(ebx, xmm3, 3);
            a.mov(rcx, -1L);
            a.extractps(rcx, xmm3, 1);
            a.pextrb(__byte_ptr[Data + 0x40], xmm3, 31);
            a.extractps(__dword_ptr[Data + 0x44], xmm3, 2);
            a.mov(edx, 0xabcd);
            a.pinsrb(xmm3, edx, 4);
            a.movntdqa(xmm4, __xmmword_ptr[Data]);
            a.movdqu(__xmmword_ptr[Data + 0x50], xmm3);
            a.movdqu(__xmmword_ptr[Data + 0x60], xmm4);
            a.mov(rsi, unchecked((long)0xffff_ffff_1234_5678UL));
            a.crc32(esi, al);
            a.crc32(esi, __word_ptr[Data + 2]);
            a.crc32(esi, ebx);
            a.mov(rdi, 0x1_8765_4321L);
            a.crc32(rdi, rcx);
            a.crc32(rdi, __byte_ptr[Data + 5]);
            a.crc32(rdi, __qword_ptr[Data + 8]);
            a.stc();
            a.crc32(esi, __dword_ptr[Data + 12]);
            a.pushfq();
            a.pop(rdx);
            a.hlt();
        }, Halting);
        g.Vcpu.SetCpuid(FeatureTable(kvm));
        g.Guest.Memory.Write(Data, Bytes(v));
        g.Guest.Memory.Fill(Data + 0x40, 0x10, 0xee);
        var exit = g.Vcpu.Run();
        if (HostCannotRun(ctx, g, exit.Reason)) return;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
        Assert.Empty(g.Deliveries);
        var r = g.Vcpu.GetRegs();
        Assert.Equal((ulong)Sse41.Extract(v, 7), r.rax);
        Assert.Equal((ulong)Sse41.Extract(v.AsUInt32(), 3), r.rbx);
        Assert.Equal((ulong)v.AsUInt32().GetElement(1), r.rcx);
        byte[] m = new byte[8];
        g.Guest.Memory.Read(Data + 0x40, m);
        Assert.Equal(Sse41.Extract(v, 15), m[0]);
        Assert.Equal(Sse2.Extract(v.AsUInt16(), 5), BitConverter.ToUInt16(m, 1));
        Assert.Equal(v.AsUInt32().GetElement(2), BitConverter.ToUInt32(m, 4));
        byte[] x3 = new byte[16], x4 = new byte[16];
        g.Guest.Memory.Read(Data + 0x50, x3);
        g.Guest.Memory.Read(Data + 0x60, x4);
        Assert.Equal(Bytes(Sse41.Insert(v, 0xcd, 4)), x3);
        Assert.Equal(Bytes(v), x4);
        uint crc = Sse42.Crc32(0x1234_5678u, (byte)r.rax);
        crc = Sse42.Crc32(crc, v.AsUInt16().GetElement(1));
        crc = Sse42.Crc32(crc, (uint)r.rbx);
        crc = Sse42.Crc32(crc, v.AsUInt32().GetElement(3));
        ulong crc64 = Sse42.X64.Crc32(0x1_8765_4321UL, r.rcx);
        crc64 = Sse42.Crc32((uint)crc64, v.GetElement(5));
        crc64 = Sse42.X64.Crc32(crc64, v.AsUInt64().GetElement(1));
        Assert.Equal((ulong)crc, r.rsi);
        Assert.Equal(crc64, r.rdi);
        Assert.Equal(1UL, r.rdx & 1); // CF from STC survives CRC32
    }

    [ConformanceCase("Intel SDM Vol. 2A 2.5 / Vol. 3A 13.1 legacy SIMD exception classes and each instruction's CPUID feature flag: HADDPS without SSE3, PABSB without SSSE3, PMINSD/ROUNDPS without SSE4.1, PCMPGTQ/CRC32 without SSE4.2 -> #UD; OSFXSR = 0 -> #UD, CR0.TS -> #NM; a misaligned m128 of PMINSD/MOVNTDQA -> #GP(0); PMOVZXBW m64, ROUNDSD m64, INSERTPS m32 and LDDQU m128 need no alignment; CRC32 is not an SSE instruction: OSFXSR = 0 and CR0.TS do not affect it")]
    public static void sse_v2_faults(CaseContext ctx)
    {
        const ulong CR0_TS = 1 << 3, CR4_OSFXSR = 1 << 9;
        const int UD = 6, NM = 7, GP = 13, None = -1;
        (string What, Action<Assembler> Op, ulong Cr0, ulong Cr4Clear, uint CpuidClear, int Vector)[] cases =
        [
            ("HADDPS without SSE3", a => a.haddps(xmm0, xmm1), 0, 0, 1u << 0, UD),
            ("PABSB without SSSE3", a => a.pabsb(xmm0, xmm1), 0, 0, 1u << 9, UD),
            ("PMINSD without SSE4.1", a => a.pminsd(xmm0, xmm1), 0, 0, 1u << 19, UD),
            ("ROUNDPS without SSE4.1", a => a.roundps(xmm0, xmm1, 4), 0, 0, 1u << 19, UD),
            ("PCMPGTQ without SSE4.2", a => a.pcmpgtq(xmm0, xmm1), 0, 0, 1u << 20, UD),
            ("CRC32 without SSE4.2", a => a.crc32(eax, ebx), 0, 0, 1u << 20, UD),
            ("DPPS without OSFXSR", a => a.dpps(xmm0, xmm1, 0xff), 0, CR4_OSFXSR, 0, UD),
            ("PMULLD with CR0.TS", a => a.pmulld(xmm0, xmm1), CR0_TS, 0, 0, NM),
            ("PMINSD m128 at +8", a => a.pminsd(xmm0, __xmmword_ptr[Data + 8]), 0, 0, 0, GP),
            ("MOVNTDQA m128 at +8", a => a.movntdqa(xmm0, __xmmword_ptr[Data + 8]), 0, 0, 0, GP),
            ("PMOVZXBW m64 at +1", a => a.pmovzxbw(xmm0, __qword_ptr[Data + 1]), 0, 0, 0, None),
            ("ROUNDSD m64 at +4", a => a.roundsd(xmm0, __qword_ptr[Data + 4], 1), 0, 0, 0, None),
            ("INSERTPS m32 at +1", a => a.insertps(xmm0, __dword_ptr[Data + 1], 0x10), 0, 0, 0, None),
            ("LDDQU m128 at +1", a => a.lddqu(xmm0, __xmmword_ptr[Data + 1]), 0, 0, 0, None),
            ("CRC32 with CR0.TS and OSFXSR clear", a => a.crc32(eax, __byte_ptr[Data + 3]), CR0_TS, CR4_OSFXSR, 0, None),
        ];
        using var kvm = ctx.OpenKvm();
        var table = FeatureTable(kvm);
        foreach (var (what, op, cr0, cr4Clear, cpuidClear, vector) in cases)
        {
            using var g = IdtGuest.Create(kvm, a => { op(a); a.mov(eax, 0x77); a.hlt(); }, Halting);
            g.Vcpu.SetCpuid([.. table.Select(e => e.Function == 1 ? e with { Ecx = e.Ecx & ~cpuidClear } : e)]);
            var sregs = g.Vcpu.GetSregs();
            sregs.cr0 |= cr0;
            sregs.cr4 &= ~cr4Clear;
            g.Vcpu.SetSregs(sregs);
            var exit = g.Vcpu.Run();
            if (HostCannotRun(ctx, g, exit.Reason)) continue;
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.ToString()}");
            if (vector == None)
            {
                Assert.True(g.Deliveries.Count == 0, $"{what}: {string.Join(", ", g.Deliveries)}");
                Assert.Equal(0x77UL, g.Vcpu.GetRegs().rax);
                continue;
            }
            var d = g.Single();
            Assert.True(d.Vector == (ulong)vector && d.Rip == LongModeGuest.CodeGpa, $"{what}: {d}");
            Assert.Equal(vector == GP ? 0UL : null, d.ErrorCode);
        }
    }
}
