// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// VMCALL and VMMCALL. Hardware (VMX handle_vmcall, SVM vmmcall_interception) exits on the host vendor's own
/// instruction and calls kvm_emulate_hypercall; the other vendor's goes through #UD → emulate.c em_hypercall, which
/// rewrites it in guest memory (emulator_fix_hypercall, KVM_X86_QUIRK_FIX_HYPERCALL_INSN) and runs it again. The
/// emulator runs both as the hypercall directly: the registers end the same, only that patch of the instruction bytes
/// is not reproduced. With the quirk disabled the other vendor's instruction (the host vendor is the CPU model's,
/// <see cref="X86CpuModel.IsAmd"/>) is the #UD emulator_fix_hypercall synthesizes.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>
    /// vcpu->arch.complete_userspace_io == complete_hypercall_exit: the length of the hypercall instruction to skip
    /// on the next KVM_RUN (0 = nothing pending).
    /// </summary>
    private int _hypercallLength;

    /// <summary>The last exit was KVM_EXIT_HYPERCALL: the next KVM_RUN first completes it.</summary>
    public bool HasPendingHypercall => _hypercallLength != 0;

    /// <summary>
    /// Executes the hypercall; returns the RIP to continue at. An exit to userspace leaves RIP on the instruction and
    /// RAX untouched (x86.c: the skip happens in complete_hypercall_exit).
    /// </summary>
    private ulong Hypercall(in Instruction i)
    {
        // emulator_fix_hypercall: "if (!kvm_check_has_quirk(vcpu->kvm, KVM_X86_QUIRK_FIX_HYPERCALL_INSN)) { … vector =
        // UD_VECTOR … return X86EMUL_PROPAGATE_FAULT; }".
        if ((i.Mnemonic == Mnemonic.Vmcall) == _kvm.Kernel.Config.X86Cpu.IsAmd
            && !Quirks.Has(_kvm, Abi.KvmX86Quirks.KVM_X86_QUIRK_FIX_HYPERCALL_INSN))
            throw new GuestFault(UD_VECTOR);
        if (KvmHypercall.Emulate(_cpu, _kvm.HypercallExitEnabled, _run, out ulong ret))
        {
            _hypercallLength = i.Length;
            _exit = StepOutcome.ExitToUser;
            return _cpu.Rip;
        }
        // __kvm_emulate_hypercall: "if (__ret > 0) __ret = complete_hypercall(_vcpu);" — at once.
        _cpu.Gpr[X86Cpu.RAX] = KvmHypercall.ReturnValue(_cpu, ret);
        return i.NextIP;
    }

    /// <summary>
    /// complete_hypercall_exit on the next KVM_RUN (before immediate_exit is looked at): RAX = run->hypercall.ret as
    /// userspace left it (low 32 bits outside 64-bit mode), then kvm_skip_emulated_instruction from the current RIP
    /// (vmx skip_emulated_instruction truncates it to 32 bits outside 64-bit mode).
    /// </summary>
    public void CompleteHypercall()
    {
        int length = _hypercallLength;
        if (length == 0) return;
        _hypercallLength = 0;
        _cpu.Gpr[X86Cpu.RAX] = KvmHypercall.ReturnValue(_cpu, _run.HypercallRet);
        ulong rip = _cpu.Rip + (ulong)length;
        _cpu.Rip = KvmHypercall.Is64BitMode(_cpu) ? rip : (uint)rip;
    }
}
