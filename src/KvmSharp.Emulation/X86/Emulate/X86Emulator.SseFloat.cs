// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Legacy-SSE/SSE2 floating point (Intel SDM Vol. 1 ch. 10–11, Vol. 2 per instruction): MOVSS/MOVSD, the scalar and
/// packed ADD/SUB/MUL/DIV/MIN/MAX/SQRT, AND/ANDN/OR PS/PD, (U)COMISS/SD, the CVT family, SHUFPS/PD, UNPCKL/H PS/PD,
/// MOVHLPS/MOVLHPS and MOVMSKPS/PD. Arithmetic is <see cref="SseArithmetic"/> under MXCSR; the flags an instruction
/// raises are ORed into MXCSR and an unmasked one is #XM with CR4.OSXMMEXCPT, else #UD, with the destination
/// unchanged (SDM Vol. 1 11.5.1 / Vol. 3A 6.15 "Interrupt 19"). Fault order as <see cref="RequireLegacySse"/>; a
/// packed m128 operand must be 16-byte aligned (unless MXCSR.MM), a scalar one need not be.
/// </summary>
internal sealed partial class X86Emulator
{
    private const int XM_VECTOR = 19;
    private const ulong CR4_OSXMMEXCPT = 1UL << 10;

    /// <summary>The instructions of this file; false when the mnemonic is none of them (or an MMX form).</summary>
    private bool TrySseFloat(in Instruction i, ref ulong f)
    {
        if (i.Encoding != EncodingKind.Legacy || !UsesOnlyXmm(i)) return false;
        switch (i.Mnemonic)
        {
            case Mnemonic.Addss or Mnemonic.Subss or Mnemonic.Mulss or Mnemonic.Divss or Mnemonic.Minss or Mnemonic.Maxss
                or Mnemonic.Addps or Mnemonic.Subps or Mnemonic.Mulps or Mnemonic.Divps or Mnemonic.Minps or Mnemonic.Maxps:
                RequireLegacySse(feature: true);
                FloatArithmetic(i, FloatFormat.Single, ArithmeticOp(i.Mnemonic));
                return true;
            case Mnemonic.Addsd or Mnemonic.Subsd or Mnemonic.Mulsd or Mnemonic.Divsd or Mnemonic.Minsd or Mnemonic.Maxsd
                or Mnemonic.Addpd or Mnemonic.Subpd or Mnemonic.Mulpd or Mnemonic.Divpd or Mnemonic.Minpd or Mnemonic.Maxpd:
                RequireLegacySse(feature: true);
                FloatArithmetic(i, FloatFormat.Double, ArithmeticOp(i.Mnemonic));
                return true;
            case Mnemonic.Sqrtss or Mnemonic.Sqrtps or Mnemonic.Sqrtsd or Mnemonic.Sqrtpd:
                RequireLegacySse(feature: true);
                FloatSqrt(i, i.Mnemonic is Mnemonic.Sqrtsd or Mnemonic.Sqrtpd ? FloatFormat.Double : FloatFormat.Single);
                return true;
            case Mnemonic.Movss or Mnemonic.Movsd:
                if (i.Code is not (Code.Movss_xmm_xmmm32 or Code.Movss_xmmm32_xmm or Code.Movsd_xmm_xmmm64 or Code.Movsd_xmmm64_xmm)) return false;
                RequireLegacySse(feature: true);
                MoveScalarFloat(i, i.Mnemonic == Mnemonic.Movss ? 4 : 8);
                return true;
            case Mnemonic.Andps or Mnemonic.Andpd or Mnemonic.Andnps or Mnemonic.Andnpd or Mnemonic.Orps or Mnemonic.Orpd
                or Mnemonic.Shufps or Mnemonic.Shufpd or Mnemonic.Unpcklps or Mnemonic.Unpcklpd or Mnemonic.Unpckhps or Mnemonic.Unpckhpd
                or Mnemonic.Movhlps or Mnemonic.Movlhps:
                RequireLegacySse(feature: true);
                FloatBitwise(i);
                return true;
            case Mnemonic.Cmpss or Mnemonic.Cmpsd or Mnemonic.Cmpps or Mnemonic.Cmppd:
                if (i.OpCount != 3 || i.GetOpKind(0) != OpKind.Register) return false; // CMPSD the string compare
                RequireLegacySse(feature: true);
                FloatCompareMask(i);
                return true;
            case Mnemonic.Movlps or Mnemonic.Movhps or Mnemonic.Movlpd or Mnemonic.Movhpd:
                RequireLegacySse(feature: true);
                MoveHalf(i);
                return true;
            case Mnemonic.Movmskps or Mnemonic.Movmskpd:
                RequireLegacySse(feature: true);
                MoveMask(i);
                return true;
            case Mnemonic.Ucomiss or Mnemonic.Comiss or Mnemonic.Ucomisd or Mnemonic.Comisd:
                RequireLegacySse(feature: true);
                CompareOrdered(i, ref f);
                return true;
            case Mnemonic.Cvtsi2ss or Mnemonic.Cvtsi2sd or Mnemonic.Cvtss2sd or Mnemonic.Cvtsd2ss
                or Mnemonic.Cvtss2si or Mnemonic.Cvtsd2si or Mnemonic.Cvttss2si or Mnemonic.Cvttsd2si:
                RequireLegacySse(feature: true);
                ConvertScalar(i);
                return true;
            case Mnemonic.Cvtdq2pd or Mnemonic.Cvtdq2ps or Mnemonic.Cvttps2dq or Mnemonic.Cvttpd2dq or Mnemonic.Cvtps2dq
                or Mnemonic.Cvtpd2dq or Mnemonic.Cvtps2pd or Mnemonic.Cvtpd2ps:
                RequireLegacySse(feature: true);
                ConvertPacked(i);
                return true;
            default:
                return false;
        }
    }

