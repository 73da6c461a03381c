// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// RDTSCP (0F 01 F9) and RDPID (F3 0F C7 /7): the guest TSC and TSC_AUX (MSR 0xC0000103, <see cref="MsrState.TscAux"/>,
/// the value KVM_SET_MSRS and a guest WRMSR write through <see cref="MsrRules"/>). Both are #UD unless the vCPU's
/// CPUID offers them, as upstream KVM on SVM hardware with RDTSCP/RDPID has it: svm.c
/// svm_recalc_instruction_intercepts sets INTERCEPT_RDTSCP when !guest_cpu_cap_has(vcpu, X86_FEATURE_RDTSCP) and
/// svm_exit_handlers[SVM_EXIT_RDTSCP] is kvm_handle_invalid_op (#UD); emulate.c em_rdpid: "if
/// (!ctxt->ops->guest_has_rdpid(ctxt)) return emulate_ud(ctxt)". (SVM cannot intercept a native RDPID, so on
/// hardware with RDPID a guest without the bit still runs it; the emulator keeps the architectural #UD.) kvm_pvm
/// offers neither and answers differently (HostDeviations.KvmPvmWithoutTscAuxInstructions).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>CR4.TSD: RDTSC/RDTSCP are privileged (SDM Vol. 2B RDTSCP: #GP(0) if CR4.TSD = 1 and CPL &gt; 0).</summary>
    private const ulong CR4_TSD = 1UL << 2;

    /// <summary>
    /// RDTSCP: EDX:EAX = the guest TSC (host TSC + l1_tsc_offset, as RDTSC and RDMSR IA32_TSC read it), ECX =
    /// TSC_AUX[31:0]; the upper halves of RAX, RDX and RCX are cleared in 64-bit mode (SDM Vol. 2B RDTSCP). RDPID: the
    /// destination (r64 in 64-bit mode, else r32) = TSC_AUX, which KVM keeps as 32 bits (x86.c __kvm_set_msr
    /// MSR_TSC_AUX "data = (u32)data"). Neither changes flags.
    /// </summary>
    private void TscAuxInstruction(in Instruction i)
    {
        var cpuid = _cpu.Cpuid;
        if (i.Mnemonic == Mnemonic.Rdtscp)
        {
            if (!cpuid.HasRdtscp) throw new GuestFault(UD_VECTOR);
            if ((_cpu.Sregs.cr4 & CR4_TSD) != 0 && _cpu.Cpl != 0) throw new GuestFault(GP_VECTOR);
            ulong tsc = _cpu.Msrs.ReadTsc();
            WriteReg(Register.EAX, tsc & 0xffff_ffff);
            WriteReg(Register.EDX, tsc >> 32);
            WriteReg(Register.ECX, _cpu.Msrs.TscAux & 0xffff_ffff);
            return;
        }
        if (!cpuid.HasRdpid) throw new GuestFault(UD_VECTOR);
        WriteReg(i.Op0Register, _cpu.Msrs.TscAux & 0xffff_ffff);
    }
}
