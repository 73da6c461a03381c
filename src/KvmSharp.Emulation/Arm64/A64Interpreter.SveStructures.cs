// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE structure loads and stores and scatter stores (Arm ARM DDI 0487 C4.1 "SVE Memory - Contiguous Load" / "SVE
/// Memory - Contiguous Store and Unsized Contiguous"; C8.2 pseudocode of LD2B…LD4D, ST2B…ST4D, LDNT1*/STNT1* and ST1*
/// scatter forms).
/// <list type="bullet">
/// <item>LD2/LD3/LD4 and ST2/ST3/ST4 (scalar plus immediate, scalar plus scalar): element e of register r is at
/// base + (e × nreg + r) × mbytes, in that order; an inactive element is not accessed (loads: zero). The immediate is
/// SInt(imm4) × nreg vectors. LDNT1/STNT1 (the non-temporal hint changes nothing here) are the nreg = 1 case.</item>
/// <item>ST1* scatters: element e stored at base + offset (64-bit offsets; 32-bit offsets UXTW/SXTW, unpacked in
/// 64-bit elements or packed in 32-bit ones; scaled by the memory size when the form says so) or at vector base
/// Zn[e] + imm5 × mbytes.</item>
/// </list>
/// Stores go element by element in element order through <see cref="MemoryAccess"/> (the pseudocode's loop of Mem[]
/// writes, which is not atomic): a fault on element k is taken with the active elements before k already written.
/// (qemu-user probes every element before it stores any, so there an aborted scatter writes nothing; both are within
/// the architecture, which makes no promise about the locations of a store that aborted.)
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>
    /// LD2–LD4/LDNT1 (1010010 msz nreg-1 …: scalar plus immediate 0 imm4 111, scalar plus scalar Rm 110) and
    /// ST2–ST4/STNT1 (1110010 msz nreg-1 …: 1 imm4 111, Rm 011). False: not one of these.
    /// </summary>
    private bool SveStructure(uint insn, bool store)
    {
        uint sub = (insn >> 13) & 7;
        int zt = (int)(insn & 31), rn = (int)((insn >> 5) & 31), rm = (int)((insn >> 16) & 31);
        int mbytes = 1 << (int)((insn >> 23) & 3), nreg = (int)((insn >> 21) & 3) + 1;
        bool imm = sub == 7 && ((insn >> 20) & 1) == (store ? 1u : 0u);
        bool ss = sub == (store ? 3u : 6u);
        if (!imm && !ss) return false;
        int elements = Elements(mbytes);
        ulong baseAddress = cpu.RegOrSp(rn);
        ulong first = imm
            ? baseAddress + (ulong)((long)((int)(insn << 12) >> 28) * nreg * elements * mbytes)
            : baseAddress + (cpu.Reg(rm) << (int)((insn >> 23) & 3));
        // Scalar plus scalar with Rm = 11111 is unallocated (the XZR form would be the immediate one).
        if (ss && rm == 31) return false;
        var p = P((int)((insn >> 10) & 7), _p0);
        byte[][] regs = [_z0, _z1, _z2, _z3];
        for (int r = 0; r < nreg; r++)
        {
            if (store) Z((zt + r) % 32, regs[r]);
            else Array.Clear(regs[r]);
        }
        for (int e = 0; e < elements; e++)
        {
            if (!Act(p, e, mbytes)) continue;
            for (int r = 0; r < nreg; r++)
            {
                ulong address = first + (ulong)((e * nreg + r) * mbytes);
                var data = _sveElem.AsSpan(0, mbytes);
                if (store)
                {
                    ulong v = E(regs[r], e, mbytes);
                    for (int i = 0; i < mbytes; i++) data[i] = (byte)(v >> (8 * i));
                }
                if (!MemoryAccess(address, data, store, default, isvValid: false, alignment: mbytes)) return true;
                if (!store) SetE(regs[r], e, mbytes, Load(mbytes, signed: false));
            }
        }
        if (!store)
        {
            for (int r = 0; r < nreg; r++) SetZ((zt + r) % 32, regs[r]);
        }
        Next();
        return true;
    }

    /// <summary>
    /// ST1B/H/W/D scatters (1110010 msz ..): bits 15:13 = 101 with 22:21 = 00/01 — 64-bit offsets (unscaled/scaled),
    /// 10 — vector plus immediate (64-bit elements), 11 — vector plus immediate (32-bit elements); bits 15 = 1, 13 = 0
    /// with bit 14 = xs (SXTW) and bit 21 = scaled: bit 22 = 0 unpacked 32-bit offsets in 64-bit elements, bit 22 = 1
    /// 32-bit offsets in 32-bit elements. False: not a scatter.
    /// </summary>
    private bool SveScatter(uint insn)
    {
        uint sub = (insn >> 13) & 7, sel = (insn >> 21) & 3;
        int msz = (int)((insn >> 23) & 3), mbytes = 1 << msz;
        int zt = (int)(insn & 31), rn = (int)((insn >> 5) & 31), zm = (int)((insn >> 16) & 31);
        int esz;
        Func<byte[], int, ulong> address;
        if (sub == 5 && sel >= 2)
        {
            // Vector plus immediate: addr = Zn[e] (zero-extended) + imm5 × mbytes.
            esz = sel == 2 ? 8 : 4;
            ulong offset = ((insn >> 16) & 31) * (ulong)mbytes;
            address = (bases, e) => E(bases, e, esz) + offset;
        }
        else if (sub == 5 || (sub & 5) == 4)
        {
            bool offsets64 = sub == 5, scaled = (sel & 1) != 0, xs = ((insn >> 14) & 1) != 0;
            esz = offsets64 || (sel >> 1) == 0 ? 8 : 4;
            if (scaled && msz == 0) return false;
            ulong baseAddress = cpu.RegOrSp(rn);
            address = (offsets, e) =>
            {
                ulong off = E(offsets, e, esz);
                if (!offsets64) off = xs ? (ulong)(long)(int)off : (uint)off;
                return baseAddress + (scaled ? off << msz : off);
            };
        }
        else
        {
            return false;
        }
        if (mbytes > esz) return false;
        var p = P((int)((insn >> 10) & 7), _p0);
        var z = Z(zt, _z0);
        var vectors = Z(sub == 5 && sel >= 2 ? rn : zm, _z2);
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(p, e, esz)) continue;
            ulong v = E(z, e, esz);
            for (int i = 0; i < mbytes; i++) _sveElem[i] = (byte)(v >> (8 * i));
            if (!MemoryAccess(address(vectors, e), _sveElem.AsSpan(0, mbytes), true, default, isvValid: false, alignment: mbytes)) return true;
        }
        Next();
        return true;
    }
}