    private static SseArithmetic.Op ArithmeticOp(Mnemonic m) => m switch
    {
        Mnemonic.Addss or Mnemonic.Addsd or Mnemonic.Addps or Mnemonic.Addpd => SseArithmetic.Op.Add,
        Mnemonic.Subss or Mnemonic.Subsd or Mnemonic.Subps or Mnemonic.Subpd => SseArithmetic.Op.Sub,
        Mnemonic.Mulss or Mnemonic.Mulsd or Mnemonic.Mulps or Mnemonic.Mulpd => SseArithmetic.Op.Mul,
        Mnemonic.Divss or Mnemonic.Divsd or Mnemonic.Divps or Mnemonic.Divpd => SseArithmetic.Op.Div,
        Mnemonic.Minss or Mnemonic.Minsd or Mnemonic.Minps or Mnemonic.Minpd => SseArithmetic.Op.Min,
        _ => SseArithmetic.Op.Max,
    };

    /// <summary>A scalar form works on the low element; the packed forms (…PS/…PD) on all of them.</summary>
    private static bool IsScalarForm(Mnemonic m) => m is Mnemonic.Addss or Mnemonic.Subss or Mnemonic.Mulss or Mnemonic.Divss
        or Mnemonic.Minss or Mnemonic.Maxss or Mnemonic.Addsd or Mnemonic.Subsd or Mnemonic.Mulsd or Mnemonic.Divsd
        or Mnemonic.Minsd or Mnemonic.Maxsd;

    /// <summary>
    /// Source operand <paramref name="op"/>: the low <paramref name="size"/> bytes of an XMM register, or
    /// <paramref name="size"/> bytes of memory (a 16-byte one of a form that requires alignment checked by
    /// <see cref="LegacyAlignment"/>).
    /// </summary>
    private void ReadXmmSource(in Instruction i, int op, Span<byte> value, int size, bool aligned = true)
    {
        value.Clear();
        if (i.GetOpKind(op) == OpKind.Register)
        {
            VectorRegisters.Low(Vec, VectorIndex(i.GetOpRegister(op)))[..size].CopyTo(value);
            return;
        }
        int alignment = size == 16 ? LegacyAlignment(aligned, nonTemporal: false) : 1;
        AccessMemory(VectorLinear(i, alignment), value[..size], write: false);
    }

