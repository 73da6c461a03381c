// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Fuzzing;

/// <summary>
/// A short straight-line guest program drawn from a seed: loads and stores to gmem-backed memory and to unbacked GPAs
/// (MMIO), read-modify-write on MMIO, port I/O, arithmetic, push/pop, HLT. Assembled with Iced, never hand-typed.
/// What it never contains, and why (src/KvmSharp.Conformance/HostDeviations.cs, docs/STATUS.md):
/// <list type="bullet">
/// <item>VMCALL/VMMCALL: HostDeviations.KvmPvmHypercallLoops — kvm_pvm restarts it forever (64-bit: KVM_RUN never
/// returns).</item>
/// <item>String instructions from or to MMIO (rep movs): docs/STATUS.md "rep movsb from MMIO ends in SHUTDOWN after
/// the second element" on kvm_pvm. OUTS from the data page and INS into it are drawn (64-bit, <see cref="StringOut"/>,
/// <see cref="StringIn"/>; the run loop fills each IN exit's io.count elements).</item>
/// <item>UD2 or any invalid opcode: docs/STATUS.md "UD2 in real mode ends in KVM_EXIT_INTERNAL_ERROR" on kvm_pvm, and
/// there is no IDT to deliver a fault in 64-bit mode either.</item>
/// <item>Branches: the program is straight-line, so it ends in at most one exit per instruction. The far transfers
/// (64-bit, <c>farTransfers</c>) go to the next instruction or to a subroutine that returns right after the call.</item>
/// <item>Ring changes only in runs that set up the user segments, TSS and IDT (64-bit, <c>rings</c>,
/// <see cref="RingChange"/>): IRETQ or SYSRETQ to ring 3 and back through #GP (HLT) or #PF (a supervisor page), no
/// port I/O at CPL 3. INT n / INT3 / SYSCALL back and an IOPL-3 image only with reported divergences drawn: kvm_pvm
/// does not run them as upstream (HostDeviations.KvmPvmSyscallKeepsUserMode; INT through a DPL-3 gate at CPL 3 ends
/// in KVM_EXIT_SHUTDOWN there).</item>
/// </list>
/// Instructions that leave arithmetic flags undefined (imul, shifts, logic ops' AF) are followed by an <c>add</c> of two
/// registers the program never writes otherwise, so the final RFLAGS is defined on any CPU and in the emulator.
/// The integer extras (<see cref="IntegerExtra"/>, a stream of their own) first copy their defined flags into a register
/// (pushfq; pop; and mask), then make RFLAGS defined the same way.
/// </summary>
internal static partial class TinyGuestProgram
{
    /// <summary>Longest program, in generated instructions (each makes at most one exit).</summary>
    public const int MaxInstructions = 24;

    /// <summary>First I/O port the programs use: nothing in KVM claims 0x510-0x51f without an in-kernel irqchip.</summary>
    public const int PortBase = 0x510;

    private static readonly AssemblerRegister64[] s_r64 = [rax, rcx, rdx, rbx, rsi, rdi, r8, r9, r10, r11];
    private static readonly AssemblerRegister32[] s_r32 = [eax, ecx, edx, ebx, esi, edi, r8d, r9d, r10d, r11d];
    private static readonly AssemblerRegister16[] s_r16 = [ax, cx, dx, bx, si, di, r8w, r9w, r10w, r11w];
    private static readonly AssemblerRegister8[] s_r8 = [al, cl, dl, bl, sil, dil, r8b, r9b, r10b, r11b];

    // Real mode: bp and di are the flag fixup pair; sp is the stack.
    private static readonly AssemblerRegister32[] s_rm32 = [eax, ecx, edx, ebx, esi];
    private static readonly AssemblerRegister16[] s_rm16 = [ax, cx, dx, bx, si];
    private static readonly AssemblerRegister8[] s_rm8 = [al, cl, dl, bl, ah, ch, dh, bh];

