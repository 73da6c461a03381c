// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>Asynchronous exceptions: an IRQ the vGIC signals (Vgic/VgicDelivery.cs).</summary>
internal sealed partial class A64Interpreter
{
    /// <summary>PSTATE.I: IRQs masked.</summary>
    public bool IrqMasked => (cpu.Pstate & (1UL << 7)) != 0;

    /// <summary>
    /// AArch64.TakeException to EL1 for an IRQ: SPSR_EL1 = PSTATE, ELR_EL1 = the next instruction (PC, not executed),
    /// ESR_EL1 and FAR_EL1 untouched, PSTATE = EL1h with D, A, I, F masked, PC = VBAR_EL1 + 0x080 (from EL1t), 0x280
    /// (from EL1h) or 0x480 (from EL0, AArch64).
    /// </summary>
    public void TakeIrq()
    {
        ulong offset = cpu.AtEl0 ? 0x480UL : (cpu.Mode & 1) != 0 ? 0x280UL : 0x080UL;
        cpu.Spsr[0] = cpu.Pstate;
        cpu.ElrEl1 = cpu.Pc;
        cpu.Pstate = (cpu.Pstate & 0xf000_0000UL) | Arm64Cpu.ResetPstateEl1;
        cpu.Pc = cpu.VbarEl1 + offset;
    }
}
