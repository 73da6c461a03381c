// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Fuzzing;

/// <summary>
/// Real-mode programs that take interrupts and exceptions through the IVT (Intel SDM Vol. 3A 20.1.4, Vol. 2A INT n
/// "REAL-ADDRESS-MODE"; arch/x86/kvm/emulate.c __emulate_int_real; the emulator's X86Emulator.RealModeEvents.cs;
/// conformance RealModeInterruptTests). Layout (one slot at GPA 0, CS = 0x1000, DS = ES = SS = 0, SP = 0x8000): the IVT at
/// 0 sends vector v to 0200:8v (<see cref="IvtStubs"/>), whose stub records v with an OUT to <see cref="PortBase"/> and
/// returns with IRET, adding the byte at <see cref="SkipSlot"/> to the IP pushed: the program writes there, before each
/// event, how long the instruction is when it is a fault (the frame then holds the faulting IP) and 0 otherwise.
/// Events drawn: INT n (n below 0x80), INT3, INTO with OF set and clear, DIV/IDIV faults (#DE), BOUND (rarely: an
/// emulation failure on both kernels, no #BR), words beyond DS:0xFFFF or ES:0xFFFF (#GP) and SS:0xFFFF, POP at
/// SP = 0xFFFF (#SS), LLDT/SLDT (#UD), and HLT, where the run injects an interrupt (KVM_INTERRUPT or KVM_SET_VCPU_EVENTS).
/// Never drawn: INT n with n ≥ 0x80 (HostDeviations.KvmPvmRealModeHighSoftwareInterruptsSpin: KVM_RUN never returns on
/// kvm_pvm, not even with reported divergences drawn); an IVT limit below 0x3FF only with reported divergences
/// (HostDeviations.KvmPvmRealModeIgnoresIvtLimit, chosen by the run).
/// </summary>
internal static partial class TinyGuestProgram
{
    /// <summary>Where the real-mode IVT programs keep the length to skip after a fault (DS = 0).</summary>
    public const int SkipSlot = 0x600;

    /// <summary>Where a PUSH at SP = 1 keeps SP meanwhile (DS = 0).</summary>
    private const int SpSave = 0x604;

    /// <summary>The BOUND pair (DS = 0).</summary>
    private const int BoundPair = 0x608;

    /// <summary>The IVT stubs' segment and the offset of their common tail in it.</summary>
    public const ushort StubSegment = 0x200;

    private const int StubCommon = 0x800;

    /// <summary>
    /// The stub segment's bytes (at 0200:0000): for each vector v at 8v <c>push ax; mov al, v; jmp common</c>; common
    /// saves BP and DX, OUTs AL to <see cref="PortBase"/>, adds the byte at <see cref="SkipSlot"/> to the IP in the frame,
    /// clears the slot and IRETs.
    /// </summary>
    public static byte[] IvtStubs()
    {
        var bytes = new byte[StubCommon + 0x40];
        Array.Fill(bytes, (byte)0xF4);
        for (int v = 0; v < 256; v++)
        {
            var s = new Assembler(16);
            s.push(ax);
            s.mov(al, (byte)v);
            s.jmp((ulong)StubCommon);
            Encode(s, (ulong)v * 8).CopyTo(bytes, v * 8);
        }
        var a = new Assembler(16);
        a.push(bp);
        a.push(dx);
        a.mov(bp, sp);
        a.mov(dx, (short)PortBase);
        a.@out(dx, al);
        a.mov(al, __byte_ptr[SkipSlot]);
        a.mov(ah, 0);
        a.add(__word_ptr[bp + 6], ax); // the IP: [bp] DX, [bp+2] BP, [bp+4] AX, [bp+6] IP, CS, FLAGS
        a.mov(__byte_ptr[SkipSlot], 0);
        a.pop(dx);
        a.pop(bp);
        a.pop(ax);
        a.iret();
        Encode(a, StubCommon).CopyTo(bytes, StubCommon);
        return bytes;
    }