    /// <summary>64-bit: r15 holds the data page's GPA and r14 the MMIO page's; the program never writes either.</summary>
    /// <param name="seed">The program's seed.</param>
    /// <param name="codeGpa">Where the code runs (RIP-relative addresses are resolved for it).</param>
    /// <param name="farTransfers">
    /// Also far JMP/CALL/RET through the GDT's 64-bit code selector (<see cref="FarTransfer"/>), drawn from a stream of
    /// their own: the other instructions are the seed's, with or without them.
    /// </param>
    public static byte[] LongMode(ulong seed, ulong codeGpa, bool farTransfers = false) =>
        LongMode(seed, codeGpa, farTransfers, stringIn: false, rings: false, withReported: false, out _);

    /// <summary>
    /// As <see cref="LongMode(ulong, ulong, bool)"/>, with INS (<paramref name="stringIn"/>) and, for a third of the
    /// seeds, ring changes (<paramref name="rings"/>, <see cref="RingStream"/>); <paramref name="entries"/> says where
    /// the ring-0 entry stubs are (null when the seed draws none). Each from a stream of its own: the other
    /// instructions are the seed's, with or without them.
    /// </summary>
    /// <param name="seed">The program's seed.</param>
    /// <param name="codeGpa">Where the code runs.</param>
    /// <param name="farTransfers">Also far JMP/CALL/RET.</param>
    /// <param name="stringIn">Also INSB/INSW/INSD into the data page (<see cref="StringIn"/>).</param>
    /// <param name="rings">Ring changes may be drawn (the run sets up <see cref="RingEntries"/>).</param>
    /// <param name="withReported">Also INT n, INT3, SYSCALL and IOPL 3 at CPL 3 (<see cref="RingChange"/>).</param>
    /// <param name="entries">The stubs' addresses for the IDT and LSTAR, or null.</param>
    public static byte[] LongMode(ulong seed, ulong codeGpa, bool farTransfers, bool stringIn, bool rings, bool withReported, out RingEntries? entries)
    {
        var rng = new Random((int)seed ^ (int)(seed >> 32));
        var far = farTransfers ? new Random(unchecked((int)seed * 7 + 0xFA5)) : null;
        var extra = new Random(unchecked((int)seed * 13 + 0x1E7));
        var stringIo = new Random(unchecked((int)seed * 17 + 0x5710));
        var ins = stringIn ? new Random(unchecked((int)seed * 19 + 0x1A5E)) : null;
        var ring = rings ? RingStream(seed) : null;
        var subroutines = new List<(Label Entry, Action Body)>();
        var a = new Assembler(64);
        int count = rng.Next(1, MaxInstructions + 1);
        for (int i = 0; i < count; i++)
        {
            if (far is not null && far.Next(3) == 0) FarTransfer(a, far, subroutines);
            if (extra.Next(4) == 0) IntegerExtra(a, extra);
            if (stringIo.Next(8) == 0) StringOut(a, stringIo);
            if (ins is not null && ins.Next(10) == 0) StringIn(a, ins);
            if (ring is not null && ring.Next(4) == 0) RingChange(a, ring, withReported);
            int r = rng.Next(s_r64.Length);
            int s = rng.Next(s_r64.Length);
            int roll = rng.Next(100);
            int size = 1 << rng.Next(4);
            int off = rng.Next(0, 0x1000 - size + 1);
            switch (roll)
            {
                case < 10:
                    if (rng.Next(2) == 0) a.mov(s_r64[r], (ulong)rng.NextInt64());
                    else a.mov(s_r32[r], rng.Next());
                    break;
                case < 22:
                    switch (rng.Next(6))
                    {
                        case 0: a.add(s_r64[r], s_r64[s]); break;
                        case 1: a.sub(s_r64[r], rng.Next(int.MinValue, int.MaxValue)); break;
                        case 2: a.adc(s_r32[r], s_r32[s]); break;
                        case 3: a.cmp(s_r64[r], s_r64[s]); break;
                        case 4: a.xor(s_r64[r], s_r64[s]); FixFlags64(a); break;
                        default: a.and(s_r32[r], rng.Next()); FixFlags64(a); break;
                    }
                    break;
                case < 27:
                    a.imul(s_r64[r], s_r64[s]);
                    FixFlags64(a);
                    break;
                case < 32:
                    switch (rng.Next(3))
                    {
                        case 0: a.shl(s_r64[r], (byte)rng.Next(1, 64)); break;
                        case 1: a.shr(s_r32[r], (byte)rng.Next(1, 32)); break;
                        default: a.sar(s_r64[r], (byte)rng.Next(1, 64)); break;
                    }
                    FixFlags64(a);
                    break;
                case < 36:
                    switch (rng.Next(4))
                    {
                        case 0: a.inc(s_r64[r]); break;
                        case 1: a.dec(s_r32[r]); break;
                        case 2: a.neg(s_r64[r]); break;
                        default: a.not(s_r64[r]); break;
                    }
                    break;
                case < 48:
                    Load64(a, rng, r, size, r15 + off);
                    break;
                case < 58:
                    Store64(a, rng, r, size, r15 + off);
                    break;
                case < 68:
                    Load64(a, rng, r, size, r14 + off);
                    break;
                case < 78:
                    Store64(a, rng, r, size, r14 + off);
                    break;
                case < 81:
                    // Read-modify-write on MMIO: a read exit, then a write exit of the sum.
                    a.add(__dword_ptr[r14 + (off & ~3)], s_r32[r]);
                    break;
                case < 91:
                    a.mov(edx, PortBase + rng.Next(16));
                    RandomPortIo(a, rng);
                    break;
                case < 97:
                    if (rng.Next(2) == 0) a.push(s_r64[r]);
                    else a.pop(s_r64[r]);
                    break;
                default:
                    a.hlt();
                    break;
            }
        }
        a.hlt();
        // The far calls' targets, after the program's last HLT.
        foreach (var (entry, body) in subroutines)
        {
            var label = entry;
            a.Label(ref label);
            body();
        }
        if (ring is null)
        {
            entries = null;
            return Encode(a, codeGpa);
        }
        return EncodeWithRingEntries(a, codeGpa, ring, out entries);
    }