    /// <summary>ORs the flags into MXCSR; an unmasked one is #XM (CR4.OSXMMEXCPT) or #UD, before any write.</summary>
    private void CommitMxcsr(SseArithmetic math)
    {
        Vec.Fpu.mxcsr |= math.Flags;
        if (math.Unmasked) throw new GuestFault((_cpu.Sregs.cr4 & CR4_OSXMMEXCPT) != 0 ? XM_VECTOR : UD_VECTOR);
    }

    private static ulong VectorLane(ReadOnlySpan<byte> v, int k, int size) =>
        size == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(v[(k * 4)..]) : BinaryPrimitives.ReadUInt64LittleEndian(v[(k * 8)..]);

    private static void SetVectorLane(Span<byte> v, int k, int size, ulong value)
    {
        if (size == 4) BinaryPrimitives.WriteUInt32LittleEndian(v[(k * 4)..], (uint)value);
        else BinaryPrimitives.WriteUInt64LittleEndian(v[(k * 8)..], value);
    }

    /// <summary>ADD/SUB/MUL/DIV/MIN/MAX SS/SD/PS/PD xmm1, xmm2/m: a scalar form keeps the upper elements of xmm1.</summary>
    private void FloatArithmetic(in Instruction i, FloatFormat fmt, SseArithmetic.Op op) =>
        FloatLanes(i, fmt, IsScalarForm(i.Mnemonic), new BinaryLane(op));

    /// <summary>CMPSS/CMPSD (upper elements kept) and CMPPS/CMPPD xmm1, xmm2/m, imm8: a mask of all ones or zeros per element.</summary>
    private void FloatCompareMask(in Instruction i) =>
        FloatLanes(i, i.Mnemonic is Mnemonic.Cmpss or Mnemonic.Cmpps ? FloatFormat.Single : FloatFormat.Double,
            scalar: i.Mnemonic is Mnemonic.Cmpss or Mnemonic.Cmpsd, new CompareLane((int)(i.GetImmediate(2) & 7)));

