// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The masked moves (Intel SDM Vol. 2B VMASKMOV "Conditional SIMD Packed Loads and Stores", VPMASKMOV "Conditional
/// SIMD Integer Packed Loads and Stores"): VMASKMOVPS/PD (AVX) and VPMASKMOVD/Q (AVX2), 128 and 256 bits. The mask
/// (VEX.vvvv) element's sign bit selects the element. Load (dest, mask, m): selected elements read, the others zero.
/// Store (m, mask, src): only the selected elements written, the others' memory untouched. "Faults occur only due to
/// mask-bit required memory accesses that caused the faults": an unselected element is never translated, so it may
/// lie in a page that is not present or non-canonical; a store's selected elements are all translated (#PF, #GP)
/// before the first one is written, so a faulting store writes nothing (the SDM leaves the order of the stores
/// unspecified; AMD APM VMASKMOVPS likewise). No alignment rule (exception type 6). Accesses are element by element
/// (the SDM does not make them atomic).
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryMaskMove(in Instruction i)
    {
        int elem;
        switch (i.Mnemonic)
        {
            case Mnemonic.Vmaskmovps: RequireAvx(avx2: false); elem = 4; break;
            case Mnemonic.Vmaskmovpd: RequireAvx(avx2: false); elem = 8; break;
            case Mnemonic.Vpmaskmovd: RequireAvx(avx2: true); elem = 4; break;
            case Mnemonic.Vpmaskmovq: RequireAvx(avx2: true); elem = 8; break;
            default: return false;
        }
        bool store = i.GetOpKind(0) == OpKind.Memory;
        var data = store ? i.GetOpRegister(2) : i.Op0Register;
        int bytes = data.IsYMM() ? 32 : 16;
        Span<byte> m = stackalloc byte[32], v = stackalloc byte[32];
        VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), m[..bytes]);
        ulong ea = EffectiveAddress(i);
        Span<ulong> linear = stackalloc ulong[8];
        int count = bytes / elem;
        for (int k = 0; k < count; k++)
            if ((m[(k + 1) * elem - 1] & 0x80) != 0) linear[k] = Linear(i.MemorySegment, ea + (ulong)(k * elem));
        if (!store)
        {
            for (int k = 0; k < count; k++)
                if ((m[(k + 1) * elem - 1] & 0x80) != 0) AccessMemory(linear[k], v.Slice(k * elem, elem), write: false);
            VectorRegisters.WriteVex(Vec, VectorIndex(data), v[..bytes]);
            return true;
        }
        VectorRegisters.Read(Vec, VectorIndex(data), v[..bytes]);
        for (int k = 0; k < count; k++) // every selected element's pages translated for write first
        {
            if ((m[(k + 1) * elem - 1] & 0x80) == 0) continue;
            Translate(linear[k], PageAccess.Write);
            if ((linear[k] & (ulong)(EmulatorConfig.PageSize - 1)) > (ulong)(EmulatorConfig.PageSize - elem))
                Translate(linear[k] + (ulong)elem - 1, PageAccess.Write);
        }
        for (int k = 0; k < count; k++)
            if ((m[(k + 1) * elem - 1] & 0x80) != 0) AccessMemory(linear[k], v.Slice(k * elem, elem), write: true);
        return true;
    }
}