    /// <summary>
    /// OUTSB/OUTSW/OUTSD of one to four elements from the data page (r15), with or without REP, to one of the program's
    /// ports: with REP one KVM_EXIT_IO per element, RCX and RSI counted down and up, RIP on the instruction until the
    /// last one (x86.c emulator_pio_out; Conformance/Cases/StringPortIo.cs). Drawn from a stream of their own, so the
    /// other instructions are the seed's. Not DF = 1 (INS draws it: <see cref="StringIn"/>).
    /// </summary>
    private static void StringOut(Assembler a, Random x)
    {
        a.mov(edx, PortBase + x.Next(16));
        a.lea(rsi, __[r15 + x.Next(0, 0x1000 - 16)]);
        a.mov(ecx, x.Next(1, 5));
        bool rep = x.Next(3) != 0;
        switch (x.Next(3))
        {
            case 0: if (rep) a.rep.outsb(); else a.outsb(); break;
            case 1: if (rep) a.rep.outsw(); else a.outsw(); break;
            default: if (rep) a.rep.outsd(); else a.outsd(); break;
        }
    }

    /// <summary>
    /// One of the integer instructions compiled C uses beyond the base set (Intel SDM Vol. 2: XADD, CMPXCHG,
    /// CMPXCHG8B, BSF/BSR, BSWAP, SHLD/SHRD, RCL/RCR, LAHF/SAHF, XLAT) on the program's registers and its data page
    /// (r15; never MMIO). Not POPCNT or CMPXCHG16B (HostDeviations.KvmPvmPopcntAndCmpxchg16bFail), MOVBE
    /// (KvmPvmMovbeIsUndefined) or TZCNT/LZCNT (KvmPvmTzcntLzcntRunAsBsfBsr): kvm_pvm does not run them as upstream.
    /// Where the manuals leave some flags undefined, the defined ones are copied into a program register and RFLAGS
    /// is made defined again; results the SDM leaves undefined (a 16-bit double shift by more than 16) are never asked
    /// for. BSF/BSR of a zero source keep the destination, as AMD documents and the emulator models; only their 16-
    /// and 64-bit forms are drawn: kvm_pvm zero-extended a 32-bit destination after <c>bsr r32, [mem]</c> of zero in
    /// these programs (not reproduced in the IntegerInstructions cases, where it keeps the register, as EPYC does).
    /// </summary>
    private static void IntegerExtra(Assembler a, Random x)
    {
        int r = x.Next(s_r64.Length);
        int s = x.Next(s_r64.Length);
        int off = x.Next(0, 0x1000 / 16) * 16;
        int size = 1 << x.Next(1, 4); // 2, 4 or 8
        var mem = r15 + off;
        switch (x.Next(12))
        {
            case 0:
                switch (x.Next(4))
                {
                    case 0: a.xadd(s_r64[r], s_r64[s]); break;
                    case 1: a.xadd(s_r16[r], s_r16[s]); break;
                    case 2: a.@lock.xadd(__dword_ptr[mem], s_r32[s]); break;
                    default: a.xadd(__qword_ptr[mem], s_r64[s]); break;
                }
                break;
            case 1:
                if (x.Next(2) == 0) a.mov(rax, __qword_ptr[mem]); // often equal: the success path
                switch (x.Next(4))
                {
                    case 0: a.cmpxchg(s_r32[r], s_r32[s]); break;
                    case 1: a.cmpxchg(s_r64[r], s_r64[s]); break;
                    case 2: a.@lock.cmpxchg(__qword_ptr[mem], s_r64[s]); break;
                    default: a.cmpxchg(__byte_ptr[mem], s_r8[s]); break;
                }
                break;
            case 2:
                if (x.Next(2) == 0)
                {
                    a.mov(rax, __qword_ptr[mem]);
                    a.mov(rdx, __qword_ptr[mem + 8]);
                }
                if (x.Next(2) == 0) a.mov(edx, __dword_ptr[mem + 4]);
                if (x.Next(2) == 0) a.@lock.cmpxchg8b(__qword_ptr[mem + 8]); else a.cmpxchg8b(__qword_ptr[mem]);
                break;
            case 3:
            {
                bool forward = x.Next(2) == 0;
                switch (size)
                {
                    case 2: if (forward) a.bsf(s_r16[r], s_r16[s]); else a.bsr(s_r16[r], s_r16[s]); break;
                    case 4: if (forward) a.bsf(s_r64[r], s_r64[s]); else a.bsr(s_r64[r], __qword_ptr[mem]); break;
                    default: if (forward) a.bsf(s_r64[r], __qword_ptr[mem]); else a.bsr(s_r64[r], s_r64[s]); break;
                }
                DefinedFlags(a, x, 0x40); // ZF
                break;
            }
            case 4:
                // Bit scans of memory (often zero: the flags-only path).
                if (x.Next(2) == 0) a.bsr(s_r64[r], __qword_ptr[mem]); else a.bsf(s_r16[r], __word_ptr[mem]);
                DefinedFlags(a, x, 0x40); // ZF
                break;
            case 5:
                // XADD and CMPXCHG of a register with itself, and XADD of a byte.
                switch (x.Next(3))
                {
                    case 0: a.xadd(s_r32[r], s_r32[r]); break;
                    case 1: a.cmpxchg(s_r64[r], s_r64[r]); break;
                    default: a.xadd(__byte_ptr[mem + x.Next(16)], s_r8[s]); break;
                }
                break;
            case 6:
                if (x.Next(2) == 0) a.bswap(s_r64[r]); else a.bswap(s_r32[r]);
                break;
            case 7:
            {
                bool left = x.Next(2) == 0;
                int count;
                switch (size)
                {
                    case 2:
                        count = x.Next(16);
                        if (left) a.shld(s_r16[r], s_r16[s], (byte)count); else a.shrd(s_r16[r], s_r16[s], (byte)count);
                        break;
                    case 4:
                        count = x.Next(40);
                        if (left) a.shld(s_r32[r], s_r32[s], (byte)count); else a.shrd(__dword_ptr[mem], s_r32[s], (byte)count);
                        break;
                    default:
                        // A count in CL: any value, masked to 6 bits.
                        count = x.Next(256);
                        a.mov(ecx, count);
                        if (s == 1) s = 0;
                        if (r == 1) r = 2;
                        if (left) a.shld(s_r64[r], s_r64[s], cl); else a.shrd(s_r64[r], s_r64[s], cl);
                        count &= 63;
                        break;
                }
                DefinedFlags(a, x, (count & (size == 8 ? 63 : 31)) == 1 ? 0x8C5 : 0xC5); // OF only for a count of 1
                break;
            }
            case 8:
            {
                bool left = x.Next(2) == 0;
                int count = x.Next(3) switch { 0 => 1, 1 => 0, _ => x.Next(70) };
                switch (x.Next(4))
                {
                    case 0: if (left) a.rcl(s_r8[r], (byte)count); else a.rcr(s_r8[r], (byte)count); break;
                    case 1: if (left) a.rcl(s_r16[r], (byte)count); else a.rcr(s_r16[r], (byte)count); break;
                    case 2: if (left) a.rcl(s_r32[r], (byte)count); else a.rcr(__dword_ptr[mem], (byte)count); break;
                    default: if (left) a.rcl(s_r64[r], (byte)count); else a.rcr(s_r64[r], (byte)count); break;
                }
                DefinedFlags(a, x, count == 1 ? 0x8D5 : 0xD5); // OF only for a count of 1
                break;
            }
            case 9:
                if (x.Next(2) == 0) a.lahf(); else a.sahf();
                break;
            case 10:
                // Through-carry rotates by CL (any value: masked, then modulo 9 or 17 for the narrow operands).
                a.mov(ecx, x.Next(256));
                if (r == 1) r = 2;
                switch (x.Next(3))
                {
                    case 0: if (x.Next(2) == 0) a.rcl(s_r8[r], cl); else a.rcr(s_r8[r], cl); break;
                    case 1: if (x.Next(2) == 0) a.rcl(s_r16[r], cl); else a.rcr(s_r16[r], cl); break;
                    default: if (x.Next(2) == 0) a.rcl(s_r64[r], cl); else a.rcr(s_r64[r], cl); break;
                }
                DefinedFlags(a, x, 0xD5);
                break;
            default:
                a.lea(rbx, __[r15 + (off & 0xf00)]);
                a.xlatb();
                break;
        }
    }

