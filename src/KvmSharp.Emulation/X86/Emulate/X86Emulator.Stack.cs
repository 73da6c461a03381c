// SPDX-License-Identifier: MIT
// The stack: stack pointer at the stack address size, PUSH and POP, the frame pointer of LEAVE.
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

internal sealed partial class X86Emulator
{
    /// <summary>The stack address size: 64-bit mode uses RSP, else SS.B selects ESP or SP.</summary>
    private int StackAddressSize => _cpu.Bitness == 64 ? 8 : _cpu.Sregs.ss.db != 0 ? 4 : 2;

    private ulong ReadStackPointer() => _cpu.Gpr[X86Cpu.RSP] & Alu.Mask(StackAddressSize);

    private void WriteStackPointer(ulong value)
    {
        int size = StackAddressSize;
        ulong mask = Alu.Mask(size);
        _cpu.Gpr[X86Cpu.RSP] = size == 8 ? value : (_cpu.Gpr[X86Cpu.RSP] & ~mask) | (value & mask);
    }

    private void Push(ulong value, int size)
    {
        ulong sp = (ReadStackPointer() - (ulong)size) & Alu.Mask(StackAddressSize);
        WriteMemory(Register.SS, sp, size, value);
        WriteStackPointer(sp);
    }

    private ulong Pop(int size)
    {
        ulong sp = ReadStackPointer();
        ulong v = ReadMemory(Register.SS, sp, size);
        WriteStackPointer(sp + (ulong)size);
        return v;
    }

    private static Register FramePointer(int size) => size switch { 2 => Register.BP, 4 => Register.EBP, _ => Register.RBP };
}
