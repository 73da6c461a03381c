// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c ____kvm_emulate_hypercall (through kvm_emulate_hypercall, reached by VMCALL/VMMCALL) and
/// complete_hypercall_exit. Xen and Hyper-V hypercalls are never enabled here (no KVM_XEN_HVM_CONFIG, no Hyper-V
/// CPUID), so every VMCALL is a KVM hypercall.
/// </summary>
internal static class KvmHypercall
{
    /// <summary>APIC_DEST_MASK | APIC_SHORT_MASK (arch/x86/include/asm/apicdef.h): the ICR bits PV IPIs reject.</summary>
    private const ulong PvIpiRejectedIcrBits = 0x800 | 0xc0000;

    /// <summary>KVM_FEATURE_PV_UNHALT, KVM_FEATURE_PV_SEND_IPI, KVM_FEATURE_PV_SCHED_YIELD (uapi asm/kvm_para.h).</summary>
    private const int KvmFeaturePvUnhalt = 7, KvmFeaturePvSendIpi = 11, KvmFeaturePvSchedYield = 13;

    /// <summary>
    /// Runs the hypercall in RAX with the arguments in RBX, RCX, RDX, RSI. Returns true when it exits to userspace
    /// (KVM_EXIT_HYPERCALL filled; the caller leaves RIP on the instruction and completes it on the next KVM_RUN).
    /// Otherwise KVM answered by itself: <paramref name="ret"/> goes to RAX now (see <see cref="ReturnValue"/>).
    /// </summary>
    public static bool Emulate(X86Cpu cpu, ulong hypercallExitEnabled, KvmRunPage run, out ulong ret)
    {
        ulong nr = cpu.Gpr[X86Cpu.RAX], a0 = cpu.Gpr[X86Cpu.RBX], a1 = cpu.Gpr[X86Cpu.RCX];
        ulong a2 = cpu.Gpr[X86Cpu.RDX], a3 = cpu.Gpr[X86Cpu.RSI];
        // is_64_bit_hypercall: is_64_bit_mode (no protected guest state here). Outside it, nr and a0..a3 are
        // truncated to 32 bits before anything looks at them.
        bool op64 = Is64BitMode(cpu);
        if (!op64)
        {
            nr = (uint)nr;
            a0 = (uint)a0;
            a1 = (uint)a1;
            a2 = (uint)a2;
            a3 = (uint)a3;
        }
        return Dispatch(cpu, hypercallExitEnabled, run, nr, a0, a1, a2, a3, cpu.Cpl, op64, out ret);
    }

