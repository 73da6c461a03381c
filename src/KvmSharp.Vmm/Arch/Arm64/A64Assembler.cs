// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// A minimal A64 encoder for the arm64 micro-VM guests and the arm64 conformance cases (no A64 assembler package is available):
/// exactly the subset the emulated interpreter runs — MOVZ/MOVN/MOVK, ADD/SUB(S) immediate and shifted register,
/// CMP, MOV, AND/ORR/EOR, LDR/STR (unsigned offset, post-index; 8/16/32/64-bit), B, BL, B.cond, CBZ/CBNZ, BR, BLR,
/// RET, NOP, WFI, HVC, UDF. Encodings follow the Arm ARM (DDI 0487) instruction pages; the tests pin each form
/// against GNU as output. Branches to labels are resolved by <see cref="Assemble"/>.
/// </summary>
public sealed class A64Assembler
{
    private readonly List<uint> _code = [];
    private readonly List<(int At, A64Label Label, BranchKind Kind)> _fixups = [];

    private enum BranchKind { Imm26, Imm19 }

    /// <summary>Bytes emitted so far.</summary>
    public int Position => _code.Count * 4;

    /// <summary>A new, unbound branch target.</summary>
    public A64Label CreateLabel() => new();

    /// <summary>Binds <paramref name="label"/> to the current position.</summary>
    public void Bind(A64Label label)
    {
        ArgumentNullException.ThrowIfNull(label);
        if (label.Position >= 0) throw new InvalidOperationException("label bound twice");
        label.Position = Position;
    }

    /// <summary>The little-endian instruction stream, with every label resolved.</summary>
    public byte[] Assemble()
    {
        foreach (var (at, label, kind) in _fixups)
        {
            if (label.Position < 0) throw new InvalidOperationException("branch to an unbound label");
            long delta = (label.Position - at * 4) / 4;
            _code[at] |= kind == BranchKind.Imm26 ? Field(delta, 26, 0) : Field(delta, 19, 5);
        }
        byte[] bytes = new byte[_code.Count * 4];
        for (int i = 0; i < _code.Count; i++) BitConverter.TryWriteBytes(bytes.AsSpan(i * 4), _code[i]);
        return bytes;
    }

    /// <summary>Emits a raw instruction word.</summary>
    public void Emit(uint instruction) => _code.Add(instruction);

    // ---- move wide ----
    /// <summary>MOVZ Rd, #imm, LSL #shift.</summary>
    public void Movz(A64Register rd, ushort imm, int shift = 0) => MoveWide(0b10, rd, imm, shift);

    /// <summary>MOVN Rd, #imm, LSL #shift.</summary>
    public void Movn(A64Register rd, ushort imm, int shift = 0) => MoveWide(0b00, rd, imm, shift);

    /// <summary>MOVK Rd, #imm, LSL #shift.</summary>
    public void Movk(A64Register rd, ushort imm, int shift = 0) => MoveWide(0b11, rd, imm, shift);

    /// <summary>MOVZ then MOVK for each further non-zero halfword: any 64-bit (or 32-bit) constant.</summary>
    public void MovImm(A64Register rd, ulong value)
    {
        Movz(rd, (ushort)value);
        int halves = rd.Is64 ? 4 : 2;
        for (int i = 1; i < halves; i++)
        {
            ushort half = (ushort)(value >> (16 * i));
            if (half != 0) Movk(rd, half, 16 * i);
        }
    }

    private void MoveWide(uint opc, A64Register rd, ushort imm, int shift)
    {
        NotSp(rd);
        if (shift % 16 != 0 || shift < 0 || shift >= (rd.Is64 ? 64 : 32)) throw new ArgumentOutOfRangeException(nameof(shift), shift, "LSL #0/16/32/48");
        Emit(Sf(rd) | (opc << 29) | (0b100101u << 23) | ((uint)(shift / 16) << 21) | ((uint)imm << 5) | (uint)rd.Number);
    }

    // ---- add/subtract ----
    /// <summary>ADD Rd|SP, Rn|SP, #imm12{, LSL #12}.</summary>
    public void AddImm(A64Register rd, A64Register rn, uint imm12, bool lsl12 = false) => AddSubImm(false, false, rd, rn, imm12, lsl12);

    /// <summary>SUB Rd|SP, Rn|SP, #imm12{, LSL #12}.</summary>
    public void SubImm(A64Register rd, A64Register rn, uint imm12, bool lsl12 = false) => AddSubImm(true, false, rd, rn, imm12, lsl12);

    /// <summary>ADDS Rd, Rn|SP, #imm12{, LSL #12}.</summary>
    public void AddsImm(A64Register rd, A64Register rn, uint imm12, bool lsl12 = false) => AddSubImm(false, true, rd, rn, imm12, lsl12);

