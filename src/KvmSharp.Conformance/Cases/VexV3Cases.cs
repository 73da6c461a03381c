// SPDX-License-Identifier: MIT
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using KvmSharp.Conformance.Guests;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.Cases.SimdSteps;
using Step = KvmSharp.Conformance.Cases.SimdSteps.YmmStep;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The VEX forms of the legacy SSE arithmetic (three operands, VEX.128 zeroing bits 255:128, VEX.256 per 128-bit lane)
/// and the AVX2 permutes, broadcasts, inserts and variable shifts gcc -O2 -march=x86-64-v3 emits (Intel SDM Vol. 2 per
/// instruction), against this host's CPU through System.Runtime.Intrinsics (Avx, Avx2). kvm_pvm decodes no VEX
/// (<see cref="ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator"/>): its KVM_EXIT_INTERNAL_ERROR is asserted there.
/// </summary>
public static class VexV3Cases
{
    private const ulong In = 0x9_0000, Out = 0xC_0000;
    private const ulong CR4_OSXSAVE = 1 << 18;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>The kernel's supported CPUID with CPUID.1 ECX SSE3/SSSE3/FMA/SSE4.1/SSE4.2/XSAVE/AVX/F16C and CPUID.7.0 EBX AVX2.</summary>
    private static CpuidEntry[] FeatureTable(Kvm kvm) =>
    [
        .. kvm.GetSupportedCpuid().Select(e => e.Function switch
        {
            1 => e with { Ecx = e.Ecx | 1u | (1u << 9) | (1u << 12) | (1u << 19) | (1u << 20) | (1u << 26) | (1u << 28) | (1u << 29) },
            7 when e.Index == 0 => e with { Ebx = e.Ebx | (1u << 5) },
            _ => e,
        }),
    ];

