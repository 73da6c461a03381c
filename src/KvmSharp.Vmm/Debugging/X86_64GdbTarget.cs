// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// An x86-64 vCPU for <see cref="GdbStub"/>: registers through KVM_GET/SET_REGS and KVM_GET_SREGS in gdb's layout
/// (<see cref="X86_64GdbRegisters"/>), steps with KVM_GUESTDBG_SINGLESTEP, breakpoints in DR0–DR3 with
/// KVM_GUESTDBG_USE_HW_BP (x86.c kvm_vcpu_check_code_breakpoint).
/// </summary>
internal sealed class X86_64GdbTarget(Vcpu vcpu) : GdbTarget
{
    private const byte Hlt = 0xF4;

    public override string TargetXml => X86_64GdbRegisters.TargetXml;

    public override int PcRegister => X86_64GdbRegisters.Rip;

    public override int Count => X86_64GdbRegisters.Count;

    public override ulong Pc
    {
        get => vcpu.GetRegs().rip;
        set
        {
            kvm_regs regs = vcpu.GetRegs();
            regs.rip = value;
            vcpu.SetRegs(regs);
        }
    }

    public override int Size(int n) => X86_64GdbRegisters.Size(n);

    public override int Offset(int n) => X86_64GdbRegisters.Offset(n);

    public override int UnavailableSize(int n) => X86_64GdbRegisters.UnavailableSize(n);

    public override byte[] ReadAll() => X86_64GdbRegisters.Read(vcpu.GetRegs(), vcpu.GetSregs());

    public override bool WriteAll(ReadOnlySpan<byte> packet)
    {
        kvm_regs regs = vcpu.GetRegs();
        if (!X86_64GdbRegisters.WriteAll(ref regs, packet)) return false;
        vcpu.SetRegs(regs);
        return true;
    }

    public override bool Write(int n, ReadOnlySpan<byte> value)
    {
        kvm_regs regs = vcpu.GetRegs();
        if (!X86_64GdbRegisters.Write(ref regs, n, value)) return false;
        vcpu.SetRegs(regs);
        return true;
    }

    public override void Step() => vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep);

    public override void Arm(IReadOnlyList<ulong> breakpoints)
    {
        if (breakpoints.Count == 0)
        {
            Disable();
            return;
        }
        Span<ulong> regs = stackalloc ulong[Vcpu.GuestDebugRegisterCount];
        for (int i = 0; i < breakpoints.Count; i++) regs[i] = breakpoints[i];
        regs[7] = X86_64GdbRegisters.Dr7ForExecuteBreakpoints(breakpoints.Count);
        vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, regs);
    }

    public override void Disable() => vcpu.DisableGuestDebug();

    public override bool IsStepExit(VcpuExit exit) => exit.IsSingleStep;

    public override bool EndsCallWhenStepped(GuestMemory memory, ulong pc)
    {
        if (!memory.Contains(pc, 1) || !memory.IsShared(pc, 1)) return false;
        return memory.Read<byte>(pc) == Hlt;
    }

    // This host (and the emulator like it) advances RIP past an OUT before the exit and loses its step exit; upstream
    // KVM and an IN leave RIP on the instruction and step on the KVM_RUN that completes it (x86.c kvm_fast_pio).
    public override bool StepCompletedAt(VcpuExit exit, ulong stepFrom) =>
        exit.Reason == KvmExitReason.KVM_EXIT_IO && vcpu.GetRegs().rip != stepFrom;
}