    /// <summary>SUBS Rd, Rn|SP, #imm12{, LSL #12}.</summary>
    public void SubsImm(A64Register rd, A64Register rn, uint imm12, bool lsl12 = false) => AddSubImm(true, true, rd, rn, imm12, lsl12);

    /// <summary>CMP Rn, #imm = SUBS XZR/WZR, Rn, #imm.</summary>
    public void CmpImm(A64Register rn, uint imm12) => SubsImm(rn.Is64 ? A64Register.Xzr : A64Register.Wzr, rn, imm12);

    private void AddSubImm(bool sub, bool setFlags, A64Register rd, A64Register rn, uint imm12, bool lsl12)
    {
        SameWidth(rd, rn);
        if (imm12 > 0xfff) throw new ArgumentOutOfRangeException(nameof(imm12), imm12, "12-bit immediate");
        // Rn is SP-or-register; Rd is SP-or-register without S, zero-register with S.
        if (rn.Number == 31 && !rn.IsSp) throw new ArgumentException("ADD/SUB (immediate) reads SP, not XZR, as register 31", nameof(rn));
        if (rd.Number == 31 && rd.IsSp == setFlags) throw new ArgumentException($"register 31 is {(setFlags ? "XZR" : "SP")} here", nameof(rd));
        Emit(Sf(rd) | (sub ? 1u << 30 : 0) | (setFlags ? 1u << 29 : 0) | (0b100010u << 23) | (lsl12 ? 1u << 22 : 0) |
             (imm12 << 10) | ((uint)rn.Number << 5) | (uint)rd.Number);
    }

    /// <summary>ADD Rd, Rn, Rm{, LSL #lsl}.</summary>
    public void Add(A64Register rd, A64Register rn, A64Register rm, int lsl = 0) => AddSubShifted(false, false, rd, rn, rm, lsl);

    /// <summary>SUB Rd, Rn, Rm{, LSL #lsl}.</summary>
    public void Sub(A64Register rd, A64Register rn, A64Register rm, int lsl = 0) => AddSubShifted(true, false, rd, rn, rm, lsl);

    /// <summary>ADDS Rd, Rn, Rm{, LSL #lsl}.</summary>
    public void Adds(A64Register rd, A64Register rn, A64Register rm, int lsl = 0) => AddSubShifted(false, true, rd, rn, rm, lsl);

    /// <summary>SUBS Rd, Rn, Rm{, LSL #lsl}.</summary>
    public void Subs(A64Register rd, A64Register rn, A64Register rm, int lsl = 0) => AddSubShifted(true, true, rd, rn, rm, lsl);

    /// <summary>CMP Rn, Rm = SUBS XZR/WZR, Rn, Rm.</summary>
    public void Cmp(A64Register rn, A64Register rm) => Subs(rn.Is64 ? A64Register.Xzr : A64Register.Wzr, rn, rm);

    private void AddSubShifted(bool sub, bool setFlags, A64Register rd, A64Register rn, A64Register rm, int lsl)
    {
        SameWidth(rd, rn);
        SameWidth(rd, rm);
        NotSp(rd);
        NotSp(rn);
        NotSp(rm);
        CheckShift(rd, lsl);
        Emit(Sf(rd) | (sub ? 1u << 30 : 0) | (setFlags ? 1u << 29 : 0) | (0b01011u << 24) | ((uint)rm.Number << 16) |
             ((uint)lsl << 10) | ((uint)rn.Number << 5) | (uint)rd.Number);
    }

    // ---- logical (shifted register) ----
    /// <summary>AND Rd, Rn, Rm{, LSL #lsl}.</summary>
    public void And(A64Register rd, A64Register rn, A64Register rm, int lsl = 0) => Logical(0b00, rd, rn, rm, lsl);

    /// <summary>ORR Rd, Rn, Rm{, LSL #lsl}.</summary>
    public void Orr(A64Register rd, A64Register rn, A64Register rm, int lsl = 0) => Logical(0b01, rd, rn, rm, lsl);

    /// <summary>EOR Rd, Rn, Rm{, LSL #lsl}.</summary>
    public void Eor(A64Register rd, A64Register rn, A64Register rm, int lsl = 0) => Logical(0b10, rd, rn, rm, lsl);

    /// <summary>ANDS Rd, Rn, Rm{, LSL #lsl}.</summary>
    public void Ands(A64Register rd, A64Register rn, A64Register rm, int lsl = 0) => Logical(0b11, rd, rn, rm, lsl);