    /// <summary>
    /// ____kvm_emulate_hypercall from the CPL check on, with the number and arguments already read (and truncated
    /// outside 64-bit mode): what a VMCALL and a TD's TDG.VP.VMCALL with R10 != 0 (vmx/tdx.c tdx_emulate_vmcall:
    /// RAX..RSI from R10..R14, cpl 0, 64-bit because guest_state_protected) share.
    /// </summary>
    public static bool Dispatch(X86Cpu cpu, ulong hypercallExitEnabled, KvmRunPage run, ulong nr, ulong a0, ulong a1, ulong a2, ulong a3,
        int cpl, bool op64, out ulong ret)
    {
        // "if (cpl) { ret = -KVM_EPERM; goto out; }" — after the truncation, before the number is looked at.
        if (cpl != 0) return Answer(run, -KvmPara.KVM_EPERM, out ret);
        switch (nr)
        {
            case KvmPara.KVM_HC_VAPIC_POLL_IRQ:
                return Answer(run, 0, out ret);
            case KvmPara.KVM_HC_KICK_CPU:
            case KvmPara.KVM_HC_SCHED_YIELD:
                // "if (!guest_pv_has(vcpu, KVM_FEATURE_PV_UNHALT / PV_SCHED_YIELD)) break;" with ret = -KVM_ENOSYS
                // (only under KVM_CAP_ENFORCE_PV_FEATURE_CPUID); the kick and the directed yield have no visible
                // effect on a single emulated vCPU. ret = 0.
                if (!cpu.Cpuid.PvHas(nr == KvmPara.KVM_HC_KICK_CPU ? KvmFeaturePvUnhalt : KvmFeaturePvSchedYield))
                    return Answer(run, -KvmPara.KVM_ENOSYS, out ret);
                return Answer(run, 0, out ret);
            case KvmPara.KVM_HC_CLOCK_PAIRING:
                // kvm_pv_clock_pairing: a clock type other than KVM_CLOCK_PAIRING_WALLCLOCK (0) → -KVM_EOPNOTSUPP; the
                // wallclock needs a TSC-based host clocksource (kvm_get_walltime_and_clockread), which the emulator
                // does not have → -KVM_EOPNOTSUPP as well.
                return Answer(run, -KvmPara.KVM_EOPNOTSUPP, out ret);
            case KvmPara.KVM_HC_SEND_IPI:
                if (!cpu.Cpuid.PvHas(KvmFeaturePvSendIpi)) return Answer(run, -KvmPara.KVM_ENOSYS, out ret);
                // lapic.c kvm_pv_send_ipi: ICR destination/shorthand bits → -KVM_EINVAL; then no APIC map exists
                // without an in-kernel irqchip → -EOPNOTSUPP.
                return Answer(run, (a3 & PvIpiRejectedIcrBits) != 0 ? -KvmPara.KVM_EINVAL : -KvmPara.KVM_EOPNOTSUPP, out ret);
            case KvmPara.KVM_HC_MAP_GPA_RANGE:
                return MapGpaRange(hypercallExitEnabled, run, a0, a1, a2, op64, out ret);
            default:
                // "ret = -KVM_ENOSYS" for every other number (no exit, whatever KVM_CAP_EXIT_HYPERCALL says).
                return Answer(run, -KvmPara.KVM_ENOSYS, out ret);
        }
    }

    /// <summary>complete_hypercall_exit: RAX = run->hypercall.ret, only its low 32 bits outside 64-bit mode.</summary>
    public static ulong ReturnValue(X86Cpu cpu, ulong ret) => Is64BitMode(cpu) ? ret : (uint)ret;

    /// <summary>is_64_bit_mode: EFER.LMA and CS.L.</summary>
    public static bool Is64BitMode(X86Cpu cpu) => cpu.Bitness == 64;

    private static bool MapGpaRange(ulong exitEnabled, KvmRunPage run, ulong gpa, ulong npages, ulong attrs, bool op64, out ulong ret)
    {
        // user_exit_on_hypercall(kvm, KVM_HC_MAP_GPA_RANGE): kvm->arch.hypercall_exit_enabled & BIT(nr).
        if ((exitEnabled & (1UL << (int)KvmPara.KVM_HC_MAP_GPA_RANGE)) == 0) return Answer(run, -KvmPara.KVM_ENOSYS, out ret);
        // "!PAGE_ALIGNED(gpa) || !npages || gpa_to_gfn(gpa) + npages <= gpa_to_gfn(gpa)" → -KVM_EINVAL. The
        // attributes are not checked by KVM: they go to userspace as they are.
        ulong page = (ulong)EmulatorConfig.PageSize;
        ulong gfn = gpa / page;
        if ((gpa & (page - 1)) != 0 || npages == 0 || unchecked(gfn + npages) <= gfn)
            return Answer(run, -KvmPara.KVM_EINVAL, out ret);
        // The exit: nr, ret = 0 (kept 0 for QEMU <= 9.2, which never wrote it), args[0..2], flags = LONG_MODE when
        // op_64_bit; args[3..5] are left as they were. complete_userspace_io = complete_hypercall_exit.
        run.SetHypercallExit(KvmPara.KVM_HC_MAP_GPA_RANGE, gpa, npages, attrs, op64 ? KvmPara.KVM_EXIT_HYPERCALL_LONG_MODE : 0);
        ret = 0;
        return true;
    }

    /// <summary>"out: vcpu->run->hypercall.ret = ret;" — written to kvm_run even though there is no exit.</summary>
    private static bool Answer(KvmRunPage run, long value, out ulong ret)
    {
        ret = (ulong)value;
        run.HypercallRet = ret;
        return false;
    }
}
