// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// SYSENTER/SYSEXIT (Intel SDM Vol. 2B SYSENTER, SYSEXIT; AMD APM Vol. 3 SYSENTER, SYSEXIT; arch/x86/kvm/emulate.c
/// em_sysenter, em_sysexit). VMX and SVM run them natively except where AMD raises #UD (long mode), which KVM
/// intercepts (both opcodes are EmulateOnUD) and hands to em_sysenter/em_sysexit; the rules here are the CPU's, with
/// the vendor of the CPU the emulator models (<see cref="X86CpuModel.IsAmd"/>), and KVM's emulation where AMD's #UD is
/// intercepted.
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TrySysEnter(in Instruction i, ref ulong f, ref ulong next)
    {
        switch (i.Code)
        {
            case Code.Sysenter: next = SysEnter(ref f); return true;
            case Code.Sysexitd or Code.Sysexitq: next = SysExit(i); return true;
            default: return false;
        }
    }

    /// <summary>
    /// SYSENTER. AMD in long mode: the CPU's #UD is intercepted (svm.c ud_interception → handle_ud) and em_sysenter
    /// injects #UD from compatibility mode ("Intel's architecture allows SYSENTER in compatibility mode, but AMD does
    /// not") and gives up in 64-bit mode ("sysenter/sysexit have not been tested in 64bit mode": X86EMUL_UNHANDLEABLE),
    /// where x86.c handle_emulation_failure queues #UD and, at CPL 0, exits with KVM_EXIT_INTERNAL_ERROR (emulation).
    /// Everywhere else the Intel pseudocode (SDM Vol. 2B SYSENTER), which em_sysenter and AMD's legacy mode follow.
    /// </summary>
    private ulong SysEnter(ref ulong f)
    {
        bool amd = _kvm.Kernel.Config.X86Cpu.IsAmd;
        bool lma = _cpu.LongModeActive;
        // SDM Vol. 2B SYSENTER: "IF CR0.PE = 0 OR IA32_SYSENTER_CS[15:2] = 0 THEN #GP(0)"; em_sysenter: real mode → #GP(0)
        // Delivered through the IVT as on kvm_pvm (probed on Linux 6.18; X86Emulator.RealModeEvents.cs).
        if (!_cpu.ProtectedMode) throw new GuestFault(GP_VECTOR, errorCode: 0);
        if (lma && amd)
        {
            // emulate.c em_sysenter in compatibility mode: emulate_ud.
            if (_cpu.Bitness != 64) throw new GuestFault(UD_VECTOR);
            // em_sysenter in 64-bit mode: X86EMUL_UNHANDLEABLE → x86.c handle_emulation_failure: kvm_queue_exception(UD),
            // then at CPL 0 KVM_EXIT_INTERNAL_ERROR (the #UD stays queued for the next KVM_RUN), else the #UD is delivered.
            if (_cpu.Cpl != 0) throw new GuestFault(UD_VECTOR);
            var s = _cpu.State;
            (s.ExceptionPending, s.ExceptionInjected, s.ExceptionVector) = (true, false, UD_VECTOR);
            (s.ExceptionHasErrorCode, s.ExceptionErrorCode, s.ExceptionHasPayload, s.ExceptionPayload) = (false, 0, false, 0);
            throw new EmulationFailure("SYSENTER in 64-bit mode on AMD (em_sysenter: X86EMUL_UNHANDLEABLE)", haveInstructionBytes: true);
        }
        ulong selector = _cpu.Msrs.SysenterCs;
        if ((selector & 0xfffc) == 0) throw new GuestFault(GP_VECTOR, errorCode: 0);
        // SDM Vol. 2B SYSENTER: RFLAGS.VM, IF and RF cleared; CS = SYSENTER_CS & 0xFFFC (flat, DPL 0, 64-bit code
        // with EFER.LMA), SS = CS + 8 (flat, DPL 0); RIP/RSP = SYSENTER_EIP/ESP, their low 32 bits outside IA-32e mode
        // (em_sysenter: the same, with setup_syscalls_segments' flat segments).
        ushort cs = (ushort)(selector & 0xfffc);
        _cpu.Sregs.cs = FlatSegment(cs, code: true, dpl: 0, longCode: lma);
        _cpu.Sregs.ss = FlatSegment((ushort)(cs + 8), code: false, dpl: 0, longCode: false);
        f &= ~(RFLAGS_VM | RFLAGS_IF | RFLAGS_RF);
        _cpu.Gpr[X86Cpu.RSP] = lma ? _cpu.Msrs.SysenterEsp : (uint)_cpu.Msrs.SysenterEsp;
        return lma ? _cpu.Msrs.SysenterEip : (uint)_cpu.Msrs.SysenterEip;
    }

    /// <summary>
    /// SYSEXIT. SDM Vol. 2B SYSEXIT: "IF IA32_SYSENTER_CS[15:2] = 0 OR CR0.PE = 0 OR CPL ≠ 0 THEN #GP(0)". AMD in long
    /// mode: the CPU's #UD is intercepted and em_sysexit emulates the Intel instruction (its opcode entry is
    /// EmulateOnUD | Priv: CPL ≠ 0 → #GP(0) first; REX.W: #GP(0) only when all of SYSENTER_CS is 0). To 32-bit code:
    /// CS = SYSENTER_CS + 16 | 3, SS = SYSENTER_CS + 24 | 3, EIP = EDX, ESP = ECX. REX.W: CS = SYSENTER_CS + 32 | 3
    /// (64-bit), SS = SYSENTER_CS + 40 | 3, RIP = RDX, RSP = RCX, both canonical or #GP(0). RFLAGS is left as it is.
    /// </summary>
    private ulong SysExit(in Instruction i)
    {
        bool amd = _kvm.Kernel.Config.X86Cpu.IsAmd;
        // em_sysexit: real mode and virtual-8086 mode → #GP(0); x86_emulate_insn's Priv check: CPL ≠ 0 → #GP(0).
        if (!_cpu.ProtectedMode || (_cpu.Rflags & RFLAGS_VM) != 0 || _cpu.Cpl != 0) throw new GuestFault(GP_VECTOR, errorCode: 0);
        ulong selector = _cpu.Msrs.SysenterCs;
        bool to64 = i.Code == Code.Sysexitq;
        // em_sysexit, X86EMUL_MODE_PROT64: "if (msr_data == 0x0) return emulate_gp" (AMD in long mode); else the SDM's [15:2].
        if (to64 && amd && _cpu.LongModeActive ? selector == 0 : (selector & 0xfffc) == 0) throw new GuestFault(GP_VECTOR, errorCode: 0);
        ulong rip = _cpu.Gpr[X86Cpu.RDX], rsp = _cpu.Gpr[X86Cpu.RCX];
        if (to64)
        {
            if (!IsCanonical(rip) || !IsCanonical(rsp)) throw new GuestFault(GP_VECTOR, errorCode: 0);
        }
        else
        {
            (rip, rsp) = ((uint)rip, (uint)rsp);
        }
        ushort cs = (ushort)(((ushort)selector + (to64 ? 32 : 16)) | 3);
        _cpu.Sregs.cs = FlatSegment(cs, code: true, dpl: 3, longCode: to64);
        _cpu.Sregs.ss = FlatSegment((ushort)((cs + 8) | 3), code: false, dpl: 3, longCode: false);
        _cpu.Gpr[X86Cpu.RSP] = rsp;
        return rip;
    }
}
