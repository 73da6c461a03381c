// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The VEX-encoded general-purpose-register instructions of x86-64-v3 (Intel SDM Vol. 2 per instruction page; AMD
/// APM Vol. 3): BMI1 ANDN, BEXTR, BLSI, BLSMSK, BLSR and BMI2 BZHI, MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX.
/// (LZCNT, TZCNT and MOVBE are legacy-encoded and run in X86Emulator.IntegerExtras.cs.) Exceptions (SDM Vol. 2A 2.8,
/// Table 2-29 "Type 13 Class Exception Conditions" for VEX GPR instructions): #UD in real and virtual-8086 mode, with
/// VEX.L = 1, or when the guest CPUID lacks CPUID.(EAX=07H,ECX=0):EBX.BMI1[3] / .BMI2[8] — the same guest-CPUID gate
/// as the AVX instructions (<see cref="RequireAvx"/>); CR4.OSXSAVE and XCR0 do not matter (no vector state).
/// <para>
/// Flags (SDM "Flags Affected" of each page): ANDN SF ZF by the result, OF CF cleared; BEXTR ZF by the result, CF OF
/// cleared; BLSI ZF SF by the result, CF = source ≠ 0, OF cleared; BLSMSK SF by the result, ZF OF cleared, CF = source
/// = 0; BLSR ZF SF by the result, CF = source = 0, OF cleared; BZHI ZF SF by the result, CF = index &gt; operand size −
/// 1, OF cleared; the BMI2 rest leave RFLAGS alone. The flags left undefined (AF, PF; also SF for BEXTR) take what this
/// project's AMD EPYC hosts do, probed natively with pushfq (/tmp C probe, both with every flag clear and set): PF is
/// the parity of the result's low byte, AF is cleared, except BEXTR which sets AF.
/// </para>
/// <para>
/// kvm_pvm runs its guests' instructions through KVM's emulator, which decodes no VEX: these end KVM_RUN in
/// KVM_EXIT_INTERNAL_ERROR there (asserted by BmiV3Cases); upstream on hardware runs them natively.
/// </para>
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The BMI1/BMI2 GPR instructions; false for any other.</summary>
    private bool TryBmi(in Instruction i, ref ulong f)
    {
        if (i.Encoding != EncodingKind.VEX) return false;
        bool bmi2;
        switch (i.Mnemonic)
        {
            case Mnemonic.Andn or Mnemonic.Bextr or Mnemonic.Blsi or Mnemonic.Blsmsk or Mnemonic.Blsr:
                bmi2 = false;
                break;
            case Mnemonic.Bzhi or Mnemonic.Mulx or Mnemonic.Pdep or Mnemonic.Pext or Mnemonic.Rorx or Mnemonic.Sarx
                or Mnemonic.Shlx or Mnemonic.Shrx:
                bmi2 = true;
                break;
            default:
                return false;
        }
        // SDM Vol. 2A Table 2-29: #UD outside protected mode, in virtual-8086 mode, and without the CPUID feature
        // (Iced decodes VEX.L = 1 of these as INVALID, which the fetch already raises as #UD).
        if (!_cpu.ProtectedMode || (_cpu.Rflags & RFLAGS_VM) != 0 || !(bmi2 ? GuestFeatures.Bmi2(_cpu) : GuestFeatures.Bmi1(_cpu)))
            throw new GuestFault(UD_VECTOR);
        int size = OpSize(i, 0);
        int bits = size * 8;
        ulong mask = Alu.Mask(size);
        switch (i.Mnemonic)
        {
            case Mnemonic.Andn: // ANDN r1, r2 (vvvv), r/m: r1 = ~r2 & r/m
            {
                ulong r = ~ReadOp(i, 1, size) & ReadOp(i, 2, size) & mask;
                BmiFlags(ref f, r, size, cf: false, zf: r == 0, sf: true, af: false);
                WriteOp(i, 0, size, r);
                return true;
            }
            case Mnemonic.Bextr: // BEXTR r1, r/m, r2 (vvvv): start r2[7:0], length r2[15:8]
            {
                ulong src = ReadOp(i, 1, size), ctl = ReadOp(i, 2, size);
                int start = (int)(ctl & 0xff), len = (int)(ctl >> 8 & 0xff);
                ulong r = start >= bits ? 0 : src >> start;
                if (len < 64) r &= (1UL << len) - 1;
                BmiFlags(ref f, r, size, cf: false, zf: r == 0, sf: true, af: true);
                WriteOp(i, 0, size, r);
                return true;
            }
            case Mnemonic.Blsi or Mnemonic.Blsmsk or Mnemonic.Blsr: // r1 (vvvv), r/m
            {
                ulong src = ReadOp(i, 1, size);
                ulong r = i.Mnemonic switch
                {
                    Mnemonic.Blsi => src & (0 - src),
                    Mnemonic.Blsmsk => src ^ (src - 1),
                    _ => src & (src - 1),
                } & mask;
                bool cf = i.Mnemonic == Mnemonic.Blsi ? src != 0 : src == 0;
                BmiFlags(ref f, r, size, cf, zf: i.Mnemonic != Mnemonic.Blsmsk && r == 0, sf: true, af: false);
                WriteOp(i, 0, size, r);
                return true;
            }
            case Mnemonic.Bzhi: // BZHI r1, r/m, r2 (vvvv): N = r2[7:0]
            {
                ulong src = ReadOp(i, 1, size);
                int n = (int)(ReadOp(i, 2, size) & 0xff);
                ulong r = n < bits ? src & ((1UL << n) - 1) : src;
                BmiFlags(ref f, r, size, cf: n > bits - 1, zf: r == 0, sf: true, af: false);
                WriteOp(i, 0, size, r);
                return true;
            }
            case Mnemonic.Mulx: // MULX r1 (high), r2 (vvvv, low), r/m: rDX × r/m unsigned; r1 written last (wins if r1 = r2)
            {
                ulong a = ReadReg(size == 8 ? Register.RDX : Register.EDX), b = ReadOp(i, 2, size);
                ulong hi, lo;
                if (size == 8) hi = Math.BigMul(a, b, out lo);
                else { ulong p = a * b; lo = p & 0xffff_ffff; hi = p >> 32; }
                WriteOp(i, 1, size, lo);
                WriteOp(i, 0, size, hi);
                return true;
            }
            case Mnemonic.Pdep or Mnemonic.Pext: // r1, r2 (vvvv), r/m (the mask)
            {
                ulong src = ReadOp(i, 1, size), sel = ReadOp(i, 2, size);
                WriteOp(i, 0, size, i.Mnemonic == Mnemonic.Pdep ? Deposit(src, sel) : Extract(src, sel));
                return true;
            }
            case Mnemonic.Rorx: // RORX r1, r/m, imm8: count imm8 mod operand size
            {
                ulong src = ReadOp(i, 1, size);
                int c = (int)(i.GetImmediate(2) & (ulong)(bits - 1));
                WriteOp(i, 0, size, c == 0 ? src : ((src >> c) | (src << (bits - c))) & mask);
                return true;
            }
            default: // SARX/SHLX/SHRX r1, r/m, r2 (vvvv): count r2 mod operand size
            {
                ulong src = ReadOp(i, 1, size);
                int c = (int)(ReadOp(i, 2, size) & (ulong)(bits - 1));
                ulong r = i.Mnemonic switch
                {
                    Mnemonic.Shlx => src << c,
                    Mnemonic.Shrx => src >> c,
                    _ => (ulong)((long)Alu.SignExtend(src, size) >> c),
                } & mask;
                WriteOp(i, 0, size, r);
                return true;
            }
        }
    }

    /// <summary>OF cleared, CF/ZF as given, SF from the result when defined, PF the parity of the low byte, AF as probed.</summary>
    private static void BmiFlags(ref ulong f, ulong r, int size, bool cf, bool zf, bool sf, bool af)
    {
        ulong szp = Alu.Szp(r, size);
        f = (f & ~RFLAGS_ARITH) | (cf ? RFLAGS_CF : 0) | (zf ? RFLAGS_ZF : 0) | (sf ? szp & RFLAGS_SF : 0)
            | (szp & RFLAGS_PF) | (af ? RFLAGS_AF : 0);
    }

    /// <summary>SDM PDEP: the low bits of <paramref name="src"/> deposited, in order, at the set bits of <paramref name="mask"/>.</summary>
    private static ulong Deposit(ulong src, ulong mask)
    {
        ulong r = 0;
        for (int k = 0; mask != 0; mask &= mask - 1, k++)
            if ((src >> k & 1) != 0) r |= mask & (0 - mask);
        return r;
    }

    /// <summary>SDM PEXT: the bits of <paramref name="src"/> at the set bits of <paramref name="mask"/>, packed into the low bits.</summary>
    private static ulong Extract(ulong src, ulong mask)
    {
        ulong r = 0;
        for (int k = 0; mask != 0; mask &= mask - 1, k++)
            if ((src & mask & (0 - mask)) != 0) r |= 1UL << k;
        return r;
    }
}