    [ConformanceCase("Intel SDM Vol. 2 VEX.128/VEX.256 VPADDD, VPSUBUSB, VPMADDWD, VPSHUFB, VPALIGNR, VPACKSSDW, VPUNPCKLBW, VPSHUFD, VPSLLD by xmm/imm, VPMINSD, VPMULLD, VPCMPGTQ, VADDPS, VMULPD, VDIVPS, VMAXPS, VADDSS, VBLENDVPS, VPBLENDVB; AVX2 VPBROADCASTD/Q, VBROADCASTSS, VPERMQ, VPERMD, VPERM2I128, VINSERTI128, VPSLLVD, VPSRLVQ, VPSRAVD, VPBLENDD; VBLENDPS/VSHUFPD/VMPSADBW ymm (the upper lane's imm8 bits), VSHUFPS, VUNPCKHPS, VPMOVZX/SX ymm, VCVTTPD2DQ ymm, VCVTPS2PD ymm, VMOVSS: results as this CPU computes them, VEX.128 zeroing bits 255:128")]
    public static void vex_arithmetic_matches_the_cpu(CaseContext ctx)
    {
        if (!Avx2.IsSupported) return; // no oracle on this host
        var i0 = Vector256.Create(1, -2, int.MaxValue, int.MinValue, 0x12345678, -1, 7, 0x40000000);
        var i1 = Vector256.Create(-5, 3, 1, -1, 0x0f0f0f0f, 31, 33, 2);
        var b0 = Vector256.Create((byte)0x80, 0x7f, 0, 0xff, 0x10, 0x83, 5, 0x9c, 1, 2, 3, 4, 0xf0, 0x0e, 0x8f, 0x11,
            0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x81);
        var b1 = Vector256.Create((byte)3, 0x8f, 15, 0, 0x31, 7, 0x80, 9, 14, 1, 13, 2, 12, 3, 11, 4,
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0x85);
        var f0 = Vector256.Create(1.5f, -2.25f, float.NaN, 0f, 3e38f, -0f, 1e-40f, 7f);
        var f1 = Vector256.Create(2f, 0.5f, 1f, -0f, 3e38f, 1f, 1e-3f, float.NegativeInfinity);
        var d0 = Vector256.Create(1.5, -0.1, 1e308, 3.0);
        var d1 = Vector256.Create(3.0, 7.0, 10.0, -0.0);
        var q0 = i0.AsInt64();
        var q1 = i1.AsInt64();
        var mask = Vector256.Create(0x80000000u, 0, 0xffffffffu, 0x7fffffffu, 0x80000000u, 1, 0, 0x80000000u);
        var steps = new List<Step>
        {
            S("vpaddd ymm", i0, i1, a => a.vpaddd(ymm2, ymm2, ymm1), Avx2.Add(i0, i1)),
            S("vpaddd ymm m256", i0, i1, a => a.vpaddd(ymm2, ymm2, __ymmword_ptr[rbx]), Avx2.Add(i0, i1)),
            S128("vpaddd xmm", i0, i1, a => a.vpaddd(xmm2, xmm2, xmm1), Sse2.Add(i0.GetLower(), i1.GetLower())),
            S("vpsubusb ymm", b0, b1, a => a.vpsubusb(ymm2, ymm2, ymm1), Avx2.SubtractSaturate(b0, b1)),
            S("vpmaddwd ymm", i0.AsInt16(), i1.AsInt16(), a => a.vpmaddwd(ymm2, ymm2, ymm1), Avx2.MultiplyAddAdjacent(i0.AsInt16(), i1.AsInt16())),
            S("vpshufb ymm", b0, b1, a => a.vpshufb(ymm2, ymm2, ymm1), Avx2.Shuffle(b0, b1)),
            S("vpalignr ymm 5", b0, b1, a => a.vpalignr(ymm2, ymm2, ymm1, 5), Avx2.AlignRight(b0, b1, 5)),
            S("vpackssdw ymm", i0, i1, a => a.vpackssdw(ymm2, ymm2, ymm1), Avx2.PackSignedSaturate(i0, i1)),
            S("vpunpcklbw ymm", b0, b1, a => a.vpunpcklbw(ymm2, ymm2, ymm1), Avx2.UnpackLow(b0, b1)),
            S("vpshufd ymm 0x1b", i0, i1, a => a.vpshufd(ymm2, ymm1, 0x1b), Avx2.Shuffle(i1, 0x1b)),
            S("vpslld ymm xmm", i0, Vector256.Create(3, 0, 0, 0, 9, 9, 9, 9), a => a.vpslld(ymm2, ymm2, xmm1), Avx2.ShiftLeftLogical(i0, Vector128.Create(3, 0, 0, 0))),
            S("vpsrad ymm 4", i1, i0, a => a.vpsrad(ymm2, ymm1, 4), Avx2.ShiftRightArithmetic(i0, 4)),
            S("vpminsd ymm", i0, i1, a => a.vpminsd(ymm2, ymm2, ymm1), Avx2.Min(i0, i1)),
            S("vpmulld ymm", i0, i1, a => a.vpmulld(ymm2, ymm2, ymm1), Avx2.MultiplyLow(i0, i1)),
            S("vpcmpgtq ymm", q0, q1, a => a.vpcmpgtq(ymm2, ymm2, ymm1), Avx2.CompareGreaterThan(q0, q1)),
            S("vaddps ymm", f0, f1, a => a.vaddps(ymm2, ymm2, ymm1), Avx.Add(f0, f1)),
            S("vmulpd ymm", d0, d1, a => a.vmulpd(ymm2, ymm2, __ymmword_ptr[rbx]), Avx.Multiply(d0, d1)),
            S("vdivps ymm", f0, f1, a => a.vdivps(ymm2, ymm2, ymm1), Avx.Divide(f0, f1)),
            S("vmaxps ymm", f0, f1, a => a.vmaxps(ymm2, ymm2, ymm1), Avx.Max(f0, f1)),
            S128("vaddss", f0, f1, a => a.vaddss(xmm2, xmm1, xmm2), Sse.AddScalar(f1.GetLower(), f0.GetLower())),
            S("vblendvps ymm", f0, f1, a => a.vblendvps(ymm2, ymm2, ymm1, ymm0), Avx.BlendVariable(f0, f1, mask.AsSingle())),
            S("vpblendvb ymm", b0, b1, a => a.vpblendvb(ymm2, ymm2, ymm1, ymm0), Avx2.BlendVariable(b0, b1, mask.AsByte())),
            S("vpbroadcastd ymm", i0, i1, a => a.vpbroadcastd(ymm2, xmm1), Avx2.BroadcastScalarToVector256(i1.GetLower())),
            S128("vpbroadcastq xmm m64", q0, q1, a => a.vpbroadcastq(xmm2, __qword_ptr[rbx]), Avx2.BroadcastScalarToVector128(q1.GetLower())),
            S("vbroadcastss ymm", f0, f1, a => a.vbroadcastss(ymm2, __dword_ptr[rbx]), Vector256.Create(f1.GetElement(0))),
            S("vpermq 0x4e", q0, q1, a => a.vpermq(ymm2, ymm1, 0x4e), Avx2.Permute4x64(q1, 0x4e)),
            S("vpermd", i1, i0, a => a.vpermd(ymm2, ymm2, ymm1), Avx2.PermuteVar8x32(i0, i1)),
            S("vperm2i128 0x21", i0, i1, a => a.vperm2i128(ymm2, ymm2, ymm1, 0x21), Avx2.Permute2x128(i0, i1, 0x21)),
            S("vperm2i128 0x83", i0, i1, a => a.vperm2i128(ymm2, ymm2, __ymmword_ptr[rbx], 0x83), Avx2.Permute2x128(i0, i1, 0x83)),
            S("vinserti128 1", i0, i1, a => a.vinserti128(ymm2, ymm2, xmm1, 1), Avx2.InsertVector128(i0, i1.GetLower(), 1)),
            S("vpsllvd ymm", i0, i1, a => a.vpsllvd(ymm2, ymm2, ymm1), Avx2.ShiftLeftLogicalVariable(i0, i1.AsUInt32())),
            S("vpsrlvq ymm", q0, q1, a => a.vpsrlvq(ymm2, ymm2, ymm1), Avx2.ShiftRightLogicalVariable(q0, q1.AsUInt64())),
            S("vpsravd ymm", i0, i1, a => a.vpsravd(ymm2, ymm2, ymm1), Avx2.ShiftRightArithmeticVariable(i0, i1.AsUInt32())),
            S("vpblendd ymm 0xa5", i0, i1, a => a.vpblendd(ymm2, ymm2, ymm1, 0xa5), Avx2.Blend(i0, i1, 0xa5)),
            // The interpreter runs the legacy twin on YMM14/YMM15 (and XMM0 for the is4 mask): the guest's own use of them.
            S("vpaddd ymm14, ymm2, ymm15", i0, i1, a => { a.vmovdqa(ymm15, ymm1); a.vpaddd(ymm14, ymm2, ymm15); a.vmovdqa(ymm2, ymm14); }, Avx2.Add(i0, i1)),
            S("vpshufb ymm15, ymm15, ymm14", b0, b1, a => { a.vmovdqa(ymm15, ymm2); a.vmovdqa(ymm14, ymm1); a.vpshufb(ymm15, ymm15, ymm14); a.vmovdqa(ymm2, ymm15); }, Avx2.Shuffle(b0, b1)),
            S("vblendvps ymm14, ymm15, ymm14, ymm0", f0, f1, a => { a.vmovdqa(ymm15, ymm2); a.vmovdqa(ymm14, ymm1); a.vblendvps(ymm14, ymm15, ymm14, ymm0); a.vmovdqa(ymm2, ymm14); }, Avx.BlendVariable(f0, f1, mask.AsSingle())),
            S("vblendps ymm 0x5c", f0, f1, a => a.vblendps(ymm2, ymm2, ymm1, 0x5c), Avx.Blend(f0, f1, 0x5c)),
            S("vshufpd ymm 0x6", d0, d1, a => a.vshufpd(ymm2, ymm2, ymm1, 0x6), Avx.Shuffle(d0, d1, 0x6)),
            S("vshufps ymm 0x4e", f0, f1, a => a.vshufps(ymm2, ymm2, ymm1, 0x4e), Avx.Shuffle(f0, f1, 0x4e)),
            S("vmpsadbw ymm 0x2d", b0, b1, a => a.vmpsadbw(ymm2, ymm2, ymm1, 0x2d), Avx2.MultipleSumAbsoluteDifferences(b0, b1, 0x2d)),
            S("vpmovzxwd ymm", i0, i1, a => a.vpmovzxwd(ymm2, xmm1), Avx2.ConvertToVector256Int32(i1.GetLower().AsUInt16())),
            S("vpmovsxbw ymm m128", b0, b1, a => a.vpmovsxbw(ymm2, __xmmword_ptr[rbx]), Avx2.ConvertToVector256Int16(b1.GetLower().AsSByte())),
            S128("vcvttpd2dq ymm", d0, d1, a => a.vcvttpd2dq(xmm2, ymm1), Avx.ConvertToVector128Int32WithTruncation(d1)),
            S("vcvtps2pd ymm", f0, f1, a => a.vcvtps2pd(ymm2, xmm1), Avx.ConvertToVector256Double(f1.GetLower())),
            S("vunpckhps ymm", f0, f1, a => a.vunpckhps(ymm2, ymm2, ymm1), Avx.UnpackHigh(f0, f1)),
            S128("vmovss m32", f0, f1, a => a.vmovss(xmm2, __dword_ptr[rbx]), Vector128.CreateScalar(f1.GetElement(0))),
            S128("vmovss reg", f0, f1, a => a.vmovss(xmm2, xmm2, xmm1), f0.GetLower().WithElement(0, f1.GetElement(0))),
        };
        RunSteps(ctx, mask.AsByte(), [.. steps]);
    }

