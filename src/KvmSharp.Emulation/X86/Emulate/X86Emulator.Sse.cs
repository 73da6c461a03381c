// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Legacy SSE data moves and a few integer/logic ops on the XMM registers (<see cref="VectorRegisters"/>), in every
/// mode the interpreter runs. Fault rules (Intel SDM Vol. 2A 2.5 / Vol. 3A 13.1, "Exception Conditions for Legacy SIMD
/// Instructions", Types 4/5; arch/x86/kvm/emulate.c x86_emulate_insn for its Sse instructions), in this order:
/// CR0.EM = 1 or CR4.OSFXSR = 0 → #UD; the guest CPUID lacks the instruction's feature (SSE4.1) → #UD; CR0.TS = 1 →
/// #NM; then the memory operand: a 16-byte operand of an aligned form (MOVDQA/MOVAPS/MOVAPD/MOVNT*, and the m128
/// operand of PXOR/XORPS/XORPD/PCMPEQ*/PTEST) not 16-byte aligned → #GP(0) (emulate.c __linearize, insn_alignment),
/// unless MXCSR.MM (AMD's misaligned-SSE mode, bit 17) is set (not for MOVNT*); then #PF as any access.
/// SSE/SSE2 are not gated on CPUID (x86-64 implies them). MMX (mm register) forms are not emulated.
/// <para>
/// This host (kvm_pvm) runs these through KVM's own instruction emulator, which knows only the MOVUPS/MOVUPD/MOVAPS/
/// MOVAPD/MOVDQU/MOVDQA/MOVNTDQ moves: every other instruction here ends KVM_RUN with KVM_EXIT_INTERNAL_ERROR there
/// (upstream on VMX/SVM hardware runs them natively, as the SDM says; ExtendedStateInstructions checks both).
/// </para>
/// </summary>
internal sealed partial class X86Emulator
{
    private const int NM_VECTOR = 7;
    private const ulong CR0_EM = 1UL << 2;
    private const ulong CR0_TS = 1UL << 3;
    private const ulong CR4_OSFXSR = 1UL << 9;

    /// <summary>
    /// MXCSR_MASK of this host's FXSAVE image (0x2ffff, read with FXSAVE on the host; AMD: bit 17 MM is writable, DAZ
    /// too): LDMXCSR with any other bit set is #GP(0), as the CPU (which runs a KVM guest's LDMXCSR) does.
    /// </summary>
    private const uint MxcsrMask = 0x2ffff;

    private const uint MxcsrMisalignedMode = 1u << 17;

    /// <summary>The SSE/AVX/XCR/DR instructions of this file and its siblings; false when the mnemonic is none of them.</summary>
    private bool TryExecuteExtended(in Instruction i, ref ulong f)
    {
        if (i.Encoding == EncodingKind.VEX) return TryExecuteAvx(i);
        switch (i.Mnemonic)
        {
            case Mnemonic.Xgetbv:
                GetExtendedControlRegister();
                return true;
            case Mnemonic.Xsetbv:
                SetExtendedControlRegister();
                return true;
            case Mnemonic.Ldmxcsr or Mnemonic.Stmxcsr:
                RequireLegacySse(feature: true);
                Mxcsr(i);
                return true;
            case Mnemonic.Movd or Mnemonic.Movq:
                if (!UsesOnlyXmm(i)) return false;
                RequireLegacySse(feature: true);
                MoveScalar(i);
                return true;
            case Mnemonic.Movdqu or Mnemonic.Movups or Mnemonic.Movupd:
                if (!UsesOnlyXmm(i)) return false;
                RequireLegacySse(feature: true);
                Move128(i, aligned: false, nonTemporal: false);
                return true;
            case Mnemonic.Movdqa or Mnemonic.Movaps or Mnemonic.Movapd:
                if (!UsesOnlyXmm(i)) return false;
                RequireLegacySse(feature: true);
                Move128(i, aligned: true, nonTemporal: false);
                return true;
            case Mnemonic.Movntdq or Mnemonic.Movntps or Mnemonic.Movntpd:
                RequireLegacySse(feature: true);
                Move128(i, aligned: true, nonTemporal: true);
                return true;
            case Mnemonic.Pxor or Mnemonic.Xorps or Mnemonic.Xorpd or Mnemonic.Pcmpeqb or Mnemonic.Pcmpeqw or Mnemonic.Pcmpeqd:
                if (!UsesOnlyXmm(i)) return false;
                RequireLegacySse(feature: true);
                Packed(i);
                return true;
            case Mnemonic.Ptest:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                PackedTest(i, ref f);
                return true;
            case Mnemonic.Pinsrq or Mnemonic.Pextrq:
                RequireLegacySse(GuestFeatures.Sse41(_cpu));
                InsertExtractQword(i);
                return true;
            default:
                return false;
        }
    }