    /// <summary>MOV Rd, Rm = ORR Rd, ZR, Rm.</summary>
    public void Mov(A64Register rd, A64Register rm) => Orr(rd, rd.Is64 ? A64Register.Xzr : A64Register.Wzr, rm);

    private void Logical(uint opc, A64Register rd, A64Register rn, A64Register rm, int lsl)
    {
        SameWidth(rd, rn);
        SameWidth(rd, rm);
        NotSp(rd);
        NotSp(rn);
        NotSp(rm);
        CheckShift(rd, lsl);
        Emit(Sf(rd) | (opc << 29) | (0b01010u << 24) | ((uint)rm.Number << 16) | ((uint)lsl << 10) |
             ((uint)rn.Number << 5) | (uint)rd.Number);
    }

    // ---- loads and stores (unsigned offset) ----
    /// <summary>LDR Xt/Wt, [Xn|SP, #offset]: 8 bytes for Xt, 4 for Wt.</summary>
    public void Ldr(A64Register rt, A64Register rn, uint offset = 0) => LoadStore(rt.Is64 ? 3 : 2, 0b01, rt, rn, offset);

    /// <summary>STR Xt/Wt, [Xn|SP, #offset]: 8 bytes for Xt, 4 for Wt.</summary>
    public void Str(A64Register rt, A64Register rn, uint offset = 0) => LoadStore(rt.Is64 ? 3 : 2, 0b00, rt, rn, offset);

    /// <summary>LDRB Wt, [Xn|SP, #offset].</summary>
    public void Ldrb(A64Register rt, A64Register rn, uint offset = 0) => LoadStore(0, 0b01, Narrow(rt), rn, offset);

    /// <summary>STRB Wt, [Xn|SP, #offset].</summary>
    public void Strb(A64Register rt, A64Register rn, uint offset = 0) => LoadStore(0, 0b00, Narrow(rt), rn, offset);

    /// <summary>LDRH Wt, [Xn|SP, #offset].</summary>
    public void Ldrh(A64Register rt, A64Register rn, uint offset = 0) => LoadStore(1, 0b01, Narrow(rt), rn, offset);

    /// <summary>STRH Wt, [Xn|SP, #offset].</summary>
    public void Strh(A64Register rt, A64Register rn, uint offset = 0) => LoadStore(1, 0b00, Narrow(rt), rn, offset);

    private void LoadStore(int size, uint opc, A64Register rt, A64Register rn, uint offset)
    {
        NotSp(rt);
        BaseRegister(rn);
        uint scale = 1u << size;
        if (offset % scale != 0 || offset / scale > 0xfff) throw new ArgumentOutOfRangeException(nameof(offset), offset, $"a multiple of {scale} up to {0xfff * scale}");
        Emit(((uint)size << 30) | 0x3900_0000u | (opc << 22) | ((offset / scale) << 10) | ((uint)rn.Number << 5) | (uint)rt.Number);
    }

    /// <summary>STR Xt/Wt, [Xn|SP], #imm (post-index: the base is written back, so an abort has no valid syndrome).</summary>
    public void StrPost(A64Register rt, A64Register rn, int imm9) => LoadStorePost(rt.Is64 ? 3 : 2, 0b00, rt, rn, imm9);

    /// <summary>LDR Xt/Wt, [Xn|SP], #imm (post-index).</summary>
    public void LdrPost(A64Register rt, A64Register rn, int imm9) => LoadStorePost(rt.Is64 ? 3 : 2, 0b01, rt, rn, imm9);

    private void LoadStorePost(int size, uint opc, A64Register rt, A64Register rn, int imm9)
    {
        NotSp(rt);
        BaseRegister(rn);
        if (imm9 is < -256 or > 255) throw new ArgumentOutOfRangeException(nameof(imm9), imm9, "-256..255");
        if (rt.Number == rn.Number && rn.Number != 31) throw new ArgumentException("writeback with Rt == Rn is unpredictable", nameof(rt));
        Emit(((uint)size << 30) | 0x3800_0400u | (opc << 22) | (((uint)imm9 & 0x1ff) << 12) | ((uint)rn.Number << 5) | (uint)rt.Number);
    }

    // ---- branches ----
    /// <summary>B label.</summary>
    public void B(A64Label target) => Branch(0x1400_0000, target, BranchKind.Imm26);

    /// <summary>BL label (return address in X30).</summary>
    public void Bl(A64Label target) => Branch(0x9400_0000, target, BranchKind.Imm26);

    /// <summary>B.cond label.</summary>
    public void B(A64Condition cond, A64Label target) => Branch(0x5400_0000 | (uint)cond, target, BranchKind.Imm19);