    /// <summary>The real-mode IVT program of <paramref name="seed"/> (runs at CS:0, ends in HLT).</summary>
    /// <param name="seed">The program's seed.</param>
    /// <param name="dataOffset">The data page (DS-relative) plain loads and stores use.</param>
    public static byte[] RealModeIvt(ulong seed, int dataOffset)
    {
        var rng = new Random(unchecked((int)seed * 29 + 0x1F7));
        var a = new Assembler(16);
        int count = rng.Next(1, MaxInstructions + 1);
        for (int i = 0; i < count; i++)
        {
            int r = rng.Next(s_rm16.Length);
            int s = rng.Next(s_rm16.Length);
            switch (rng.Next(100))
            {
                case < 10:
                    a.mov(s_rm16[r], (short)rng.Next(0x10000));
                    break;
                case < 18:
                    switch (rng.Next(3))
                    {
                        case 0: a.add(s_rm16[r], s_rm16[s]); break;
                        case 1: a.sub(s_rm32[r], s_rm32[s]); break;
                        default: a.xor(s_rm16[r], s_rm16[s]); FixFlags16(a); break;
                    }
                    break;
                case < 24:
                    Load16(a, rng, r, 1 << rng.Next(3), dataOffset + rng.Next(0, 0x1000 - 4));
                    break;
                case < 30:
                    Store16(a, rng, r, 1 << rng.Next(3), dataOffset + rng.Next(0, 0x1000 - 4));
                    break;
                case < 34:
                    if (rng.Next(2) == 0) a.push(s_rm16[r]); else a.pop(s_rm16[r]);
                    break;
                default:
                    RealModeEvent(a, rng);
                    break;
            }
        }
        a.mov(__byte_ptr[SkipSlot], 0);
        a.hlt();
        return Encode(a, 0);
    }

