// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Interleaving and single-structure SIMD loads and stores (Arm ARM C6.2 LD2/LD3/LD4 and ST2/ST3/ST4 (multiple
/// structures), LD1–LD4 and ST1–ST4 (single structure), LD1R–LD4R; pseudocode AArch64.LDST multiple/single). The
/// transfer is one access through <see cref="MemoryAccess"/>, as for LD1/ST1 (multiple structures): an MMIO access has
/// no valid syndrome, and a fault leaves every register unchanged. Post-index adds Xm, or the transfer size when Rm
/// is 31.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>
    /// LD4/ST4 (opcode 0000), LD3/ST3 (0100), LD2/ST2 (1000) (multiple structures): element e of structure register s
    /// sits at (e × selem + s) × ebytes. size 11 with Q = 0 is unallocated; other opcodes than LD1's are unallocated.
    /// </summary>
    private bool SimdMultipleStructures(uint insn)
    {
        uint opcode = (insn >> 12) & 15;
        int selem = opcode switch { 0 => 4, 4 => 3, 8 => 2, _ => 0 };
        bool q = ((insn >> 30) & 1) != 0, load = ((insn >> 22) & 1) != 0, postIndex = ((insn >> 23) & 1) != 0;
        int size = (int)((insn >> 10) & 3);
        if (selem == 0 || (size == 3 && !q)) return UndefinedTrue();
        if (FpTrapped()) return true;
        int rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31), rm = (int)((insn >> 16) & 31);
        if (!SimdBase(rn, out ulong baseAddress)) return true;
        int ebytes = 1 << size, esize = 8 * ebytes, elements = (q ? 16 : 8) / ebytes;
        var data = _simdData.AsSpan(0, elements * selem * ebytes);
        if (!load)
        {
            for (int e = 0; e < elements; e++)
                for (int s = 0; s < selem; s++)
                    WriteVector(data.Slice((e * selem + s) * ebytes, ebytes), Elem(cpu.Vregs[(rt + s) & 31], e, esize));
        }
        if (!MemoryAccess(baseAddress, data, !load, default, isvValid: false, alignment: ebytes)) return true;
        if (load)
        {
            for (int s = 0; s < selem; s++)
            {
                UInt128 value = 0;
                for (int e = 0; e < elements; e++)
                    value = WithElem(value, e, esize, (ulong)ReadVector(data.Slice((e * selem + s) * ebytes, ebytes)));
                SetV((rt + s) & 31, value);
            }
        }
        if (postIndex) cpu.SetRegOrSp(rn, baseAddress + (rm == 31 ? (ulong)data.Length : cpu.Reg(rm)));
        Next();
        return true;
    }

    /// <summary>
    /// LD1–LD4/ST1–ST4 (single structure) and LD1R–LD4R: 0 Q 0011010 L R 00000 opcode S size Rn Rt, post-index
    /// 0 Q 0011011 L R Rm …. selem = opcode&lt;0&gt;:R + 1; scale = opcode&lt;2:1&gt; with the index from Q:S:size
    /// (B), Q:S:size&lt;1&gt; (H), Q:S (S) or Q (D, size 01 with S 0); scale 3 is the replicate form (loads with S 0
    /// only), esize from size, the element copied to every lane (Q = 0: the top 64 bits zeroed). A single-lane load
    /// keeps the other lanes.
    /// </summary>
    private bool SimdSingleStructure(uint insn)
    {
        bool q = ((insn >> 30) & 1) != 0, load = ((insn >> 22) & 1) != 0, r = ((insn >> 21) & 1) != 0;
        bool postIndex = ((insn >> 23) & 1) != 0, s = ((insn >> 12) & 1) != 0;
        uint opcode = (insn >> 13) & 7;
        int size = (int)((insn >> 10) & 3), scale = (int)(opcode >> 1), selem = (int)(((opcode & 1) << 1) | (r ? 1u : 0)) + 1;
        int qi = q ? 1 : 0, si = s ? 1 : 0, index = 0;
        bool replicate = false, valid = true;
        switch (scale)
        {
            case 3:
                valid = load && !s;
                scale = size;
                replicate = true;
                break;
            case 0:
                index = (qi << 3) | (si << 2) | size;
                break;
            case 1:
                valid = (size & 1) == 0;
                index = (qi << 2) | (si << 1) | (size >> 1);
                break;
            default:
                valid = (size & 2) == 0 && !((size & 1) != 0 && s);
                if ((size & 1) == 0) index = (qi << 1) | si;
                else
                {
                    index = qi;
                    scale = 3;
                }
                break;
        }
        if (!valid) return UndefinedTrue();
        if (FpTrapped()) return true;
        int rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31), rm = (int)((insn >> 16) & 31);
        if (!SimdBase(rn, out ulong baseAddress)) return true;
        int ebytes = 1 << scale, esize = 8 * ebytes;
        var data = _simdData.AsSpan(0, selem * ebytes);
        if (!load)
            for (int k = 0; k < selem; k++) WriteVector(data.Slice(k * ebytes, ebytes), Elem(cpu.Vregs[(rt + k) & 31], index, esize));
        if (!MemoryAccess(baseAddress, data, !load, default, isvValid: false, alignment: ebytes)) return true;
        if (load)
        {
            for (int k = 0; k < selem; k++)
            {
                ulong element = (ulong)ReadVector(data.Slice(k * ebytes, ebytes));
                int t = (rt + k) & 31;
                if (replicate)
                {
                    UInt128 value = 0;
                    for (int e = 0; e < (q ? 128 : 64) / esize; e++) value = WithElem(value, e, esize, element);
                    SetV(t, value);
                }
                else
                {
                    SetV(t, WithElem(cpu.Vregs[t], index, esize, element));
                }
            }
        }
        if (postIndex) cpu.SetRegOrSp(rn, baseAddress + (rm == 31 ? (ulong)data.Length : cpu.Reg(rm)));
        Next();
        return true;
    }
}
