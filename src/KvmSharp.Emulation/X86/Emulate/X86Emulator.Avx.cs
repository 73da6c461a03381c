// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// VEX-encoded AVX moves and logic: VMOVDQU/VMOVDQA/VMOVUPS/VMOVAPS/VMOVUPD/VMOVAPD ymm↔ymm/m256 and their VEX.128
/// forms, VPXOR/VXORPS/VXORPD, VPCMPEQB/W/D, VEXTRACTF128/VEXTRACTI128, VZEROUPPER, VZEROALL. Fault rules (Intel SDM
/// Vol. 2A 2.8 "Exception Classifications of VEX-Encoded Instructions", Types 4/6/8): VEX outside protected mode,
/// CR4.OSXSAVE = 0, XCR0[2:1] ≠ 11b, or the guest CPUID lacks AVX (AVX2 for the 256-bit integer forms) → #UD; CR0.TS = 1
/// → #NM (CR0.EM is ignored); then an aligned form's operand not aligned to its size (16 or 32) → #GP(0). A VEX.128
/// write zeroes bits 255:128 of the destination; VZEROUPPER/VZEROALL touch YMM0–7 only outside 64-bit mode.
/// <para>
/// This host (kvm_pvm) ends every VEX instruction in KVM_EXIT_INTERNAL_ERROR (KVM's instruction emulator decodes no
/// VEX); upstream on hardware runs them natively. The guest CPUID test is the SDM's "#UD if CPUID.AVX = 0": a VMX/SVM
/// guest cannot be kept from AVX by its CPUID when XCR0 allows it, but XCR0 itself can only hold AVX when CPUID.0xD
/// offers it (__kvm_set_xcr).
/// </para>
/// </summary>
internal sealed partial class X86Emulator
{
    private const ulong CR4_OSXSAVE = 1UL << 18;
    private const ulong Xcr0SseAvx = 0x6;

    private bool TryExecuteAvx(in Instruction i)
    {
        int bytes = i.OpCount > 0 && i.GetOpKind(0) == OpKind.Register && i.Op0Register.IsYMM() ? 32
            : i.OpCount > 1 && i.GetOpKind(1) == OpKind.Register && i.GetOpRegister(1).IsYMM() ? 32 : 16;
        switch (i.Mnemonic)
        {
            case Mnemonic.Vmovdqu or Mnemonic.Vmovups or Mnemonic.Vmovupd:
                RequireAvx(avx2: false);
                VexMove(i, bytes, alignment: 1);
                return true;
            case Mnemonic.Vmovdqa or Mnemonic.Vmovaps or Mnemonic.Vmovapd:
                RequireAvx(avx2: false);
                VexMove(i, bytes, alignment: bytes);
                return true;
            case Mnemonic.Vxorps or Mnemonic.Vxorpd:
                RequireAvx(avx2: false);
                VexCombine(i, bytes);
                return true;
            case Mnemonic.Vpxor or Mnemonic.Vpcmpeqb or Mnemonic.Vpcmpeqw or Mnemonic.Vpcmpeqd:
                RequireAvx(avx2: bytes == 32);
                VexCombine(i, bytes);
                return true;
            case Mnemonic.Vextractf128 or Mnemonic.Vextracti128:
                RequireAvx(avx2: i.Mnemonic == Mnemonic.Vextracti128);
                VexExtract128(i);
                return true;
            case Mnemonic.Vzeroupper or Mnemonic.Vzeroall:
                RequireAvx(avx2: false);
                ZeroUpper(all: i.Mnemonic == Mnemonic.Vzeroall);
                return true;
            default:
                return false;
        }
    }

    /// <summary>SDM Vol. 2A 2.8: #UD (no VEX in real mode, OSXSAVE, XCR0 SSE|AVX, CPUID) before #NM (CR0.TS).</summary>
    private void RequireAvx(bool avx2)
    {
        if (!_cpu.ProtectedMode || (_cpu.Sregs.cr4 & CR4_OSXSAVE) == 0 || (Vec.Xcr0 & Xcr0SseAvx) != Xcr0SseAvx ||
            !GuestFeatures.Avx(_cpu) || (avx2 && !GuestFeatures.Avx2(_cpu)))
            throw new GuestFault(UD_VECTOR);
        if ((_cpu.Sregs.cr0 & CR0_TS) != 0) throw new GuestFault(NM_VECTOR);
    }

    /// <summary>VMOVxx: register ← register/memory, or memory ← register (VEX.128 register writes zero 255:128).</summary>
    private void VexMove(in Instruction i, int bytes, int alignment)
    {
        Span<byte> v = stackalloc byte[bytes];
        ReadVector(i, 1, v, alignment);
        if (i.GetOpKind(0) == OpKind.Register) VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), v);
        else AccessMemory(VectorLinear(i, alignment), v, write: true);
    }

    /// <summary>VPXOR/VXORPS/VXORPD/VPCMPEQx dest, src1, src2/mem (no alignment rule for VEX).</summary>
    private void VexCombine(in Instruction i, int bytes)
    {
        Span<byte> a = stackalloc byte[bytes], b = stackalloc byte[bytes];
        VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), a);
        ReadVector(i, 2, b, alignment: 1);
        Combine(i.Mnemonic, a, b);
        VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), a);
    }

    /// <summary>VEXTRACTF128/VEXTRACTI128 xmm/m128, ymm, imm8: the half imm8[0] selects (a register destination is a VEX.128 write).</summary>
    private void VexExtract128(in Instruction i)
    {
        Span<byte> v = stackalloc byte[32];
        VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), v);
        var half = v.Slice((int)(i.GetImmediate(2) & 1) * 16, 16);
        if (i.GetOpKind(0) == OpKind.Register) VectorRegisters.WriteVex(Vec, VectorIndex(i.Op0Register), half);
        else AccessMemory(VectorLinear(i, alignment: 1), half, write: true);
    }

    /// <summary>VZEROUPPER (bits 255:128) / VZEROALL (all 256 bits) of YMM0–15, YMM0–7 outside 64-bit mode.</summary>
    private void ZeroUpper(bool all)
    {
        int count = _cpu.Bitness == 64 ? 16 : 8;
        for (int n = 0; n < count; n++)
        {
            VectorRegisters.High(Vec, n).Clear();
            if (all) VectorRegisters.Low(Vec, n).Clear();
        }
    }
}