    // The CPU's FMSUB/FNMADD negate values, not a NaN operand (C#'s unary minus flips a NaN's sign bit).
    private static float Fm(float a, float b, float c, bool neg, bool sub) =>
        MathF.FusedMultiplyAdd(neg && !float.IsNaN(a) ? -a : a, b, sub && !float.IsNaN(c) ? -c : c);

    private static double Fm(double a, double b, double c, bool neg, bool sub) =>
        Math.FusedMultiplyAdd(neg && !double.IsNaN(a) ? -a : a, b, sub && !double.IsNaN(c) ? -c : c);

    [ConformanceCase("Intel SDM Vol. 2 VFMADD/VFMSUB/VFNMADD/VFNMSUB 132/213/231 PS/PD (VEX.128/256) and SS/SD: one rounding of the exact a x b + c (halfway and cancelling cases, overflow, denormals, -0 sums, inf x 0, a NaN operand), as this CPU's FMA computes it")]
    public static void fma_matches_the_cpu(CaseContext ctx)
    {
        if (!Fma.IsSupported) return; // no oracle on this host
        var third = Vector256.Create(1e-3f, -2f, float.PositiveInfinity, 0f, 1e-45f, 3e38f, -1f, 1f);
        var x = Vector256.Create(1.1f, 3f, 0f, -0f, 2f, 2f, 1.0000001f, 16777216f);
        var y = Vector256.Create(0.3f, 6f, 1f, -0f, 1e-45f, -3e38f, 1.0000001f, float.NaN);
        var dx = Vector256.Create(1.1, 3.0, 1e308, -0.0);
        var dy = Vector256.Create(0.3, -2.0, 10.0, 0.0);
        var dz = Vector256.Create(-0.33, 6.0, -1e308, -0.0);
        var steps = new List<Step>();
        foreach (var (neg, sub, tag) in new[] { (false, false, "vfmadd"), (false, true, "vfmsub"), (true, false, "vfnmadd"), (true, true, "vfnmsub") })
        {
            // dest = YMM2 (x), src2 = YMM1 (y), src3 = YMM0 (third): 132 x*third+y, 213 y*x+third, 231 y*third+x.
            Vector256<float> P(Func<int, float> f) => Vector256.Create([.. Enumerable.Range(0, 8).Select(f)]);
            var e132 = P(k => Fm(x[k], third[k], y[k], neg, sub));
            var e213 = P(k => Fm(y[k], x[k], third[k], neg, sub));
            var e231 = P(k => Fm(y[k], third[k], x[k], neg, sub));
            Action<Assembler> ps132 = tag switch { "vfmadd" => a => a.vfmadd132ps(ymm2, ymm1, ymm0), "vfmsub" => a => a.vfmsub132ps(ymm2, ymm1, ymm0), "vfnmadd" => a => a.vfnmadd132ps(ymm2, ymm1, ymm0), _ => a => a.vfnmsub132ps(ymm2, ymm1, ymm0) };
            Action<Assembler> ps213 = tag switch { "vfmadd" => a => a.vfmadd213ps(ymm2, ymm1, ymm0), "vfmsub" => a => a.vfmsub213ps(ymm2, ymm1, ymm0), "vfnmadd" => a => a.vfnmadd213ps(ymm2, ymm1, ymm0), _ => a => a.vfnmsub213ps(ymm2, ymm1, ymm0) };
            Action<Assembler> ps231 = tag switch { "vfmadd" => a => a.vfmadd231ps(xmm2, xmm1, xmm0), "vfmsub" => a => a.vfmsub231ps(xmm2, xmm1, xmm0), "vfnmadd" => a => a.vfnmadd231ps(xmm2, xmm1, xmm0), _ => a => a.vfnmsub231ps(xmm2, xmm1, xmm0) };
            Action<Assembler> ss231 = tag switch { "vfmadd" => a => a.vfmadd231ss(xmm2, xmm1, xmm0), "vfmsub" => a => a.vfmsub231ss(xmm2, xmm1, xmm0), "vfnmadd" => a => a.vfnmadd231ss(xmm2, xmm1, xmm0), _ => a => a.vfnmsub231ss(xmm2, xmm1, xmm0) };
            steps.Add(S($"{tag}132ps ymm", x, y, ps132, e132));
            steps.Add(S($"{tag}213ps ymm", x, y, ps213, e213));
            steps.Add(S128($"{tag}231ps xmm", x, y, ps231, e231.GetLower()));
            steps.Add(S128($"{tag}231ss", x, y, ss231, x.GetLower().WithElement(0, e231[0])));
            Vector256<double> D(Func<int, double> f) => Vector256.Create([.. Enumerable.Range(0, 4).Select(f)]);
            Action<Assembler> pd213 = tag switch { "vfmadd" => a => a.vfmadd213pd(ymm2, ymm1, __ymmword_ptr[rbx + 32]), "vfmsub" => a => a.vfmsub213pd(ymm2, ymm1, __ymmword_ptr[rbx + 32]), "vfnmadd" => a => a.vfnmadd213pd(ymm2, ymm1, __ymmword_ptr[rbx + 32]), _ => a => a.vfnmsub213pd(ymm2, ymm1, __ymmword_ptr[rbx + 32]) };
            Action<Assembler> sd132 = tag switch { "vfmadd" => a => a.vfmadd132sd(xmm2, xmm1, __qword_ptr[rbx + 32]), "vfmsub" => a => a.vfmsub132sd(xmm2, xmm1, __qword_ptr[rbx + 32]), "vfnmadd" => a => a.vfnmadd132sd(xmm2, xmm1, __qword_ptr[rbx + 32]), _ => a => a.vfnmsub132sd(xmm2, xmm1, __qword_ptr[rbx + 32]) };
            steps.Add(new($"{tag}213pd ymm m256", dx.AsByte(), dy.AsByte(), pd213, D(k => Fm(dy[k], dx[k], dz[k], neg, sub)).AsByte(), dz.AsByte()));
            steps.Add(new($"{tag}132sd m64", dx.AsByte(), dy.AsByte(), sd132, Vector256.Create(dx.GetLower().WithElement(0, Fm(dx[0], dz[0], dy[0], neg, sub)).AsByte(), Vector128<byte>.Zero), dz.AsByte()));
        }
        RunSteps(ctx, third.AsByte(), [.. steps]);
    }