    /// <summary>One event: the skip slot written, then the instruction (and what sets it up).</summary>
    private static void RealModeEvent(Assembler a, Random x)
    {
        switch (x.Next(12))
        {
            case 0 or 1:
                Event(a, 0, e => e.@int((byte)x.Next(0x80)));
                break;
            case 2:
                Event(a, 0, e => e.int3());
                break;
            case 3:
            {
                // INTO with OF set (#OF, vector 4, a trap) or clear (nothing).
                bool set = x.Next(2) == 0;
                a.pushf();
                a.pop(ax);
                if (set) a.or(ah, 8); else a.and(ah, unchecked((sbyte)0xF7));
                a.push(ax);
                a.popf();
                Event(a, 0, e => e.into());
                break;
            }
            case 4:
                // #DE: a zero divisor or a quotient too large (SDM Vol. 2A DIV/IDIV); the frame keeps the flags of the
                // XOR or CMP before it (a faulting DIV changes none).
                switch (x.Next(4))
                {
                    case 0: a.xor(bl, bl); Event(a, -1, e => e.div(bl)); break;
                    case 1: a.xor(cx, cx); Event(a, -1, e => e.div(cx)); break;
                    case 2: a.mov(dx, unchecked((short)0xFFFF)); a.mov(cx, 1); a.cmp(cx, dx); Event(a, -1, e => e.div(cx)); break;
                    default: a.mov(ax, unchecked((short)0x8000)); a.cwd(); a.mov(cx, -1); a.cmp(cx, dx); Event(a, -1, e => e.idiv(cx)); break;
                }
                break;
            case 5 when x.Next(4) != 0:
                Event(a, 0, e => e.@int((byte)x.Next(0x80)));
                break;
            case 5:
            {
                // BOUND: an emulation failure (KVM_EXIT_INTERNAL_ERROR) on both kernels — kvm_pvm runs real mode through
                // KVM's instruction emulator, whose opcode_table has no 0x62 (emulate.c: "N"), and the emulator does the
                // same (as for UD2, X86Emulator.RealModeEvents.cs InvalidOpcodeStop). Rare: it ends the run. Bounds
                // around or beside the index, for the day #BR (vector 5) is delivered.
                short lo = (short)x.Next(-4, 5), hi = (short)(lo + x.Next(0, 5));
                a.mov(__word_ptr[BoundPair], lo);
                a.mov(__word_ptr[BoundPair + 2], hi);
                a.mov(ax, (short)x.Next(-6, 10));
                Event(a, -1, e => e.bound(ax, __dword_ptr[BoundPair]));
                break;
            }
            case 6:
                // Beyond the 64 KiB limit of DS or ES: #GP; of SS: #SS (emulate.c __linearize). A byte at 0xFFFF is fine.
                switch (x.Next(6))
                {
                    case 0: Event(a, -1, e => e.mov(ax, __word_ptr[0xFFFF])); break;
                    case 1: Event(a, -1, e => e.mov(__word_ptr[0xFFFF], bx)); break;
                    case 2: Event(a, -1, e => e.mov(eax, __dword_ptr[0xFFFD])); break;
                    case 3: Event(a, -1, e => e.mov(cx, __word_ptr.es[0xFFFF])); break;
                    case 4: Event(a, -1, e => e.mov(dx, __word_ptr.ss[0xFFFF])); break;
                    default: Event(a, -1, e => e.mov(al, __byte_ptr[0xFFFF])); break;
                }
                break;
            case 7:
                // POP at SP = 0xFFFF: #SS (emulate.c em_pop → __linearize), the frame below it. Not PUSH at SP = 1 (conformance
                // real_mode_faults_go_through_the_ivt): its frame wraps to SS:0xFFFF, and the stub's IRET then pops FLAGS
                // across the limit — #SS again, forever, on both kernels.
                a.mov(__word_ptr[SpSave], sp);
                a.mov(sp, unchecked((short)0xFFFF));
                Event(a, -1, e => e.pop(ax));
                a.mov(sp, __word_ptr[SpSave]);
                break;
            case 8:
                // LLDT and SLDT are #UD in real mode (SDM Vol. 2A).
                if (x.Next(2) == 0) Event(a, -1, e => e.lldt(ax)); else Event(a, -1, e => e.sldt(cx));
                break;
            case 9:
            {
                // The guest points an IVT entry at another vector's stub, then raises it: the IVT is read at delivery.
                byte v = (byte)x.Next(0x80);
                a.mov(__word_ptr[v * 4], (short)(x.Next(256) * 8));
                Event(a, 0, e => e.@int(v));
                break;
            }
            case 10 when x.Next(2) == 0:
            {
                // IRET (or IRETD) of a frame the program builds, to the next instruction: FLAGS from a random image, TF
                // clear (SDM Vol. 2A IRET REAL-ADDRESS-MODE; emulate.c emulate_iret_real). CALL pushes the IP of the
                // JMP after it, so the IRET at its target returns there.
                // (Found here: the emulator kept FLAGS bits 3, 5 and 15 and failed IRETD; conformance RealModeIretFlags.)
                bool wide = x.Next(2) == 0;
                var iret = a.CreateLabel();
                var after = a.CreateLabel();
                if (wide)
                {
                    // EFLAGS, CS and EIP as dwords: PUSHD imm32, PUSHD CS, and a CALL with a 32-bit operand size.
                    a.AddInstruction(Instruction.Create(Code.Pushd_imm32, (int)((uint)x.Next() & ~0x100u | 2)));
                    a.AddInstruction(Instruction.Create(Code.Pushd_CS, Register.CS));
                    a.AddInstruction(Instruction.CreateBranch(Code.Call_rel32_32, iret.Id));
                }
                else
                {
                    a.push((short)(x.Next(0x10000) & ~0x100 | 2));
                    a.push(cs);
                    a.call(iret);
                }
                a.jmp(after);
                a.Label(ref iret);
                if (wide) a.iretd(); else a.iret();
                a.Label(ref after);
                a.nop();
                break;
            }
            default:
                // HLT: the run injects an interrupt; the stub returns after it.
                Event(a, 0, e => e.hlt());
                break;
        }
    }

    /// <summary>Writes the skip slot (-1: the instruction's length) and emits the instruction.</summary>
    private static void Event(Assembler a, int skip, Action<Assembler> instruction)
    {
        if (skip < 0)
        {
            var alone = new Assembler(16);
            instruction(alone);
            skip = Encode(alone, 0).Length;
        }
        a.mov(__byte_ptr[SkipSlot], (byte)skip);
        instruction(a);
    }
}