    /// <summary>SDM Vol. 3A 13.1 / Table 2-21 order: #UD (EM, OSFXSR, CPUID feature) before #NM (TS).</summary>
    private void RequireLegacySse(bool feature)
    {
        ulong cr0 = _cpu.Sregs.cr0;
        if ((cr0 & CR0_EM) != 0 || (_cpu.Sregs.cr4 & CR4_OSFXSR) == 0 || !feature) throw new GuestFault(UD_VECTOR);
        if ((cr0 & CR0_TS) != 0) throw new GuestFault(NM_VECTOR);
    }

    private static bool UsesOnlyXmm(in Instruction i)
    {
        for (int op = 0; op < i.OpCount; op++)
        {
            if (i.GetOpKind(op) == OpKind.Register && i.GetOpRegister(op).IsMM()) return false;
        }
        return true;
    }

    private static int VectorIndex(Register r) =>
        r.IsXMM() ? r - Register.XMM0 : r.IsYMM() ? r - Register.YMM0
        : throw new EmulationFailure($"register {r} is not a vector register", haveInstructionBytes: true);

    private VcpuState Vec => _cpu.State;

    /// <summary>
    /// The linear address of the instruction's memory operand, with the alignment rule applied: an aligned form's
    /// operand not aligned to <paramref name="alignment"/> bytes is #GP(0) (checked after the canonical check, as
    /// emulate.c __linearize does).
    /// </summary>
    private ulong VectorLinear(in Instruction i, int alignment)
    {
        ulong linear = Linear(i.MemorySegment, EffectiveAddress(i));
        if (alignment > 1 && (linear & (ulong)(alignment - 1)) != 0) throw new GuestFault(GP_VECTOR);
        return linear;
    }

    /// <summary>A legacy-SSE m128 operand's alignment: 16, or none under MXCSR.MM (never for the non-temporal stores).</summary>
    private int LegacyAlignment(bool aligned, bool nonTemporal) =>
        !aligned ? 1 : nonTemporal || (Vec.Fpu.mxcsr & MxcsrMisalignedMode) == 0 ? 16 : 1;

