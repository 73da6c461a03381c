// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Loads and stores of SIMD&amp;FP registers (Arm ARM C6.2 LDR/STR (immediate, SIMD&amp;FP), LDR/STR (register,
/// SIMD&amp;FP), LDR (literal, SIMD&amp;FP), LDUR/STUR (SIMD&amp;FP), LDP/STP/LDNP/STNP (SIMD&amp;FP), LD1/ST1
/// (multiple structures); the other structure forms are in A64Interpreter.SimdStructures.cs). Every access goes through <see cref="MemoryAccess"/> (stage 1, stage 2, memslots). The Arm
/// ARM sets ESR_EL2.ISV only for loads and stores of a single general-purpose register, so an access of these to MMIO
/// has no valid syndrome: mmio.c io_mem_abort's no-ISV path (KVM_EXIT_ARM_NISV with KVM_CAP_ARM_NISV_TO_USER, else
/// -ENOSYS), with the instruction not executed.
/// </summary>
internal sealed partial class A64Interpreter
{
    // LD1/ST1 of four Q registers is the largest access: 64 bytes.
    private readonly byte[] _simdData = new byte[64];

    private bool TrySimdLoadStore(uint insn)
    {
        int size = (int)(insn >> 30);
        uint opc = (insn >> 22) & 3;
        // LDR/STR (immediate, SIMD&FP), unsigned offset: size 111 1 01 opc imm12 Rn Rt.
        if ((insn & 0x3F00_0000) == 0x3D00_0000)
        {
            if (!SingleScale(size, opc, out int scale)) return UndefinedTrue();
            if (FpTrapped()) return true;
            SimdSingle(insn, scale, ((insn >> 10) & 0xfff) << scale, writeback: false, postIndex: false);
            return true;
        }
        // Pre/post-index (bits 11:10 = x1) and unscaled LDUR/STUR (00): size 111 1 00 opc 0 imm9 op Rn Rt.
        if ((insn & 0x3F20_0000) == 0x3C00_0000 && ((insn >> 10) & 3) != 2)
        {
            if (!SingleScale(size, opc, out int scale)) return UndefinedTrue();
            if (FpTrapped()) return true;
            ulong offset = (ulong)(long)((int)(insn << 11) >> 23);
            bool writeback = ((insn >> 10) & 1) != 0;
            SimdSingle(insn, scale, offset, writeback, postIndex: writeback && ((insn >> 11) & 1) == 0);
            return true;
        }
        // LDR/STR (register, SIMD&FP): size 111 1 00 opc 1 Rm option S 10 Rn Rt.
        if ((insn & 0x3F20_0C00) == 0x3C20_0800)
        {
            uint option = (insn >> 13) & 7;
            if (!SingleScale(size, opc, out int scale) || (option & 2) == 0) return UndefinedTrue();
            if (FpTrapped()) return true;
            ulong m = cpu.Reg((int)((insn >> 16) & 31));
            // ExtendReg: UXTW (010), LSL/UXTX (011), SXTW (110), SXTX (111); S shifts by the access size.
            m = option switch { 2 => (uint)m, 6 => (ulong)(long)(int)m, _ => m };
            SimdSingle(insn, scale, m << (((insn >> 12) & 1) != 0 ? scale : 0), writeback: false, postIndex: false);
            return true;
        }
        // LDR (literal, SIMD&FP): opc 011 1 00 imm19 Rt; opc 00 S, 01 D, 10 Q, 11 unallocated.
        if ((insn & 0x3F00_0000) == 0x1C00_0000)
        {
            if (size == 3) return UndefinedTrue();
            if (FpTrapped()) return true;
            int length = 4 << size;
            ulong address = cpu.Pc + Imm19(insn);
            var data = _simdData.AsSpan(0, length);
            if (!MemoryAccess(address, data, false, default, isvValid: false)) return true;
            SetV((int)(insn & 31), ReadVector(data));
            Next();
            return true;
        }
        // LDP/STP/LDNP/STNP (SIMD&FP): opc 101 1 0 mode L imm7 Rt2 Rn Rt; mode 00 non-temporal (offset),
        // 01 post-index, 10 signed offset, 11 pre-index.
        if ((insn & 0x3E00_0000) == 0x2C00_0000)
        {
            if (size == 3) return UndefinedTrue();
            int rt = (int)(insn & 31), rt2 = (int)((insn >> 10) & 31);
            bool load = ((insn >> 22) & 1) != 0;
            // LDP with Rt == Rt2 is CONSTRAINED UNPREDICTABLE: treated as unallocated (one of the permitted choices).
            if (load && rt == rt2) return UndefinedTrue();
            if (FpTrapped()) return true;
            uint mode = (insn >> 23) & 3;
            int scale = 2 + size;
            ulong offset = (ulong)((long)((int)(insn << 10) >> 25) << scale);
            SimdPair(insn, scale, offset, writeback: mode is 1 or 3, postIndex: mode == 1);
            return true;
        }
        // LD1/ST1 (multiple structures): 0 Q 0011000 L 000000 opcode size Rn Rt; post-index 0 Q 0011001 L 0 Rm ….
        if ((insn & 0xBFBF_0000) == 0x0C00_0000 || (insn & 0xBFA0_0000) == 0x0C80_0000)
        {
            int registers = ((insn >> 12) & 15) switch { 7 => 1, 10 => 2, 6 => 3, 2 => 4, _ => 0 };
            // LD2/LD3/LD4, ST2/ST3/ST4 (interleaving): A64Interpreter.SimdStructures.cs.
            if (registers == 0) return SimdMultipleStructures(insn);
            if (FpTrapped()) return true;
            SimdMultiple(insn, registers, postIndex: ((insn >> 23) & 1) != 0);
            return true;
        }
        // LD1–LD4/ST1–ST4 (single structure), LDnR: 0 Q 0011010 L R 00000 …, post-index 0 Q 0011011 L R Rm ….
        if ((insn & 0xBF9F_0000) == 0x0D00_0000 || (insn & 0xBF80_0000) == 0x0D80_0000) return SimdSingleStructure(insn);
        return false;
    }

