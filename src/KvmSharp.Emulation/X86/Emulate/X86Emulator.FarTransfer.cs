// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Far JMP, CALL and RET to the same privilege level (Intel SDM Vol. 2A JMP/CALL/RET "far"; arch/x86/kvm/emulate.c
/// em_jmp_far, em_call_far, em_ret_far). Real mode: CS = selector, base = selector × 16. Protected and long mode:
/// the code segment is loaded from the GDT with <see cref="LoadCodeSegment"/>'s checks, which is how a guest moves
/// from real mode to 32-bit code and from compatibility mode to 64-bit code. Gates, TSSs and privilege changes are
/// outside the subset (emulation failure); a far RET to an outer ring in long mode is X86Emulator.RingReturn.cs.
/// </summary>
internal sealed partial class X86Emulator
{
    private static bool IsFarBranch(in Instruction i) =>
        i.GetOpKind(0) is OpKind.FarBranch16 or OpKind.FarBranch32 ||
        (i.GetOpKind(0) == OpKind.Memory && i.MemorySize is MemorySize.SegPtr16 or MemorySize.SegPtr32 or MemorySize.SegPtr64);

    /// <summary>The operand size of a far branch: the offset's width (2, 4 or 8 bytes).</summary>
    private static int FarOffsetSize(in Instruction i) => i.GetOpKind(0) switch
    {
        OpKind.FarBranch16 => 2,
        OpKind.FarBranch32 => 4,
        _ => i.MemorySize switch { MemorySize.SegPtr16 => 2, MemorySize.SegPtr32 => 4, _ => 8 },
    };

    /// <summary>selector:offset of a far JMP/CALL: an immediate ptr16:16/32, or m16:16/32/64 (offset first).</summary>
    private (ushort Selector, ulong Offset) FarPointer(in Instruction i, int size)
    {
        switch (i.GetOpKind(0))
        {
            case OpKind.FarBranch16: return (i.FarBranchSelector, i.FarBranch16);
            case OpKind.FarBranch32: return (i.FarBranchSelector, i.FarBranch32);
        }
        ulong ea = EffectiveAddress(i);
        ulong offset = ReadMemory(i.MemorySegment, ea, size);
        ushort selector = (ushort)ReadMemory(i.MemorySegment, ea + (ulong)size, 2);
        return (selector, offset);
    }

    /// <summary>
    /// The CS that a far transfer to <paramref name="selector"/>:<paramref name="offset"/> loads, checked but not yet
    /// committed (a CALL pushes first). Returns the offset as the new RIP.
    /// </summary>
    private (Abi.kvm_segment Cs, ulong Rip) FarTarget(ushort selector, ulong offset, int size, int cpl = -1, bool checkOffset = true)
    {
        offset &= Alu.Mask(size);
        if (!_cpu.ProtectedMode)
        {
            var cs = _cpu.Sregs.cs;
            cs.selector = selector;
            cs.@base = (ulong)selector << 4;
            return (cs, offset);
        }
        int error = selector & 0xfffc;
        if (error != 0)
        {
            ulong raw = ReadDescriptor(selector, error);
            // S = 0: a call gate, task gate or TSS, which would change tasks or privilege.
            if ((raw & (1UL << 44)) == 0) throw new EmulationFailure("far transfer through a gate or TSS", haveInstructionBytes: true);
        }
        // cpl: the new CPL of a far RET to an outer ring (X86Emulator.RingReturn.cs), else the current one.
        var seg = LoadCodeSegment(selector, cpl < 0 ? _cpu.Cpl : cpl);
        if (checkOffset) CheckFarOffset(seg, offset);
        return (seg, offset);
    }

    /// <summary>The new RIP's check against the new CS: canonical for a 64-bit target (no limit check), else within the limit; #GP(0).</summary>
    private void CheckFarOffset(in Abi.kvm_segment seg, ulong offset)
    {
        if (_cpu.LongModeActive && seg.l != 0)
        {
            // A 64-bit target: the offset must be canonical (#GP(0)); there is no limit check.
            if (!IsCanonical(offset)) throw new GuestFault(GP_VECTOR);
        }
        else if (offset > seg.limit)
        {
            throw new GuestFault(GP_VECTOR);
        }
    }

    private ulong FarJump(in Instruction i)
    {
        int size = FarOffsetSize(i);
        var (selector, offset) = FarPointer(i, size);
        var (cs, rip) = FarTarget(selector, offset, size);
        _cpu.Sregs.cs = cs;
        return rip;
    }

    /// <summary>Far CALL: the target is checked, then CS and the return offset are pushed (operand-size slots each).</summary>
    private ulong FarCall(in Instruction i, ulong returnOffset)
    {
        int size = FarOffsetSize(i);
        var (selector, offset) = FarPointer(i, size);
        var (cs, rip) = FarTarget(selector, offset, size);
        Push(_cpu.Sregs.cs.selector, size);
        Push(returnOffset, size);
        _cpu.Sregs.cs = cs;
        return rip;
    }

    /// <summary>Far RET [imm16]: pops the offset and CS; a return to an outer privilege level pops SS:RSP too (long mode only).</summary>
    private ulong FarReturn(in Instruction i)
    {
        ulong imm = i.OpCount > 0 ? i.GetImmediate(0) : 0;
        int size = (i.StackPointerIncrement - (int)imm) / 2;
        ulong offset = Pop(size);
        ushort selector = (ushort)Pop(size);
        if (_cpu.ProtectedMode)
        {
            int rpl = selector & 3;
            if ((selector & 0xfffc) != 0 && rpl < _cpu.Cpl) throw new GuestFault(GP_VECTOR, selector & 0xfffc);
            if (rpl > _cpu.Cpl) return FarReturnOuter(selector, offset, size, imm); // X86Emulator.RingReturn.cs
        }
        var (cs, rip) = FarTarget(selector, offset, size);
        _cpu.Sregs.cs = cs;
        if (imm != 0) WriteStackPointer(ReadStackPointer() + imm);
        return rip;
    }
}