    /// <summary>CBZ Rt, label.</summary>
    public void Cbz(A64Register rt, A64Label target)
    {
        NotSp(rt);
        Branch(Sf(rt) | 0x3400_0000 | (uint)rt.Number, target, BranchKind.Imm19);
    }

    /// <summary>CBNZ Rt, label.</summary>
    public void Cbnz(A64Register rt, A64Label target)
    {
        NotSp(rt);
        Branch(Sf(rt) | 0x3500_0000 | (uint)rt.Number, target, BranchKind.Imm19);
    }

    /// <summary>BR Xn.</summary>
    public void Br(A64Register rn) => Emit(0xD61F_0000 | ((uint)X64(rn).Number << 5));

    /// <summary>BLR Xn (return address in X30).</summary>
    public void Blr(A64Register rn) => Emit(0xD63F_0000 | ((uint)X64(rn).Number << 5));

    /// <summary>RET (X30 unless given).</summary>
    public void Ret(A64Register? rn = null) => Emit(0xD65F_0000 | ((uint)X64(rn ?? A64Register.X(30)).Number << 5));

    private void Branch(uint opcode, A64Label target, BranchKind kind)
    {
        ArgumentNullException.ThrowIfNull(target);
        _fixups.Add((_code.Count, target, kind));
        Emit(opcode);
    }

    // ---- system ----
    /// <summary>NOP.</summary>
    public void Nop() => Emit(0xD503_201F);

    /// <summary>WFI.</summary>
    public void Wfi() => Emit(0xD503_207F);

    /// <summary>HVC #imm16.</summary>
    public void Hvc(ushort imm16 = 0) => Emit(0xD400_0002 | ((uint)imm16 << 5));

    /// <summary>BRK #imm16: a Breakpoint instruction exception (Arm ARM C6.2 BRK).</summary>
    public void Brk(ushort imm16 = 0) => Emit(0xD420_0000 | ((uint)imm16 << 5));

    /// <summary>UDF #imm16: permanently undefined.</summary>
    public void Udf(ushort imm16 = 0) => Emit(imm16);

    /// <summary>MRS Xt, &lt;sysreg&gt;; <paramref name="encoding"/> is op0:op1:CRn:CRm:op2 (KvmArm64SysRegs.Encoding).</summary>
    public void Mrs(A64Register rt, ulong encoding) => Emit(0xD530_0000 | ((uint)(encoding & 0x7FFF) << 5) | (uint)X64(rt).Number);

    /// <summary>MSR &lt;sysreg&gt;, Xt.</summary>
    public void Msr(ulong encoding, A64Register rt) => Emit(0xD510_0000 | ((uint)(encoding & 0x7FFF) << 5) | (uint)X64(rt).Number);

    /// <summary>MSR DAIFSet, #imm4 (<paramref name="set"/>) or MSR DAIFClr, #imm4.</summary>
    public void MsrDaif(bool set, uint imm4) => Emit(0xD503_401F | ((set ? 6u : 7u) << 5) | ((imm4 & 0xF) << 8));

    /// <summary>ERET.</summary>
    public void Eret() => Emit(0xD69F_03E0);

    private static uint Sf(A64Register r) => r.Is64 ? 1u << 31 : 0;

    private static uint Field(long value, int bits, int shift)
    {
        long limit = 1L << (bits - 1);
        if (value < -limit || value >= limit) throw new InvalidOperationException($"branch offset {value * 4} out of range");
        return (uint)((ulong)value & ((1UL << bits) - 1)) << shift;
    }

    private static void NotSp(A64Register r)
    {
        if (r.IsSp) throw new ArgumentException("SP is not allowed here (register 31 is the zero register)", nameof(r));
    }

    private static void BaseRegister(A64Register rn)
    {
        if (!rn.Is64 || (rn.Number == 31 && !rn.IsSp)) throw new ArgumentException("the base register is an X register or SP", nameof(rn));
    }

    private static A64Register X64(A64Register r)
    {
        if (!r.Is64 || r.IsSp) throw new ArgumentException("an X register", nameof(r));
        return r;
    }

    private static A64Register Narrow(A64Register r) =>
        r.Is64 ? throw new ArgumentException("byte and halfword accesses name a W register", nameof(r)) : r;

    private static void SameWidth(A64Register a, A64Register b)
    {
        if (a.Is64 != b.Is64) throw new ArgumentException($"{a} and {b} differ in width");
    }

    private static void CheckShift(A64Register rd, int lsl)
    {
        if (lsl < 0 || lsl >= (rd.Is64 ? 64 : 32)) throw new ArgumentOutOfRangeException(nameof(lsl), lsl, "shift amount");
    }
}