    /// <summary>Copies RFLAGS masked to <paramref name="mask"/> into a program register, then makes RFLAGS defined.</summary>
    private static void DefinedFlags(Assembler a, Random x, int mask)
    {
        var reg = s_r64[x.Next(s_r64.Length)];
        a.pushfq();
        a.pop(reg);
        a.and(reg, mask);
        FixFlags64(a);
    }

    /// <summary>The 64-bit code selector of the tiny guest's GDT (TinyGuestRun: entry 1, L = 1, DPL 0, accessed).</summary>
    public const ushort CodeSelector = 8;

    /// <summary>
    /// One far transfer to the same 64-bit code segment (Intel SDM Vol. 2A JMP/CALL/RET far; emulate.c em_jmp_far,
    /// em_call_far, em_ret_far): a far JMP through an m16:64 or m16:32 pointer the program stores in its data page, a
    /// far CALL through one to a subroutine after the program's end that returns with a far RET of the same operand
    /// size, or a far RET used as a jump (selector and offset pushed). A register of the program holds the target
    /// (LEA, RIP-relative), so the register, the pointer and the stack slots the transfer writes are all compared.
    /// </summary>
    private static void FarTransfer(Assembler a, Random far, List<(Label Entry, Action Body)> subroutines)
    {
        int r = far.Next(s_r64.Length);
        int off = far.Next(0, 0x1000 / 16) * 16;
        bool wide = far.Next(2) == 0;
        switch (far.Next(3))
        {
            case 0:
            {
                var next = a.CreateLabel();
                StorePointer(a, r, off, wide, next);
                a.AddInstruction(Instruction.Create(wide ? Code.Jmp_m1664 : Code.Jmp_m1632, new MemoryOperand(Register.R15, off)));
                a.Label(ref next);
                a.nop();
                break;
            }
            case 1:
            {
                var entry = a.CreateLabel();
                StorePointer(a, r, off, wide, entry);
                a.AddInstruction(Instruction.Create(wide ? Code.Call_m1664 : Code.Call_m1632, new MemoryOperand(Register.R15, off)));
                int s = far.Next(s_r64.Length);
                ulong value = (ulong)far.NextInt64();
                subroutines.Add((entry, () =>
                {
                    a.mov(s_r64[s], value);
                    a.AddInstruction(Instruction.Create(wide ? Code.Retfq : Code.Retfd));
                }));
                break;
            }
            default:
            {
                // RETFQ as a jump: push the selector, then the offset.
                var next = a.CreateLabel();
                a.lea(s_r64[r], __[next]);
                a.push(CodeSelector);
                a.push(s_r64[r]);
                a.AddInstruction(Instruction.Create(Code.Retfq));
                a.Label(ref next);
                a.nop();
                break;
            }
        }
    }

