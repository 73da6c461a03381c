// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Emulation.Arch;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// TDCALL in a TD, as far as the TDX module's part of TDG.VP.VMCALL (leaf 0) goes: the module hands the registers the
/// guest exposed in RCX to KVM (<see cref="TdVmcall"/>, vmx/tdx.c) and, when KVM enters the TD again, loads KVM's
/// values into those registers, RAX = 0 (TDX_SUCCESS) and RIP past the TDCALL. Intel TDX Module ABI, TDG.VP.VMCALL:
/// RCX bits 0 (RAX), 1 (RCX), 4 (RSP) and 63:32 must be 0 (TDX_OPERAND_INVALID for operand RCX); RBP is never passed
/// (TD_PARAMS config NO_RBP_MOD, which KVM sets); the XMM bits (31:16) pass nothing here. TDCALL needs CPL 0 (#GP(0)).
/// Other TDCALL leaves are the module's alone: TDG.VP.INFO, TDG.VP.VEINFO.GET and TDG.MEM.PAGE.ACCEPT are modelled in
/// X86Emulator.TdxModule.cs, TDG.MR.RTMR.EXTEND and TDG.MR.REPORT in X86Emulator.TdxReport.cs, TDG.VM.RD/WR in
/// X86Emulator.TdxVmRdWr.cs, the rest (TDG.SYS.RD …) is an emulation failure. Outside a TD the instruction is left to the interpreter's default (an emulation
/// failure, which is what this kvm_pvm host answers; VMX hardware exits and KVM queues #UD, AMD hardware raises #UD).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>TDX_OPERAND_INVALID (0xC0000100_00000000) for operand 1, RCX.</summary>
    private const ulong TdxOperandInvalidRcx = 0xC000_0100_0000_0001;

    /// <summary>RCX bits a TDG.VP.VMCALL may not set: RAX, RCX, RSP, and 63:32.</summary>
    private const ulong VmcallReservedMask = 0xFFFF_FFFF_0000_0013;

    private TdVmcall? _tdVmcall;

    /// <summary>The RCX mask and the RIP after the TDCALL whose TDVMCALL waits for userspace.</summary>
    private ulong _tdcallMask, _tdcallNext;

    /// <summary>A TDG.VP.VMCALL exited to userspace: the next KVM_RUN first completes it.</summary>
    public bool HasPendingTdVmcall => _tdVmcall?.HasPendingCompletion ?? false;

    /// <summary>The last TDVMCALL was HLT with R12 set: tdx_interrupt_allowed says no.</summary>
    public bool TdHaltedWithInterruptsBlocked => _tdVmcall?.HaltedWithInterruptsBlocked ?? false;

    /// <summary>A TD's TDCALL; returns the RIP to continue at (the TDCALL itself while its TDVMCALL waits for userspace).</summary>
    private ulong Tdcall(in Instruction i)
    {
        RequireCpl0();
        ulong leaf = _cpu.Gpr[X86Cpu.RAX];
        if (leaf != 0) return TdxModuleCall(i, leaf); // X86Emulator.TdxModule.cs
        ulong mask = _cpu.Gpr[X86Cpu.RCX];
        if ((mask & VmcallReservedMask) != 0)
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxOperandInvalidRcx;
            return i.NextIP;
        }
        _tdVmcall ??= new TdVmcall(_vcpu);
        var gpr = _tdVmcall.Args.Gpr;
        for (int reg = 0; reg < gpr.Length; reg++) gpr[reg] = Passed(mask, reg) ? _cpu.Gpr[reg] : 0;
        gpr[X86Cpu.RCX] = mask;
        switch (_tdVmcall.Handle(_run))
        {
            case TdVmcallOutcome.ExitToUser:
                _tdcallMask = mask;
                _tdcallNext = i.NextIP;
                _exit = StepOutcome.ExitToUser;
                return _cpu.Rip;
            case TdVmcallOutcome.Halt:
                // kvm_emulate_halt_noskip with an in-kernel APIC (a TD always has one): the vCPU waits in KVM_RUN
                // (tdx.c tdx_emulate_hlt; __kvm_emulate_halt counts halt_exits). The TDCALL was a VM exit handled in
                // the kernel: vcpu_enter_guest "++vcpu->stat.exits", as for a HLT (X86Emulator.Execute.cs).
                if (Stats is { } haltStats)
                {
                    haltStats.Increment(haltStats.Table.Slots.Exits);
                    haltStats.Increment(haltStats.Table.Slots.HaltExits);
                }
                _cpu.State.MpState = Abi.KvmMpState.KVM_MP_STATE_HALTED;
                break;
        }
        ReturnToTd(mask);
        return i.NextIP;
    }

    /// <summary>
    /// complete_userspace_io for a TDVMCALL, on the next KVM_RUN: true when KVM_RUN returns at once with another exit
    /// (MapGPA's next chunk), else the registers go back to the TD and RIP moves past the TDCALL.
    /// </summary>
    public bool CompleteTdVmcall()
    {
        if (_tdVmcall!.Complete(_run) == TdVmcallOutcome.ExitToUser) return true;
        ReturnToTd(_tdcallMask);
        _cpu.Rip = _tdcallNext;
        return false;
    }

    /// <summary>
    /// The TDX module's TD entry after a TDG.VP.VMCALL: KVM's values into the exposed registers (RCX, the mask, stays),
    /// RAX = TDX_SUCCESS.
    /// </summary>
    private void ReturnToTd(ulong mask)
    {
        var gpr = _tdVmcall!.Args.Gpr;
        for (int reg = 0; reg < gpr.Length; reg++)
            if (reg != X86Cpu.RCX && Passed(mask, reg)) _cpu.Gpr[reg] = gpr[reg];
        _cpu.Gpr[X86Cpu.RAX] = 0;
    }

    /// <summary>A register RCX exposes, RBP excepted (NO_RBP_MOD: never passed); RAX, RCX's own bit and RSP are refused before.</summary>
    private static bool Passed(ulong mask, int reg) => reg != X86Cpu.RBP && (mask & (1UL << reg)) != 0;
}
