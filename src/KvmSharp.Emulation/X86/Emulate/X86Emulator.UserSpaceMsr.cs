// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// RDMSR/WRMSR as x86.c __kvm_emulate_rdmsr / __kvm_emulate_wrmsr run them: kvm_emulate_msr_read / _write (the MSR
/// filter, then the MSR's own rules: X86/MsrFilter.cs), and for a failed access kvm_msr_user_space — when userspace
/// asked for that reason (KVM_CAP_X86_USER_SPACE_MSR) KVM_RUN returns KVM_EXIT_X86_RDMSR/WRMSR with RIP still on the
/// instruction, and the next KVM_RUN completes it (complete_fast_rdmsr / complete_fast_msr_access), else #GP(0).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>
    /// vcpu->arch.complete_userspace_io == complete_fast_rdmsr (RDMSR) or complete_fast_msr_access (WRMSR): the
    /// length of the instruction to skip on the next KVM_RUN (0 = nothing pending).
    /// </summary>
    private int _msrExitLength;

    private bool _msrExitIsRead;

    /// <summary>The last exit was KVM_EXIT_X86_RDMSR/WRMSR: the next KVM_RUN first completes it.</summary>
    public bool HasPendingMsrExit => _msrExitLength != 0;

    /// <summary>
    /// The guest's RDMSR/WRMSR at CPL 0 (the CPU's own CPL check comes first: #GP(0) before any VM exit). Returns true
    /// when the access went to userspace: the instruction is not finished, RIP stays on it. A failure userspace did not
    /// ask for is #GP(0) with RIP on the instruction (kvm_complete_insn_gp); RDMSR then leaves RAX/RDX unchanged.
    /// </summary>
    private bool ModelSpecificRegisterAccess(in Instruction i)
    {
        RequireCpl0();
        uint msr = (uint)_cpu.Gpr[X86Cpu.RCX];
        bool read = i.Mnemonic == Mnemonic.Rdmsr;
        ulong value = 0;
        int r;
        if (read)
        {
            r = MsrFilter.GuestRead(_kvm, _cpu, msr, out ulong data);
            if (r == 0)
            {
                // "kvm_rax_write(vcpu, data & -1u); kvm_rdx_write(vcpu, (data >> 32) & -1u)": whole registers.
                _cpu.Gpr[X86Cpu.RAX] = (uint)data;
                _cpu.Gpr[X86Cpu.RDX] = data >> 32;
                return false;
            }
        }
        else
        {
            value = (_cpu.Gpr[X86Cpu.RDX] << 32) | (uint)_cpu.Gpr[X86Cpu.RAX];
            r = MsrFilter.GuestWrite(_kvm, _cpu, msr, value);
            if (r == 0) return false;
        }
        // kvm_msr_user_space(vcpu, msr, KVM_EXIT_X86_RDMSR, 0, …) / (…, KVM_EXIT_X86_WRMSR, data, …).
        ulong reason = MsrFilter.ExitReason(_kvm, r);
        if (reason == 0) throw new GuestFault(GP_VECTOR);
        _run.SetMsrExit(!read, reason, msr, value);
        _msrExitLength = i.Length;
        _msrExitIsRead = read;
        _exit = StepOutcome.ExitToUser;
        return true;
    }

    /// <summary>
    /// RDMSR/WRMSR through <see cref="MsrRules"/> alone, failure #GP(0): no MSR filter and no userspace exit. What a
    /// TD's natively virtualized MSRs use (X86Emulator.TdxCpuidMsr.cs: the TDX module, not KVM, handles them).
    /// </summary>
    private void ModelSpecificRegister(in Instruction i)
    {
        RequireCpl0();
        uint msr = (uint)_cpu.Gpr[X86Cpu.RCX];
        if (i.Mnemonic == Mnemonic.Rdmsr)
        {
            if (MsrRules.Get(_cpu, msr, hostInitiated: false, out ulong data) != 0) throw new GuestFault(GP_VECTOR);
            _cpu.Gpr[X86Cpu.RAX] = (uint)data;
            _cpu.Gpr[X86Cpu.RDX] = data >> 32;
            return;
        }
        ulong value = (_cpu.Gpr[X86Cpu.RDX] << 32) | (uint)_cpu.Gpr[X86Cpu.RAX];
        if (MsrRules.Set(_cpu, msr, value, hostInitiated: false) != 0) throw new GuestFault(GP_VECTOR);
    }

    /// <summary>
    /// The completion on the next KVM_RUN (before immediate_exit is looked at): complete_userspace_rdmsr — without
    /// msr.error, "kvm_rax_write(vcpu, (u32)vcpu-&gt;run-&gt;msr.data); kvm_rdx_write(vcpu, vcpu-&gt;run-&gt;msr.data
    /// &gt;&gt; 32)" — then kvm_complete_insn_gp(vcpu, msr.error): a non-zero error byte queues #GP(0) (kvm_inject_gp,
    /// delivered as the guest is entered, RIP on the instruction), else kvm_skip_emulated_instruction (RIP truncated to
    /// 32 bits outside 64-bit mode, as for the hypercall exit).
    /// </summary>
    public void CompleteMsrExit()
    {
        int length = _msrExitLength;
        if (length == 0) return;
        _msrExitLength = 0;
        var (error, data) = _run.MsrAnswer;
        if (error != 0)
        {
            QueueGeneralProtection();
            return;
        }
        if (_msrExitIsRead)
        {
            _cpu.Gpr[X86Cpu.RAX] = (uint)data;
            _cpu.Gpr[X86Cpu.RDX] = data >> 32;
        }
        ulong rip = _cpu.Rip + (ulong)length;
        _cpu.Rip = KvmHypercall.Is64BitMode(_cpu) ? rip : (uint)rip;
    }

    /// <summary>
    /// kvm_inject_gp(vcpu, 0) → kvm_queue_exception_e → kvm_multiple_exception: with nothing queued a pending #GP(0);
    /// behind a queued #DF a triple fault; behind a contributory exception or #PF a #DF(0); behind a benign one it
    /// replaces it.
    /// </summary>
    private void QueueGeneralProtection()
    {
        var s = _cpu.State;
        s.EventRequested = true;
        byte vector = GP_VECTOR;
        if (s.ExceptionPending || s.ExceptionInjected)
        {
            if (s.ExceptionVector == DF_VECTOR)
            {
                s.TripleFaultRequested = true;
                return;
            }
            // exception_class: #DE, #TS, #NP, #SS, #GP are contributory; #PF is its own class.
            if (s.ExceptionVector is 0 or 10 or 11 or 12 or 13 or 14) vector = DF_VECTOR;
        }
        s.ExceptionPending = true;
        s.ExceptionInjected = false;
        s.ExceptionVector = vector;
        s.ExceptionHasErrorCode = true;
        s.ExceptionErrorCode = 0;
        s.ExceptionHasPayload = false;
        s.ExceptionPayload = 0;
    }
}
