// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Numerics;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE (Arm ARM DDI 0487 chapter C4.1.x "SVE encodings", op0 = 0b0010 at bits 28:25; instruction semantics from the C8
/// pseudocode of each instruction): the subset gcc -O3 -march=armv8.2-a+sve emits for ordinary loops. The enable rule
/// (<see cref="SveTrapped"/>), the effective vector length (<see cref="SveVl"/>) and the register accessors are here;
/// the groups are in A64Interpreter.SvePredicates.cs, .SveInteger.cs, .SvePermute.cs, .SveMemoryFp.cs (loads,
/// stores, floating point), .SveFirstFault.cs (LDFF1/LDNF1 and FFR), .SveStructures.cs (LD2–LD4, ST2–ST4,
/// scatters), .SveHalf.cs (half-precision floating point) and .SveBf16.cs (the BF16 and I8MM instructions). An
/// SVE encoding outside the subset stops the run as an emulation failure.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ESR_ELx.EC 0x19: "Access to SVE functionality trapped as a result of CPACR_EL1.ZEN" (ISS RES0).</summary>
    private const uint EcSveAccess = 0x19;

    private static readonly int ZcrIndex = Arm64SysRegs.Index("ZCR_EL1");

    // Scratch: four Z registers (up to 2048 bits) and three P registers (up to 256 bits).
    private readonly byte[] _z0 = new byte[256], _z1 = new byte[256], _z2 = new byte[256], _z3 = new byte[256];
    private readonly byte[] _p0 = new byte[32], _p1 = new byte[32], _p2 = new byte[32];

    /// <summary>The current vector length in bytes for the instruction being executed.</summary>
    private int _vl;

    /// <summary>
    /// The top-level SVE group (bits 28:25 = 0010). Without the SVE feature the encodings are unallocated
    /// (UNDEFINED, EC 0x00: Arm ARM C4.1 "if !HaveSVE() then UNDEFINED"); with it, CheckSVEEnabled first.
    /// </summary>
    private bool TrySve(uint insn)
    {
        if (cpu.Sve is not { Finalized: true } sve)
        {
            Undefined();
            return true;
        }
        if (TrySve2(insn, sve)) return true; // SVE2 encodings: A64Interpreter.Sve2.cs
        if (TrySveBf16(insn, sve)) return true; // BF16 and I8MM encodings: A64Interpreter.SveBf16.cs
        if (SveTrapped()) return true;
        _vl = SveVl(sve);
        bool done = (insn >> 29) switch
        {
            0 => SveIntegerGroup(insn) || SvePermuteGroup(insn),
            1 => SveFfrGroup(insn) || SvePredicateGroup(insn),
            3 => SveFp(insn),
            4 or 5 or 6 or 7 => SveMemory(insn),
            _ => false,
        };
        if (!done) throw new UnsupportedInstructionStop(insn);
        return true;
    }

    /// <summary>
    /// CheckSVEEnabled (Arm ARM D19.2.30 CPACR_EL1.ZEN, pseudocode AArch64.CheckSVEEnabled): ZEN 0b00/0b10 trap EL0
    /// and EL1, 0b01 traps EL0, 0b11 nothing — an SVE access trap to EL1 (EC 0x19); then the FPEN check of
    /// <see cref="FpTrapped"/> (EC 0x07). KVM's own CPTR_EL2 lazy switch is invisible to the guest. True: trapped.
    /// </summary>
    private bool SveTrapped()
    {
        ulong zen = (cpu.SysRegs[CpacrIndex] >> 16) & 3;
        bool trapped = cpu.AtEl0 ? zen != 3 : (zen & 1) == 0;
        if (trapped)
        {
            TakeException(EcSveAccess, cpu.Pc, far: null);
            return true;
        }
        return FpTrapped();
    }

    /// <summary>
    /// CurrentVL / ImplementedSVEVectorLength (Arm ARM D19.2.163 ZCR_EL1.LEN, "Constraining the vector length"): the
    /// requested (LEN + 1) × 128 bits, capped by ZCR_EL2.LEN (KVM sets it from vcpu->arch.sve_max_vl:
    /// sve_cond_update_zcr_vq(vcpu_sve_max_vq(vcpu) - 1, SYS_ZCR_EL2)), rounded down to an implemented length.
    /// </summary>
    private int SveVl(Arm64SveState sve)
    {
        int vq = Math.Min((int)(cpu.SysRegs[ZcrIndex] & 0xF) + 1, sve.MaxVq);
        while (vq > 1 && !cpu.IdRegs.Model.SveVqAvailable(vq)) vq--;
        return vq * 16;
    }

    // ---- Register and element accessors (Arm ARM Z[], P[], Elem[], ElemP[]) ----

    private byte[] Z(int n, byte[] buf)
    {
        var sve = cpu.Sve!;
        sve.ReadZ(cpu, n, buf.AsSpan(0, sve.Vl));
        return buf;
    }

    /// <summary>Z[n] = value: "_Z[n] = ZeroExtend(value, MAX_VL)" (bits beyond the current VL are zeroed).</summary>
    private void SetZ(int n, byte[] buf)
    {
        var sve = cpu.Sve!;
        buf.AsSpan(_vl, sve.Vl - _vl).Clear();
        sve.WriteZ(cpu, n, buf.AsSpan(0, sve.Vl));
    }

    private byte[] P(int n, byte[] buf)
    {
        var sve = cpu.Sve!;
        sve.Preg(n).CopyTo(buf);
        return buf;
    }

    /// <summary>P[n] = value: "_P[n] = ZeroExtend(value, MAX_PL)".</summary>
    private void SetP(int n, byte[] buf)
    {
        var sve = cpu.Sve!;
        buf.AsSpan(_vl / 8, sve.PregBytes - _vl / 8).Clear();
        buf.AsSpan(0, sve.PregBytes).CopyTo(sve.Preg(n));
    }

    private static ulong E(byte[] z, int e, int esz) => esz switch
    {
        1 => z[e],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(z.AsSpan(e * 2)),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(z.AsSpan(e * 4)),
        _ => BinaryPrimitives.ReadUInt64LittleEndian(z.AsSpan(e * 8)),
    };

    private static void SetE(byte[] z, int e, int esz, ulong v)
    {
        switch (esz)
        {
            case 1: z[e] = (byte)v; break;
            case 2: BinaryPrimitives.WriteUInt16LittleEndian(z.AsSpan(e * 2), (ushort)v); break;
            case 4: BinaryPrimitives.WriteUInt32LittleEndian(z.AsSpan(e * 4), (uint)v); break;
            default: BinaryPrimitives.WriteUInt64LittleEndian(z.AsSpan(e * 8), v); break;
        }
    }

    private static long Sx(ulong v, int esz) => esz == 8 ? (long)v : (long)(v << (64 - 8 * esz)) >> (64 - 8 * esz);

    private static ulong EMask(int esz) => esz == 8 ? ulong.MaxValue : (1UL << (8 * esz)) - 1;

    /// <summary>ElemP[pred, e, esize]: the predicate bit of element e is bit e × esize/8.</summary>
    private static bool Act(byte[] p, int e, int esz) => ((p[e * esz >> 3] >> ((e * esz) & 7)) & 1) != 0;

    /// <summary>ElemP[pred, e, esize] = bit: the element's lowest bit, its other bits cleared.</summary>
    private static void SetAct(byte[] p, int e, int esz, bool bit)
    {
        for (int b = e * esz; b < (e + 1) * esz; b++) p[b >> 3] &= (byte)~(1 << (b & 7));
        if (bit) p[e * esz >> 3] |= (byte)(1 << ((e * esz) & 7));
    }

    private int Elements(int esz) => _vl / esz;

    /// <summary>
    /// PredTest(mask, result, esize) (Arm ARM shared pseudocode): N = the first active element is true, Z = no active
    /// element is true, C = NOT (the last active element is true), V = 0.
    /// </summary>
    private void PredTest(byte[] mask, byte[] result, int esz)
    {
        bool n = false, z = true, c = true, first = true;
        for (int e = 0; e < Elements(esz); e++)
        {
            if (!Act(mask, e, esz)) continue;
            bool r = Act(result, e, esz);
            if (first) n = r;
            first = false;
            if (r) z = false;
            c = !r;
        }
        SetNzcv((n ? 8u : 0) | (z ? 4u : 0) | (c ? 2u : 0));
    }

    /// <summary>
    /// DecodePredCount(pattern, esize): POW2, VL1–VL8, VL16–VL256 (0 when there are fewer elements), MUL4, MUL3, ALL;
    /// the unallocated patterns give 0.
    /// </summary>
    private int PredCount(uint pattern, int esz)
    {
        int elements = Elements(esz);
        int Fixed(int n) => elements >= n ? n : 0;
        return pattern switch
        {
            0 => 1 << (31 - BitOperations.LeadingZeroCount((uint)elements)),
            >= 1 and <= 8 => Fixed((int)pattern),
            >= 9 and <= 13 => Fixed(16 << (int)(pattern - 9)),
            29 => elements - elements % 4,
            30 => elements - elements % 3,
            31 => elements,
            _ => 0,
        };
    }

    private static int Esz(uint insn) => 1 << (int)((insn >> 22) & 3);
}