    /// <summary>The far pointer to <paramref name="target"/> at [r15 + off]: m16:64 (offset, then selector) or m16:32.</summary>
    private static void StorePointer(Assembler a, int r, int off, bool wide, Label target)
    {
        a.lea(s_r64[r], __[target]);
        if (wide)
        {
            a.mov(__qword_ptr[r15 + off], s_r64[r]);
            a.mov(__word_ptr[r15 + off + 8], CodeSelector);
        }
        else
        {
            a.mov(__dword_ptr[r15 + off], s_r32[r]);
            a.mov(__word_ptr[r15 + off + 4], CodeSelector);
        }
    }


    /// <summary>Real mode: addresses are DS offsets; [0x4000, 0x5000) is backed, [0x8000, 0x9000) is past the slot.</summary>
    public static byte[] RealMode(ulong seed, int dataOffset, int mmioOffset)
    {
        var rng = new Random((int)seed ^ (int)(seed >> 32));
        var a = new Assembler(16);
        int count = rng.Next(1, MaxInstructions + 1);
        for (int i = 0; i < count; i++)
        {
            int r = rng.Next(s_rm16.Length);
            int s = rng.Next(s_rm16.Length);
            int size = 1 << rng.Next(3);
            int off = rng.Next(0, 0x1000 - size + 1);
            switch (rng.Next(100))
            {
                case < 10:
                    if (rng.Next(2) == 0) a.mov(s_rm16[r], (short)rng.Next(0x10000));
                    else a.mov(s_rm32[r], rng.Next());
                    break;
                case < 24:
                    switch (rng.Next(5))
                    {
                        case 0: a.add(s_rm16[r], s_rm16[s]); break;
                        case 1: a.sub(s_rm32[r], s_rm32[s]); break;
                        case 2: a.cmp(s_rm8[rng.Next(s_rm8.Length)], s_rm8[rng.Next(s_rm8.Length)]); break;
                        case 3: a.xor(s_rm16[r], s_rm16[s]); FixFlags16(a); break;
                        default: a.imul(s_rm32[r], s_rm32[s]); FixFlags16(a); break;
                    }
                    break;
                case < 30:
                    switch (rng.Next(3))
                    {
                        case 0: a.inc(s_rm16[r]); break;
                        case 1: a.neg(s_rm32[r]); break;
                        default: a.shl(s_rm16[r], (byte)rng.Next(1, 16)); FixFlags16(a); break;
                    }
                    break;
                case < 44:
                    Load16(a, rng, r, size, dataOffset + off);
                    break;
                case < 56:
                    Store16(a, rng, r, size, dataOffset + off);
                    break;
                case < 68:
                    Load16(a, rng, r, size, mmioOffset + off);
                    break;
                case < 80:
                    Store16(a, rng, r, size, mmioOffset + off);
                    break;
                case < 83:
                    a.add(__word_ptr[mmioOffset + (off & ~1)], s_rm16[r]);
                    break;
                case < 93:
                    a.mov(dx, (short)(PortBase + rng.Next(16)));
                    RandomPortIo(a, rng);
                    break;
                case < 97:
                    if (rng.Next(2) == 0) a.push(s_rm16[r]);
                    else a.pop(s_rm16[r]);
                    break;
                default:
                    a.hlt();
                    break;
            }
        }
        a.hlt();
        return Encode(a, 0);
    }

