// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// Guest-code pieces that the SNP #VC handler (<see cref="SnpRuntime"/>) and the TD #VE handler (<see cref="TdRuntime"/>)
/// both emit when they serve INS/OUTS for the interrupted code: the two handlers save the same registers in the same
/// frame layout, so a step that only touches that frame is written once here.
/// </summary>
internal static class StringIoEmit
{
    /// <summary>
    /// Adds <paramref name="delta"/> to the saved RDI when <paramref name="direction"/> has <paramref name="inBit"/> set
    /// (INS writes at ES:RDI), else to the saved RSI (OUTS reads at DS:RSI); <paramref name="saved"/> maps a register to
    /// its slot above RSP.
    /// </summary>
    internal static void AdvanceIndexRegister(Assembler a, AssemblerRegister32 direction, int inBit, AssemblerRegister64 delta,
        Func<AssemblerRegister64, int> saved)
    {
        Label outs = a.CreateLabel(), done = a.CreateLabel();
        a.test(direction, inBit);
        a.jz(outs);
        a.add(__qword_ptr[rsp + saved(rdi)], delta);
        a.jmp(done);
        a.Label(ref outs);
        a.add(__qword_ptr[rsp + saved(rsi)], delta);
        a.Label(ref done);
    }
}