    private static Vector256<ushort> ToHalf(Vector256<float> v) =>
        Vector256.Create([.. Enumerable.Range(0, 8).Select(k => BitConverter.HalfToUInt16Bits((Half)v[k])), .. new ushort[8]]);

    private static Vector256<float> FromHalf(Vector256<ushort> v, int count) =>
        Vector256.Create([.. Enumerable.Range(0, 8).Select(k => k < count ? (float)BitConverter.UInt16BitsToHalf(v[k]) : 0f)]);

    [ConformanceCase("Intel SDM Vol. 2 VCVTPS2PH (imm8 round-to-nearest and MXCSR.RC, ymm and xmm sources, register and m64 destinations) and VCVTPH2PS (xmm/ymm, m128): IEEE binary16 rounding, overflow to infinity, denormal halves, -0")]
    public static void f16c_converts_like_ieee_binary16(CaseContext ctx)
    {
        var f = Vector256.Create(1f, 65504f, 65520f, 1e-8f, 6.1e-5f, -2.5f, 1.00048828125f, 0.1f);
        var g = Vector256.Create(-0f, 3e-7f, 1.00146484375f, -65519.99f, 2049f, 1e-3f, float.NegativeInfinity, 5.960464e-8f);
        var h = Vector256.Create((ushort)0x3c00, 0x7bff, 0x0001, 0x8000, 0xfc00, 0x03ff, 0x0400, 0xc7ff, 0, 0, 0, 0, 0, 0, 0, 0);
        var steps = new List<Step>
        {
            S("vcvtps2ph ymm 0", f, g, a => a.vcvtps2ph(xmm2, ymm1, 0), ToHalf(g)),
            S("vcvtps2ph ymm 4", g, f, a => a.vcvtps2ph(xmm2, ymm1, 4), ToHalf(f)),
            S("vcvtps2ph xmm m64", g, f, a => { a.vcvtps2ph(__qword_ptr[rbx + 32], xmm1, 0); a.vmovdqu(ymm2, __ymmword_ptr[rbx + 32]); },
                Vector256.Create(ToHalf(f).GetLower().AsUInt64().WithElement(1, 0UL).AsUInt16(), Vector128<ushort>.Zero)),
            S("vcvtph2ps ymm", h, h, a => a.vcvtph2ps(ymm2, xmm1), FromHalf(h, 8)),
            S("vcvtph2ps xmm m64", h, h, a => a.vcvtph2ps(xmm2, __qword_ptr[rbx]), FromHalf(h, 4)),
        };
        RunSteps(ctx, Vector256<byte>.Zero, [.. steps]);
    }

    /// <summary>YMM0 = <paramref name="mask"/>; per step: YMM2 = First, YMM1 = Second (RBX its address, Third after it), the instruction, YMM2 stored.</summary>
    private static void RunSteps(CaseContext ctx, Vector256<byte> mask, Step[] steps)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Mask = 0x8_9000;
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.vmovdqu(ymm0, __ymmword_ptr[Mask]);
            EmitSteps(a, In, Out, steps);
            a.hlt();
        }, Halting);
        g.Vcpu.SetCpuid(FeatureTable(kvm));
        var s = g.Vcpu.GetSregs();
        s.cr4 |= CR4_OSXSAVE;
        g.Vcpu.SetSregs(s);
        g.Vcpu.SetXcr0(7);
        g.Guest.Memory.Write(Mask, Bytes(mask));
        RunAndCompare(ctx, g, In, Out, steps);
    }
}