    /// <summary>IN or OUT of 1, 2 or 4 bytes on the port in DX (the same random draws in every mode).</summary>
    private static void RandomPortIo(Assembler a, Random rng)
    {
        bool @in = rng.Next(2) == 0;
        switch (rng.Next(3))
        {
            case 0: if (@in) a.@in(al, dx); else a.@out(dx, al); break;
            case 1: if (@in) a.@in(ax, dx); else a.@out(dx, ax); break;
            default: if (@in) a.@in(eax, dx); else a.@out(dx, eax); break;
        }
    }

    private static void Load64(Assembler a, Random rng, int r, int size, AssemblerMemoryOperand at)
    {
        switch (size)
        {
            case 1: if (rng.Next(2) == 0) a.mov(s_r8[r], __byte_ptr[at]); else a.movzx(s_r32[r], __byte_ptr[at]); break;
            case 2: if (rng.Next(2) == 0) a.mov(s_r16[r], __word_ptr[at]); else a.movsx(s_r64[r], __word_ptr[at]); break;
            case 4: a.mov(s_r32[r], __dword_ptr[at]); break;
            default: a.mov(s_r64[r], __qword_ptr[at]); break;
        }
    }

    private static void Store64(Assembler a, Random rng, int r, int size, AssemblerMemoryOperand at)
    {
        bool imm = rng.Next(4) == 0;
        switch (size)
        {
            case 1: if (imm) a.mov(__byte_ptr[at], (byte)rng.Next(256)); else a.mov(__byte_ptr[at], s_r8[r]); break;
            case 2: if (imm) a.mov(__word_ptr[at], (short)rng.Next(0x10000)); else a.mov(__word_ptr[at], s_r16[r]); break;
            case 4: if (imm) a.mov(__dword_ptr[at], rng.Next()); else a.mov(__dword_ptr[at], s_r32[r]); break;
            default: if (imm) a.mov(__qword_ptr[at], rng.Next(int.MinValue, int.MaxValue)); else a.mov(__qword_ptr[at], s_r64[r]); break;
        }
    }