    /// <summary>
    /// The element loop the arithmetic forms share: xmm1's elements — only the low one for a scalar form, which keeps
    /// the upper ones — become <paramref name="lane"/> of xmm1's and the source's; MXCSR's flags are committed once, so
    /// an unmasked exception leaves xmm1 as it was.
    /// </summary>
    private void FloatLanes<TLane>(in Instruction i, FloatFormat fmt, bool scalar, TLane lane) where TLane : struct, IFloatLane
    {
        int size = fmt.Bits / 8;
        int dest = VectorIndex(i.Op0Register);
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16];
        VectorRegisters.Read(Vec, dest, a);
        ReadXmmSource(i, 1, b, scalar ? size : 16);
        var math = new SseArithmetic(Vec.Fpu.mxcsr);
        int count = scalar ? 1 : 16 / size;
        for (int k = 0; k < count; k++) SetVectorLane(a, k, size, lane.Apply(math, VectorLane(a, k, size), VectorLane(b, k, size), fmt));
        CommitMxcsr(math);
        VectorRegisters.WriteLegacy(Vec, dest, a);
    }

    /// <summary>One element's operation in <see cref="FloatLanes"/> (a struct: no allocation per instruction).</summary>
    private interface IFloatLane
    {
        ulong Apply(SseArithmetic math, ulong dest, ulong source, FloatFormat fmt);
    }

    private readonly struct BinaryLane(SseArithmetic.Op op) : IFloatLane
    {
        public ulong Apply(SseArithmetic math, ulong dest, ulong source, FloatFormat fmt) => math.Binary(op, dest, source, fmt);
    }

    private readonly struct CompareLane(int predicate) : IFloatLane
    {
        public ulong Apply(SseArithmetic math, ulong dest, ulong source, FloatFormat fmt) => math.CompareMask(dest, source, fmt, predicate);
    }

    private readonly struct SqrtLane : IFloatLane
    {
        public ulong Apply(SseArithmetic math, ulong dest, ulong source, FloatFormat fmt) => math.Sqrt(source, fmt);
    }

    /// <summary>
    /// MOVLPS/MOVLPD/MOVHPS/MOVHPD: xmm, m64 loads the low (high) quadword keeping the other; m64, xmm stores it.
    /// MOVHLPS/MOVLHPS are the register forms of 0F 12/16 and go to <see cref="FloatBitwise"/>.
    /// </summary>
    private void MoveHalf(in Instruction i)
    {
        int half = i.Mnemonic is Mnemonic.Movhps or Mnemonic.Movhpd ? 8 : 0;
        Span<byte> v = stackalloc byte[16];
        if (i.GetOpKind(0) != OpKind.Register)
        {
            VectorRegisters.Low(Vec, VectorIndex(i.GetOpRegister(1))).Slice(half, 8).CopyTo(v);
            AccessMemory(VectorLinear(i, 1), v[..8], write: true);
            return;
        }
        int dest = VectorIndex(i.Op0Register);
        VectorRegisters.Read(Vec, dest, v);
        AccessMemory(VectorLinear(i, 1), v.Slice(half, 8), write: false);
        VectorRegisters.WriteLegacy(Vec, dest, v);
    }

    /// <summary>SQRTSS/SQRTSD (upper elements of xmm1 kept) and SQRTPS/SQRTPD.</summary>
    private void FloatSqrt(in Instruction i, FloatFormat fmt) =>
        FloatLanes(i, fmt, scalar: i.Mnemonic is Mnemonic.Sqrtss or Mnemonic.Sqrtsd, new SqrtLane());

    /// <summary>
    /// MOVSS/MOVSD (F3/F2 0F 10/11): xmm, xmm merges the low element; xmm, m zero-extends the element to 128 bits;
    /// m, xmm stores the element.
    /// </summary>
    private void MoveScalarFloat(in Instruction i, int size)
    {
        Span<byte> v = stackalloc byte[16];
        if (i.GetOpKind(0) != OpKind.Register)
        {
            VectorRegisters.Low(Vec, VectorIndex(i.GetOpRegister(1)))[..size].CopyTo(v);
            AccessMemory(VectorLinear(i, 1), v[..size], write: true);
            return;
        }
        int dest = VectorIndex(i.Op0Register);
        if (i.GetOpKind(1) == OpKind.Register) VectorRegisters.Read(Vec, dest, v);
        else v.Clear();
        Span<byte> s = stackalloc byte[16];
        ReadXmmSource(i, 1, s, size);
        s[..size].CopyTo(v);
        VectorRegisters.WriteLegacy(Vec, dest, v);
    }

    /// <summary>AND/ANDN/OR PS/PD, SHUFPS/SHUFPD, UNPCKL/H PS/PD, MOVHLPS/MOVLHPS: bit moves, no MXCSR effect.</summary>
    private void FloatBitwise(in Instruction i)
    {
        int dest = VectorIndex(i.Op0Register);
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16], r = stackalloc byte[16];
        VectorRegisters.Read(Vec, dest, a);
        ReadXmmSource(i, 1, b, 16);
        a.CopyTo(r);
        switch (i.Mnemonic)
        {
            case Mnemonic.Andps or Mnemonic.Andpd:
                for (int k = 0; k < 16; k++) r[k] = (byte)(a[k] & b[k]);
                break;
            case Mnemonic.Andnps or Mnemonic.Andnpd:
                for (int k = 0; k < 16; k++) r[k] = (byte)(~a[k] & b[k]);
                break;
            case Mnemonic.Orps or Mnemonic.Orpd:
                for (int k = 0; k < 16; k++) r[k] = (byte)(a[k] | b[k]);
                break;
            case Mnemonic.Shufps:
            {
                int imm = (int)i.GetImmediate(2);
                for (int k = 0; k < 4; k++) SetVectorLane(r, k, 4, VectorLane(k < 2 ? a : b, (imm >> (2 * k)) & 3, 4));
                break;
            }
            case Mnemonic.Shufpd:
            {
                int imm = (int)i.GetImmediate(2);
                SetVectorLane(r, 0, 8, VectorLane(a, imm & 1, 8));
                SetVectorLane(r, 1, 8, VectorLane(b, (imm >> 1) & 1, 8));
                break;
            }
            case Mnemonic.Unpcklps or Mnemonic.Unpckhps:
            {
                int from = i.Mnemonic == Mnemonic.Unpcklps ? 0 : 2;
                for (int k = 0; k < 2; k++)
                {
                    SetVectorLane(r, 2 * k, 4, VectorLane(a, from + k, 4));
                    SetVectorLane(r, 2 * k + 1, 4, VectorLane(b, from + k, 4));
                }
                break;
            }
            case Mnemonic.Unpcklpd or Mnemonic.Unpckhpd:
            {
                int from = i.Mnemonic == Mnemonic.Unpcklpd ? 0 : 1;
                SetVectorLane(r, 0, 8, VectorLane(a, from, 8));
                SetVectorLane(r, 1, 8, VectorLane(b, from, 8));
                break;
            }
            case Mnemonic.Movhlps:
                SetVectorLane(r, 0, 8, VectorLane(b, 1, 8));
                break;
            default: // MOVLHPS
                SetVectorLane(r, 1, 8, VectorLane(b, 0, 8));
                break;
        }
        VectorRegisters.WriteLegacy(Vec, dest, r);
    }

    /// <summary>MOVMSKPS/MOVMSKPD r32/r64, xmm: the sign bits of the elements, zero-extended.</summary>
    private void MoveMask(in Instruction i)
    {
        ReadOnlySpan<byte> v = VectorRegisters.Low(Vec, VectorIndex(i.GetOpRegister(1)));
        int size = i.Mnemonic == Mnemonic.Movmskps ? 4 : 8;
        ulong mask = 0;
        for (int k = 0; k < 16 / size; k++) mask |= (ulong)(v[k * size + size - 1] >> 7) << k;
        WriteReg(i.Op0Register, mask);
    }

    /// <summary>(U)COMISS/(U)COMISD xmm1, xmm2/m: ZF/PF/CF from the comparison, OF/SF/AF cleared; an unmasked IE/DE leaves RFLAGS.</summary>
    private void CompareOrdered(in Instruction i, ref ulong f)
    {
        var fmt = i.Mnemonic is Mnemonic.Ucomiss or Mnemonic.Comiss ? FloatFormat.Single : FloatFormat.Double;
        int size = fmt.Bits / 8;
        Span<byte> b = stackalloc byte[16];
        ReadXmmSource(i, 1, b, size);
        ulong a = VectorLane(VectorRegisters.Low(Vec, VectorIndex(i.Op0Register)), 0, size);
        var math = new SseArithmetic(Vec.Fpu.mxcsr);
        var (zf, pf, cf) = math.Compare(a, VectorLane(b, 0, size), fmt, signalQuiet: i.Mnemonic is Mnemonic.Comiss or Mnemonic.Comisd);
        CommitMxcsr(math);
        f = (f & ~RFLAGS_ARITH) | (zf ? RFLAGS_ZF : 0) | (pf ? RFLAGS_PF : 0) | (cf ? RFLAGS_CF : 0);
    }

    /// <summary>CVTSI2SS/SD (r/m32 or, with REX.W, r/m64), CVTSS2SD/CVTSD2SS, CVT(T)SS2SI/CVT(T)SD2SI r32/r64.</summary>
    private void ConvertScalar(in Instruction i)
    {
        var math = new SseArithmetic(Vec.Fpu.mxcsr);
        switch (i.Mnemonic)
        {
            case Mnemonic.Cvtsi2ss or Mnemonic.Cvtsi2sd:
            {
                int size = i.Code is Code.Cvtsi2ss_xmm_rm64 or Code.Cvtsi2sd_xmm_rm64 ? 8 : 4;
                ulong raw = ReadOp(i, 1, size);
                long value = size == 4 ? (int)raw : (long)raw;
                var to = i.Mnemonic == Mnemonic.Cvtsi2ss ? FloatFormat.Single : FloatFormat.Double;
                ulong r = math.FromInteger(value, to);
                CommitMxcsr(math);
                WriteLowElement(i.Op0Register, to.Bits / 8, r);
                return;
            }
            case Mnemonic.Cvtss2sd or Mnemonic.Cvtsd2ss:
            {
                var (from, to) = i.Mnemonic == Mnemonic.Cvtss2sd ? (FloatFormat.Single, FloatFormat.Double) : (FloatFormat.Double, FloatFormat.Single);
                Span<byte> b = stackalloc byte[16];
                ReadXmmSource(i, 1, b, from.Bits / 8);
                ulong r = math.Convert(VectorLane(b, 0, from.Bits / 8), from, to);
                CommitMxcsr(math);
                WriteLowElement(i.Op0Register, to.Bits / 8, r);
                return;
            }
            default:
            {
                var from = i.Mnemonic is Mnemonic.Cvtss2si or Mnemonic.Cvttss2si ? FloatFormat.Single : FloatFormat.Double;
                Span<byte> b = stackalloc byte[16];
                ReadXmmSource(i, 1, b, from.Bits / 8);
                int size = i.Op0Register.GetSize();
                ulong r = math.ToInteger(VectorLane(b, 0, from.Bits / 8), from, size, truncate: i.Mnemonic is Mnemonic.Cvttss2si or Mnemonic.Cvttsd2si);
                CommitMxcsr(math);
                WriteReg(i.Op0Register, r);
                return;
            }
        }
    }

    /// <summary>Writes the low element of XMM <paramref name="reg"/>, keeping the rest (the scalar CVT forms).</summary>
    private void WriteLowElement(Register reg, int size, ulong value)
    {
        Span<byte> v = stackalloc byte[16];
        int n = VectorIndex(reg);
        VectorRegisters.Read(Vec, n, v);
        SetVectorLane(v, 0, size, value);
        VectorRegisters.WriteLegacy(Vec, n, v);
    }

    /// <summary>
    /// CVTDQ2PD/CVTPS2PD (two low elements of xmm/m64), CVTDQ2PS, CVT(T)PS2DQ (four), CVT(T)PD2DQ/CVTPD2PS (two results,
    /// the upper quadword zeroed).
    /// </summary>
    private void ConvertPacked(in Instruction i)
    {
        var math = new SseArithmetic(Vec.Fpu.mxcsr);
        bool widening = i.Mnemonic is Mnemonic.Cvtdq2pd or Mnemonic.Cvtps2pd;
        Span<byte> b = stackalloc byte[16], r = stackalloc byte[16];
        ReadXmmSource(i, 1, b, widening ? 8 : 16);
        r.Clear();
        switch (i.Mnemonic)
        {
            case Mnemonic.Cvtdq2pd:
                for (int k = 0; k < 2; k++) SetVectorLane(r, k, 8, math.FromInteger((int)VectorLane(b, k, 4), FloatFormat.Double));
                break;
            case Mnemonic.Cvtps2pd:
                for (int k = 0; k < 2; k++) SetVectorLane(r, k, 8, math.Convert(VectorLane(b, k, 4), FloatFormat.Single, FloatFormat.Double));
                break;
            case Mnemonic.Cvtdq2ps:
                for (int k = 0; k < 4; k++) SetVectorLane(r, k, 4, math.FromInteger((int)VectorLane(b, k, 4), FloatFormat.Single));
                break;
            case Mnemonic.Cvtps2dq or Mnemonic.Cvttps2dq:
                for (int k = 0; k < 4; k++) SetVectorLane(r, k, 4, math.ToInteger(VectorLane(b, k, 4), FloatFormat.Single, 4, i.Mnemonic == Mnemonic.Cvttps2dq));
                break;
            case Mnemonic.Cvtpd2dq or Mnemonic.Cvttpd2dq:
                for (int k = 0; k < 2; k++) SetVectorLane(r, k, 4, math.ToInteger(VectorLane(b, k, 8), FloatFormat.Double, 4, i.Mnemonic == Mnemonic.Cvttpd2dq));
                break;
            default: // CVTPD2PS
                for (int k = 0; k < 2; k++) SetVectorLane(r, k, 4, math.Convert(VectorLane(b, k, 8), FloatFormat.Double, FloatFormat.Single));
                break;
        }
        CommitMxcsr(math);
        VectorRegisters.WriteLegacy(Vec, VectorIndex(i.Op0Register), r);
    }
}