    /// <summary>Reads operand <paramref name="op"/> (a vector register or memory) into <paramref name="value"/>.</summary>
    private void ReadVector(in Instruction i, int op, Span<byte> value, int alignment)
    {
        if (i.GetOpKind(op) == OpKind.Register)
        {
            VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(op)), value);
            return;
        }
        AccessMemory(VectorLinear(i, alignment), value, write: false);
    }

    /// <summary>MOVDQU/MOVDQA/MOVUPS/MOVAPS/MOVUPD/MOVAPD xmm↔xmm/m128 and MOVNTDQ/MOVNTPS/MOVNTPD m128, xmm.</summary>
    private void Move128(in Instruction i, bool aligned, bool nonTemporal)
    {
        Span<byte> v = stackalloc byte[16];
        int alignment = LegacyAlignment(aligned, nonTemporal);
        ReadVector(i, 1, v, alignment);
        if (i.GetOpKind(0) == OpKind.Register) VectorRegisters.WriteLegacy(Vec, VectorIndex(i.Op0Register), v);
        else AccessMemory(VectorLinear(i, alignment), v, write: true);
    }

    /// <summary>
    /// MOVD/MOVQ between XMM and r32/r64/m32/m64 (66 0F 6E / 66 0F 7E, REX.W for 64 bits), MOVQ xmm, xmm/m64 (F3 0F 7E)
    /// and MOVQ xmm/m64, xmm (66 0F D6): a write to an XMM register zero-extends to 128 bits (bits 255:128 kept).
    /// </summary>
    private void MoveScalar(in Instruction i)
    {
        bool toXmm = i.GetOpKind(0) == OpKind.Register && i.Op0Register.IsXMM();
        int size = i.Code is Code.Movd_xmm_rm32 or Code.Movd_rm32_xmm ? 4 : 8;
        ulong value;
        var src = i.GetOpKind(1);
        if (src == OpKind.Register && i.GetOpRegister(1).IsXMM())
            value = BinaryPrimitives.ReadUInt64LittleEndian(VectorRegisters.Low(Vec, VectorIndex(i.GetOpRegister(1)))) & Alu.Mask(size);
        else
            value = ReadOp(i, 1, size);
        if (!toXmm)
        {
            WriteOp(i, 0, size, value);
            return;
        }
        Span<byte> v = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(v, value);
        VectorRegisters.WriteLegacy(Vec, VectorIndex(i.Op0Register), v);
    }

    /// <summary>PXOR/XORPS/XORPD and PCMPEQB/W/D xmm, xmm/m128 (the m128 operand must be 16-byte aligned).</summary>
    private void Packed(in Instruction i)
    {
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16];
        int dest = VectorIndex(i.Op0Register);
        VectorRegisters.Read(Vec, dest, a);
        ReadVector(i, 1, b, LegacyAlignment(aligned: true, nonTemporal: false));
        Combine(i.Mnemonic, a, b);
        VectorRegisters.WriteLegacy(Vec, dest, a);
    }

    /// <summary>a = a op b for the XOR and compare-equal families (16 or 32 bytes).</summary>
    private static void Combine(Mnemonic m, Span<byte> a, ReadOnlySpan<byte> b)
    {
        int element = m switch
        {
            Mnemonic.Pcmpeqb or Mnemonic.Vpcmpeqb => 1,
            Mnemonic.Pcmpeqw or Mnemonic.Vpcmpeqw => 2,
            Mnemonic.Pcmpeqd or Mnemonic.Vpcmpeqd => 4,
            _ => 0,
        };
        if (element == 0)
        {
            for (int k = 0; k < a.Length; k++) a[k] ^= b[k];
            return;
        }
        for (int k = 0; k < a.Length; k += element)
        {
            bool equal = a.Slice(k, element).SequenceEqual(b.Slice(k, element));
            a.Slice(k, element).Fill(equal ? (byte)0xff : (byte)0);
        }
    }

    /// <summary>PTEST xmm1, xmm2/m128 (SSE4.1): ZF = (src AND dest) = 0, CF = (src AND NOT dest) = 0; AF OF PF SF cleared.</summary>
    private void PackedTest(in Instruction i, ref ulong f)
    {
        Span<byte> a = stackalloc byte[16], b = stackalloc byte[16];
        VectorRegisters.Read(Vec, VectorIndex(i.Op0Register), a);
        ReadVector(i, 1, b, LegacyAlignment(aligned: true, nonTemporal: false));
        bool zf = true, cf = true;
        for (int k = 0; k < 16; k++)
        {
            if ((a[k] & b[k]) != 0) zf = false;
            if ((b[k] & ~a[k]) != 0) cf = false;
        }
        f = (f & ~RFLAGS_ARITH) | (zf ? RFLAGS_ZF : 0) | (cf ? RFLAGS_CF : 0);
    }

    /// <summary>PINSRQ xmm, r/m64, imm8 and PEXTRQ r/m64, xmm, imm8 (SSE4.1, 64-bit mode): quadword imm8[0].</summary>
    private void InsertExtractQword(in Instruction i)
    {
        int sel = (int)(i.GetImmediate(2) & 1) * 8;
        if (i.Mnemonic == Mnemonic.Pinsrq)
        {
            ulong value = ReadOp(i, 1, 8);
            int n = VectorIndex(i.Op0Register);
            Span<byte> v = stackalloc byte[16];
            VectorRegisters.Read(Vec, n, v);
            BinaryPrimitives.WriteUInt64LittleEndian(v[sel..], value);
            VectorRegisters.WriteLegacy(Vec, n, v);
            return;
        }
        WriteOp(i, 0, 8, BinaryPrimitives.ReadUInt64LittleEndian(VectorRegisters.Low(Vec, VectorIndex(i.GetOpRegister(1)))[sel..]));
    }

    /// <summary>
    /// LDMXCSR m32 (a bit outside <see cref="MxcsrMask"/> → #GP(0), SDM Vol. 2B LDMXCSR) and STMXCSR m32. MXCSR is
    /// <c>Fpu.mxcsr</c>, the fxsave image KVM_SET_FPU writes (KVM_GET_FPU does not report it).
    /// </summary>
    private void Mxcsr(in Instruction i)
    {
        ulong ea = EffectiveAddress(i);
        if (i.Mnemonic == Mnemonic.Stmxcsr)
        {
            WriteMemory(i.MemorySegment, ea, 4, Vec.Fpu.mxcsr);
            return;
        }
        uint value = (uint)ReadMemory(i.MemorySegment, ea, 4);
        if ((value & ~MxcsrMask) != 0) throw new GuestFault(GP_VECTOR);
        Vec.Fpu.mxcsr = value;
    }
}
