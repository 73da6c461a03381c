// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The AVX2 gathers (Intel SDM Vol. 2C VPGATHERDD/VPGATHERQD, VPGATHERDQ/VPGATHERQQ, VGATHERDPS/VGATHERQPS,
/// VGATHERDPD/VGATHERQPD): dest, vm32x/vm32y/vm64x/vm64y, mask. VSIB addressing (SDM Vol. 2A 2.3.12): element k's
/// address is base + sign-extended index element k × scale + disp, wrapped to the address size. Operation: each mask
/// element's sign bit selects it; the selected elements are fetched in order from the lowest, each written to the
/// destination and its mask element cleared right after; at the end the whole mask register is zero and the bits
/// above the gathered elements (VEX.128: 255:128; VPGATHERQD/VGATHERQPS xmm, vm64x: 255:64) are zeroed in both.
/// A fault on element k leaves elements 0…k−1 gathered and their mask elements cleared, the elements from k on
/// unchanged in the destination and normalized in the mask (all ones where the sign bit was set, else zero: the
/// pseudocode's first loop), RIP at the gather so that a re-execution resumes (SDM "the instruction can be
/// restarted"). Not modelled: hardware may also have completed some elements above k before delivering the fault.
/// #UD (SDM "If any pair of the index, mask, or destination registers are the same") when two of dest, index, mask
/// are one register (iced's decoder already decodes that as invalid, which the interpreter answers with #UD), and
/// the faults of <see cref="RequireAvx"/> with AVX2 required. No alignment rule (exception type 12).
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryGather(in Instruction i)
    {
        int elem, idx;
        switch (i.Mnemonic)
        {
            case Mnemonic.Vpgatherdd or Mnemonic.Vgatherdps: elem = 4; idx = 4; break;
            case Mnemonic.Vpgatherqd or Mnemonic.Vgatherqps: elem = 4; idx = 8; break;
            case Mnemonic.Vpgatherdq or Mnemonic.Vgatherdpd: elem = 8; idx = 4; break;
            case Mnemonic.Vpgatherqq or Mnemonic.Vgatherqpd: elem = 8; idx = 8; break;
            default: return false;
        }
        RequireAvx(avx2: true);
        int dest = VectorIndex(i.Op0Register), mask = VectorIndex(i.GetOpRegister(2)), index = VectorIndex(i.MemoryIndex);
        if (dest == mask || dest == index || mask == index) throw new GuestFault(UD_VECTOR); // SDM VPGATHERDD #UD
        // The element count is the smaller of the destination's and the index's: DD/DPS ymm 8, DQ/DPD ymm (vm32x) 4,
        // DQ/DPD xmm (vm32x) 2, QD/QPS xmm (vm64y) 4, QD/QPS xmm (vm64x) 2, QQ/QPD ymm 4.
        int indexBytes = i.MemoryIndex.IsYMM() ? 32 : 16, destBytes = i.Op0Register.IsYMM() ? 32 : 16;
        int count = Math.Min(destBytes / elem, indexBytes / idx);
        Span<byte> d = stackalloc byte[32], m = stackalloc byte[32], x = stackalloc byte[32];
        VectorRegisters.Read(Vec, dest, d[..destBytes]);
        VectorRegisters.Read(Vec, mask, m[..destBytes]);
        VectorRegisters.Read(Vec, index, x[..indexBytes]);
        d[(count * elem)..].Clear();
        for (int e = 0; e < destBytes / elem; e++) m.Slice(e * elem, elem).Fill(e < count && (m[(e + 1) * elem - 1] & 0x80) != 0 ? (byte)0xff : (byte)0);
        ulong baseValue = i.MemoryBase == Register.None ? 0 : ReadReg(i.MemoryBase);
        int addressSize = i.MemoryBase != Register.None ? i.MemoryBase.GetSize() : i.MemoryDisplSize;
        int k = 0;
        try
        {
            for (; k < count; k++)
            {
                if (m[k * elem] == 0) continue;
                ulong ea = baseValue + i.MemoryDisplacement64 + (ulong)Lane(x, k, idx, signed: true) * (ulong)i.MemoryIndexScale;
                if (addressSize == 4) ea &= 0xffff_ffff;
                else if (addressSize == 2) ea &= 0xffff;
                AccessMemory(Linear(i.MemorySegment, ea), d.Slice(k * elem, elem), write: false);
                m.Slice(k * elem, elem).Clear();
            }
        }
        finally
        {
            // Complete or faulting on element k: what is gathered so far is architectural (SDM "partial progress").
            VectorRegisters.WriteVex(Vec, dest, d[..destBytes]);
            VectorRegisters.WriteVex(Vec, mask, m[..destBytes]);
        }
        return true;
    }
}
