// SPDX-License-Identifier: MIT
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The parts of IRET and far RET that a return to an outer privilege level adds (Intel SDM Vol. 2A IRET
/// "RETURN-TO-OUTER-PRIVILEGE-LEVEL", RET "RETURN-TO-OUTER-PRIVILEGE-LEVEL"; AMD APM Vol. 3 IRET, RET (Far)): the
/// RFLAGS bits IRET may restore at the old CPL, the data segment registers the new CPL may not use, and the far RET
/// that pops SS:RSP too (long mode only). KVM's emulator leaves these to the CPU (emulate.c em_iret handles real mode,
/// em_ret_far refuses an outer return), so the CPU is the reference.
/// </summary>
internal sealed partial class X86Emulator
{
    private const ulong RflagsIopl = 0x3000, RflagsVif = 1UL << 19, RflagsVip = 1UL << 20;

    /// <summary>
    /// RFLAGS after IRET (SDM Vol. 2A IRET, "EFLAGS ← tempEFLAGS" steps): CF PF AF ZF SF TF DF OF NT always, RF AC ID
    /// with a 32/64-bit operand, IF only if CPL ≤ IOPL, IOPL and VIF/VIP only at CPL 0 — CPL and IOPL as they were
    /// before the IRET.
    /// </summary>
    private static ulong IretFlags(ulong f, ulong popped, int cpl, int size)
    {
        ulong writable = IretWritable & Alu.Mask(size);
        if (cpl > (int)((f & RflagsIopl) >> 12)) writable &= ~RFLAGS_IF;
        if (cpl != 0) writable &= ~(RflagsIopl | RflagsVif | RflagsVip);
        return (f & ~writable) | (popped & writable) | RFLAGS_FIXED;
    }

    /// <summary>
    /// After a return to the outer <paramref name="cpl"/>: DS, ES, FS and GS holding a data or non-conforming code
    /// segment with DPL &lt; CPL are made null (SDM: "SegmentSelector ← 0; (* Segment selector invalid *)"); the base of
    /// FS and GS stays (64-bit mode keeps it in the MSRs).
    /// </summary>
    private void NullInaccessibleDataSegments(int cpl)
    {
        NullIfInaccessible(ref _cpu.Sregs.ds, cpl);
        NullIfInaccessible(ref _cpu.Sregs.es, cpl);
        NullIfInaccessible(ref _cpu.Sregs.fs, cpl);
        NullIfInaccessible(ref _cpu.Sregs.gs, cpl);
    }

    private static void NullIfInaccessible(ref Abi.kvm_segment seg, int cpl)
    {
        if (seg.unusable != 0) return;
        bool conformingCode = (seg.type & 0xc) == 0xc;
        if (seg.s == 0 || conformingCode || seg.dpl >= cpl) return;
        var unusable = default(Abi.kvm_segment);
        unusable.@base = seg.@base;
        unusable.unusable = 1;
        seg = unusable;
    }

    /// <summary>
    /// Far RET to an outer privilege level in long mode (SDM Vol. 2A RET "RETURN-TO-OUTER-PRIVILEGE-LEVEL"): after
    /// RIP and CS, skip the immediate, pop RSP and SS (operand-size slots); CS is checked against its RPL (non-conforming:
    /// DPL = RPL; conforming: DPL ≤ RPL), SS like IRET's (RPL = DPL = the new CPL, writable data; null only for a new
    /// CPL &lt; 3), then the return RIP (canonical, or within CS's limit); then the new CPL's stack is released by the
    /// immediate too and the data segments are checked.
    /// </summary>
    private ulong FarReturnOuter(ushort selector, ulong offset, int size, ulong imm)
    {
        if (!_cpu.LongModeActive) throw new EmulationFailure("far RET to an outer privilege level outside long mode", haveInstructionBytes: true);
        WriteStackPointer(ReadStackPointer() + imm);
        ulong rsp = Pop(size);
        ushort ssSelector = (ushort)Pop(size);
        int rpl = selector & 3;
        // SDM Vol. 2A RET "IA-32E-MODE-RETURN-OUTER-PRIVILEGE-LEVEL": the return CS's checks, then the stack segment's
        // (null, table limit, RPL/type/DPL → #GP(selector), not present → #SS), and only then "IF the return
        // instruction pointer is not within the return code segment limit" / "… not within canonical address space
        // THEN #GP(0)".
        var (cs, rip) = FarTarget(selector, offset, size, rpl, checkOffset: false);
        var ss = LoadStackSegmentFor64(ssSelector, rpl);
        CheckFarOffset(cs, rip);
        _cpu.Sregs.cs = cs;
        _cpu.Sregs.ss = ss;
        _cpu.Gpr[X86Cpu.RSP] = rsp + imm;
        NullInaccessibleDataSegments(rpl);
        return rip;
    }
}