    private bool UndefinedTrue()
    {
        Undefined();
        return true;
    }

    /// <summary>
    /// The access size of a single-register form: size 00..11 with opc 0x is B, H, S, D (scale 0..3); size 00 with
    /// opc 1x is Q (scale 4); any other size with opc 1x is unallocated.
    /// </summary>
    private static bool SingleScale(int size, uint opc, out int scale)
    {
        scale = (opc & 2) != 0 ? (size == 0 ? 4 : -1) : size;
        return scale >= 0;
    }

    /// <summary>The base register's value, with the SP alignment check (SCTLR_EL1.SA) of an SP-based access.</summary>
    private bool SimdBase(int rn, out ulong baseAddress)
    {
        baseAddress = cpu.RegOrSp(rn);
        if (rn == 31 && (baseAddress & 15) != 0)
        {
            SpAlignmentFault();
            return false;
        }
        return true;
    }

    /// <summary>One B/H/S/D/Q load or store (opc bit 0 = load). Writeback of Rn with a V register Rt is never UNPREDICTABLE.</summary>
    private void SimdSingle(uint insn, int scale, ulong offset, bool writeback, bool postIndex)
    {
        int rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31);
        bool load = ((insn >> 22) & 1) != 0;
        if (!SimdBase(rn, out ulong baseAddress)) return;
        ulong address = postIndex ? baseAddress : baseAddress + offset;
        var data = _simdData.AsSpan(0, 1 << scale);
        if (!load) WriteVector(data, cpu.Vregs[rt]);
        if (!MemoryAccess(address, data, !load, default, isvValid: false)) return;
        if (load) SetV(rt, ReadVector(data));
        if (writeback) cpu.SetRegOrSp(rn, baseAddress + offset);
        Next();
    }

    private void SimdPair(uint insn, int scale, ulong offset, bool writeback, bool postIndex)
    {
        int rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31), rt2 = (int)((insn >> 10) & 31);
        bool load = ((insn >> 22) & 1) != 0;
        if (!SimdBase(rn, out ulong baseAddress)) return;
        ulong address = postIndex ? baseAddress : baseAddress + offset;
        int length = 1 << scale;
        var data = _simdData.AsSpan(0, 2 * length);
        if (!load)
        {
            WriteVector(data[..length], cpu.Vregs[rt]);
            WriteVector(data[length..], cpu.Vregs[rt2]);
        }
        if (!MemoryAccess(address, data, !load, default, isvValid: false, alignment: length)) return;
        if (load)
        {
            SetV(rt, ReadVector(data[..length]));
            SetV(rt2, ReadVector(data[length..]));
        }
        if (writeback) cpu.SetRegOrSp(rn, baseAddress + offset);
        Next();
    }

    /// <summary>
    /// LD1/ST1 (multiple structures), 1–4 registers Rt, Rt+1, … (modulo 32), each 8 (Q = 0) or 16 bytes in order: with
    /// one element per structure the memory image is the registers' bytes end to end (little-endian data;
    /// SCTLR_EL1.EE/E0E big-endian data is not modelled, as for every other access). Post-index adds Xm, or the
    /// transfer size when Rm is 31.
    /// </summary>
    private void SimdMultiple(uint insn, int registers, bool postIndex)
    {
        int rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31), rm = (int)((insn >> 16) & 31);
        bool load = ((insn >> 22) & 1) != 0, q = ((insn >> 30) & 1) != 0;
        // size 11 with Q = 0 is allowed for LD1/ST1 (one 64-bit element per register).
        if (!SimdBase(rn, out ulong baseAddress)) return;
        int length = q ? 16 : 8;
        var data = _simdData.AsSpan(0, registers * length);
        if (!load)
            for (int i = 0; i < registers; i++) WriteVector(data.Slice(i * length, length), cpu.Vregs[(rt + i) & 31]);
        if (!MemoryAccess(baseAddress, data, !load, default, isvValid: false, alignment: 1 << (int)((insn >> 10) & 3))) return;
        if (load)
            for (int i = 0; i < registers; i++) SetV((rt + i) & 31, ReadVector(data.Slice(i * length, length)));
        if (postIndex) cpu.SetRegOrSp(rn, baseAddress + (rm == 31 ? (ulong)data.Length : cpu.Reg(rm)));
        Next();
    }

    /// <summary>The low <c>data.Length</c> bytes of a V register, little-endian.</summary>
    private static void WriteVector(Span<byte> data, UInt128 value)
    {
        Span<byte> all = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128LittleEndian(all, value);
        all[..data.Length].CopyTo(data);
    }

    /// <summary><paramref name="data"/> zero-extended to 128 bits (a load zeroes the rest of the register).</summary>
    private static UInt128 ReadVector(ReadOnlySpan<byte> data)
    {
        Span<byte> all = stackalloc byte[16];
        all.Clear();
        data.CopyTo(all);
        return BinaryPrimitives.ReadUInt128LittleEndian(all);
    }
}