    private static void Load16(Assembler a, Random rng, int r, int size, int at)
    {
        switch (size)
        {
            case 1: if (rng.Next(2) == 0) a.mov(s_rm8[rng.Next(s_rm8.Length)], __byte_ptr[at]); else a.movzx(s_rm16[r], __byte_ptr[at]); break;
            case 2: a.mov(s_rm16[r], __word_ptr[at]); break;
            default: a.mov(s_rm32[r], __dword_ptr[at]); break;
        }
    }

    private static void Store16(Assembler a, Random rng, int r, int size, int at)
    {
        bool imm = rng.Next(4) == 0;
        switch (size)
        {
            case 1: if (imm) a.mov(__byte_ptr[at], (byte)rng.Next(256)); else a.mov(__byte_ptr[at], s_rm8[rng.Next(s_rm8.Length)]); break;
            case 2: if (imm) a.mov(__word_ptr[at], (short)rng.Next(0x10000)); else a.mov(__word_ptr[at], s_rm16[r]); break;
            default: if (imm) a.mov(__dword_ptr[at], rng.Next()); else a.mov(__dword_ptr[at], s_rm32[r]); break;
        }
    }

    private static void FixFlags64(Assembler a) => a.add(r12, r13);

    private static void FixFlags16(Assembler a) => a.add(bp, di);

    internal static byte[] Encode(Assembler a, ulong ip)
    {
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), ip);
        return stream.ToArray();
    }
}
