// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Fuzzing;

/// <summary>
/// 64-bit programs that use the LDT (arch/x86/kvm/emulate.c em_lldt / em_sldt / __load_segment_descriptor /
/// get_descriptor_table_ptr; Intel SDM Vol. 2A LLDT, SLDT, MOV Sreg; Vol. 3A 3.5.1; the emulator's X86Emulator.Ldt.cs;
/// conformance LdtTests). The GDT gets a 16-byte LDT descriptor at <see cref="LdtSelector"/> and an absent one at
/// <see cref="AbsentLdtSelector"/> (<see cref="TinyGuestRun.RunLdt"/> writes them and the LDT). Drawn: LLDT from a
/// register or memory of the LDT, a null selector, a data or code segment, a selector beyond the GDT limit (#GP) and
/// the absent LDT (#NP); SLDT to registers of every size and to memory; MOV and POP of ES/DS/FS/GS with TI=1 selectors
/// of a data segment (not yet accessed), a readable code segment, a DPL-3 data segment, an execute-only code segment
/// and an all-zero descriptor (#GP), an RPL above the DPL (#GP), an absent segment (#NP), a selector beyond the LDT
/// limit (#GP), and MOV from the segment registers; far JMPs to TI=1 code selectors and far RETs back to the GDT's.
/// A fault ends the run in the IDT's halting handler.
/// Never drawn without reported divergences: LLDT or LTR of a TI=1 selector (HostDeviations.KvmPvmLdtSelectorInLtrOrLldt).
/// </summary>
internal static partial class TinyGuestProgram
{
    /// <summary>The GDT's LDT descriptors: present, and absent.</summary>
    public const ushort LdtSelector = 0x18, AbsentLdtSelector = 0x28;

    /// <summary>The GDT's limit in the LDT runs: 0x38 is beyond it.</summary>
    public const ushort LdtGdtLimit = 0x37;

    /// <summary>TI=1 selectors of the LDT (<see cref="TinyGuestRun.RunLdt"/>): index 0 all zero, 1 data, 2 readable code, 3 absent data, 4 execute-only code, 5 data DPL 3.</summary>
    private static readonly ushort[] s_ldtSelectors = [0x04, 0x0C, 0x0C, 0x14, 0x1C, 0x24, 0x2C, 0x0F, 0x34, 0x0C, 0x2F];

    /// <summary>Far JMP targets: the LDT's code (readable, execute-only), its data (#GP), an RPL above CPL (#GP), beyond its limit (#GP).</summary>
    private static readonly ushort[] s_farSelectors = [0x14, 0x14, 0x14, 0x24, 0x0C, 0x17, 0x34];

    private static readonly ushort[] s_lldtSelectors = [LdtSelector, LdtSelector, LdtSelector, 0, 0x10, 0x08, 0x38, AbsentLdtSelector, LdtSelector | 3];

    /// <summary>The LDT program of <paramref name="seed"/>; r15 holds the data page's GPA.</summary>
    /// <param name="seed">The program's seed.</param>
    /// <param name="codeGpa">Where the code runs.</param>
    /// <param name="withReported">Also LLDT and LTR of a TI=1 selector.</param>
    public static byte[] Ldt(ulong seed, ulong codeGpa, bool withReported)
    {
        var x = new Random(unchecked((int)seed * 101 + 0x1D7));
        var a = new Assembler(64);
        // Most programs load the LDT first: the TI=1 loads then read it.
        if (x.Next(4) != 0)
        {
            a.mov(ax, LdtSelector);
            a.lldt(ax);
        }
        int count = x.Next(1, 12);
        for (int i = 0; i < count; i++)
        {
            int off = x.Next(0, 0x1000 / 8) * 8;
            switch (x.Next(10))
            {
                case 0:
                {
                    ushort sel = withReported && x.Next(6) == 0 ? (ushort)(LdtSelector | 4) : s_lldtSelectors[x.Next(s_lldtSelectors.Length)];
                    if (x.Next(3) == 0)
                    {
                        a.mov(__word_ptr[r15 + off], sel);
                        a.lldt(__word_ptr[r15 + off]);
                    }
                    else
                    {
                        a.mov(ax, sel);
                        a.lldt(ax);
                    }
                    break;
                }
                case 1:
                    switch (x.Next(4))
                    {
                        case 0: a.sldt(bx); break;
                        case 1: a.sldt(ecx); break;
                        case 2: a.sldt(rsi); break;
                        default: a.sldt(__word_ptr[r15 + off]); break;
                    }
                    break;
                case 2:
                    if (withReported && x.Next(3) == 0)
                    {
                        a.mov(ax, s_ldtSelectors[x.Next(s_ldtSelectors.Length)]);
                        a.ltr(ax);
                    }
                    else
                    {
                        switch (x.Next(3))
                        {
                            case 0: a.mov(ecx, es); break;
                            case 1: a.mov(edx, fs); break;
                            default: a.mov(__word_ptr[r15 + off], gs); break;
                        }
                    }
                    break;
                case 3 when x.Next(2) == 0:
                {
                    // A far JMP through an m16:32 pointer to the next instruction with a TI=1 selector (conformance
                    // lldt_loads_the_ldt_and_ti_selectors_read_it), sometimes back to the GDT's code with a far RET.
                    var next = a.CreateLabel();
                    a.lea(rbx, __[next]);
                    a.mov(__dword_ptr[r15 + off], ebx);
                    a.mov(__word_ptr[r15 + off + 4], s_farSelectors[x.Next(s_farSelectors.Length)]);
                    a.AddInstruction(Instruction.Create(Code.Jmp_m1632, new MemoryOperand(Register.R15, off)));
                    a.Label(ref next);
                    a.mov(ecx, cs);
                    if (x.Next(2) == 0)
                    {
                        var back = a.CreateLabel();
                        a.lea(rbx, __[back]);
                        a.push(CodeSelector);
                        a.push(rbx);
                        a.AddInstruction(Instruction.Create(Code.Retfq));
                        a.Label(ref back);
                        a.mov(edx, cs);
                    }
                    break;
                }
                case 3:
                    a.mov(eax, s_ldtSelectors[x.Next(s_ldtSelectors.Length)]);
                    a.push(rax);
                    if (x.Next(2) == 0) a.pop(fs); else a.pop(gs);
                    break;
                default:
                {
                    ushort sel = s_ldtSelectors[x.Next(s_ldtSelectors.Length)];
                    if (x.Next(3) == 0)
                    {
                        a.mov(__word_ptr[r15 + off], sel);
                        switch (x.Next(2))
                        {
                            case 0: a.mov(es, __word_ptr[r15 + off]); break;
                            default: a.mov(ds, __word_ptr[r15 + off]); break;
                        }
                    }
                    else
                    {
                        a.mov(ax, sel);
                        switch (x.Next(4))
                        {
                            case 0: a.mov(es, ax); break;
                            case 1: a.mov(ds, ax); break;
                            case 2: a.mov(fs, ax); break;
                            default: a.mov(gs, ax); break;
                        }
                    }
                    break;
                }
            }
        }
        a.hlt();
        return Encode(a, codeGpa);
    }
}
