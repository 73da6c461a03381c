// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>Asynchronous exceptions: an IRQ or FIQ the vGIC signals (Vgic/VgicDelivery.cs).</summary>
internal sealed partial class A64Interpreter
{
    /// <summary>PSTATE.I: IRQs masked.</summary>
    public bool IrqMasked => (cpu.Pstate & (1UL << 7)) != 0;

    /// <summary>PSTATE.F: FIQs masked.</summary>
    public bool FiqMasked => (cpu.Pstate & (1UL << 6)) != 0;

    /// <summary>
    /// AArch64.TakeException to EL1 for an IRQ: SPSR_EL1 = PSTATE, ELR_EL1 = the next instruction (PC, not executed),
    /// ESR_EL1 and FAR_EL1 untouched, PSTATE = EL1h with D, A, I, F masked, PC = VBAR_EL1 + 0x080 (from EL1t), 0x280
    /// (from EL1h) or 0x480 (from EL0, AArch64).
    /// </summary>
    public void TakeIrq() => TakeAsync(0x080);

    /// <summary>
    /// AArch64.TakeException to EL1 for an FIQ (a Group 0 virtual interrupt): as <see cref="TakeIrq"/>, at the FIQ
    /// vector, VBAR_EL1 + 0x100 (from EL1t), 0x300 (from EL1h) or 0x500 (from EL0, AArch64).
    /// </summary>
    public void TakeFiq() => TakeAsync(0x100);

    private void TakeAsync(ulong vector)
    {
        ulong offset = vector + (cpu.AtEl0 ? 0x400UL : (cpu.Mode & 1) != 0 ? 0x200UL : 0UL);
        cpu.Spsr[0] = cpu.Pstate;
        cpu.ElrEl1 = cpu.Pc;
        cpu.Pstate = (cpu.Pstate & 0xf000_0000UL) | Arm64Cpu.ResetPstateEl1 | PstateOnException();
        cpu.Pc = cpu.VbarEl1 + offset;
    }
}
