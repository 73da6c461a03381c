// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;
using static KvmSharp.Emulation.Arm64.Psci;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The PSCI vCPU power calls of arch/arm64/kvm/psci.c (6.18): CPU_ON (kvm_psci_vcpu_on), CPU_OFF
/// (kvm_arm_vcpu_power_off), AFFINITY_INFO (kvm_psci_vcpu_affinity_info), CPU_SUSPEND (kvm_psci_vcpu_suspend), for
/// PSCI 0.2+ and KVM's PSCI 0.1 ids. A vCPU's power state is mp_state STOPPED/RUNNABLE (<see cref="Arm64VcpuState.Stopped"/>);
/// CPU_ON leaves a reset request (vcpu->arch.reset_state + KVM_REQ_VCPU_RESET) that the target's next KVM_RUN applies.
/// </summary>
internal static class Arm64PsciPower
{
    /// <summary>MPIDR_HWID_BITMASK: Aff3 (39:32) and Aff2..Aff0 (23:0).</summary>
    public const ulong MpidrHwidMask = 0xff_00ff_ffffUL;

    private static readonly int MpidrIndex = Arm64SysRegs.Index("MPIDR_EL1");

    /// <summary>The power calls of the VM's PSCI version; null for any other function id.</summary>
    public static HvcResult? TryCall(KvmVcpu vcpu, Arm64VcpuState state, ulong version)
    {
        var cpu = state.Cpu;
        uint fn = (uint)cpu.X[0];
        ulong val;
        if (version == Abi.Arm64.KvmArm64FwRegs.KVM_ARM_PSCI_0_1)
        {
            // kvm_psci_0_1_call: KVM_PSCI_FN_CPU_OFF / KVM_PSCI_FN_CPU_ON, no narrowing.
            if (fn == KVM_PSCI_FN_CPU_OFF) val = PowerOff(state);
            else if (fn == KVM_PSCI_FN_CPU_ON) val = VcpuOn(vcpu, cpu, psci01: true);
            else return null;
            Smccc.SetRetval(cpu, [val, 0, 0, 0]);
            return HvcResult.Continue;
        }
        switch (fn)
        {
            case PSCI_0_2_FN_CPU_SUSPEND:
            case PSCI_0_2_FN64_CPU_SUSPEND:
                // kvm_psci_vcpu_suspend: "we make VCPU suspend emulation to be same-as WFI" → kvm_vcpu_wfi, SUCCESS.
                Smccc.SetRetval(cpu, [PSCI_RET_SUCCESS, 0, 0, 0]);
                return HvcResult.Wfi;
            case PSCI_0_2_FN_CPU_OFF:
                val = PowerOff(state);
                break;
            case PSCI_0_2_FN_CPU_ON:
                NarrowTo32Bit(cpu);
                goto case PSCI_0_2_FN64_CPU_ON;
            case PSCI_0_2_FN64_CPU_ON:
                val = VcpuOn(vcpu, cpu, psci01: false);
                break;
            case PSCI_0_2_FN_AFFINITY_INFO:
                NarrowTo32Bit(cpu);
                goto case PSCI_0_2_FN64_AFFINITY_INFO;
            case PSCI_0_2_FN64_AFFINITY_INFO:
                val = AffinityInfo(vcpu, cpu);
                break;
            default:
                return null;
        }
        Smccc.SetRetval(cpu, [val, 0, 0, 0]);
        return HvcResult.Continue;
    }

    /// <summary>kvm_vcpu_get_mpidr_aff: MPIDR_EL1 as KVM keeps it (reset_mpidr or what userspace wrote), HWID bits only.</summary>
    public static ulong MpidrAff(Arm64Cpu cpu) => cpu.SysRegs[MpidrIndex] & MpidrHwidMask;

    /// <summary>kvm_arm_vcpu_power_off: mp_state = STOPPED, KVM_REQ_SLEEP (the run loop sleeps); x0 = SUCCESS.</summary>
    private static ulong PowerOff(Arm64VcpuState state)
    {
        state.Stopped = true;
        return PSCI_RET_SUCCESS;
    }

    /// <summary>
    /// kvm_psci_vcpu_on (under kvm->lock and the target's mp_state_lock): an affinity outside MPIDR_HWID_BITMASK or no
    /// vCPU with it → INVALID_PARAMS; a target not STOPPED → ALREADY_ON (PSCI 0.1: INVALID_PARAMS); else reset_state =
    /// { pc = x2, r0 = x3 }, KVM_REQ_VCPU_RESET, mp_state = RUNNABLE, kvm_vcpu_wake_up. KVM never answers ON_PENDING.
    /// </summary>
    private static ulong VcpuOn(KvmVcpu source, Arm64Cpu cpu, bool psci01)
    {
        ulong cpuId = cpu.X[1];
        if ((cpuId & ~MpidrHwidMask) != 0) return PSCI_RET_INVALID_PARAMS;
        lock (source.Kvm.Kernel.SyncRoot)
        {
            var target = MpidrToVcpu(source, cpuId);
            if (target is null) return PSCI_RET_INVALID_PARAMS;
            if (!target.Stopped) return psci01 ? PSCI_RET_INVALID_PARAMS : PSCI_RET_ALREADY_ON;
            // reset_state->be (caller endianness) is not propagated: the interpreter is little-endian only [gap].
            target.PendingReset = new Arm64ResetState(cpu.X[2], cpu.X[3]);
            target.Stopped = false;
        }
        return PSCI_RET_SUCCESS;
    }

    /// <summary>kvm_mpidr_to_vcpu: the first vCPU (in index order) whose MPIDR affinity equals mpidr &amp; MPIDR_HWID_BITMASK.</summary>
    private static Arm64VcpuState? MpidrToVcpu(KvmVcpu source, ulong mpidr)
    {
        mpidr &= MpidrHwidMask;
        foreach (var v in source.Kvm.Vcpus)
        {
            var s = Arm64VcpuState.Of(v);
            if (MpidrAff(s.Cpu) == mpidr) return s;
        }
        return null;
    }

    /// <summary>
    /// kvm_psci_vcpu_affinity_info: x1 = target affinity, x2 = lowest affinity level; invalid affinity or a level
    /// above 3 (psci_affinity_mask → 0) → INVALID_PARAMS; ON (0) if a matching vCPU is not stopped, OFF (1) if all
    /// matching ones are, INVALID_PARAMS when none matches.
    /// </summary>
    private static ulong AffinityInfo(KvmVcpu source, Arm64Cpu cpu)
    {
        ulong target = cpu.X[1];
        ulong level = cpu.X[2];
        if ((target & ~MpidrHwidMask) != 0) return PSCI_RET_INVALID_PARAMS;
        if (level > 3) return PSCI_RET_INVALID_PARAMS;
        // AFFINITY_MASK(level) = ~((1UL << (level * MPIDR_LEVEL_BITS)) - 1), within MPIDR_HWID_BITMASK.
        ulong mask = MpidrHwidMask & ~((1UL << (int)(level * 8)) - 1);
        target &= mask;
        int matching = 0;
        lock (source.Kvm.Kernel.SyncRoot)
        {
            foreach (var v in source.Kvm.Vcpus)
            {
                var s = Arm64VcpuState.Of(v);
                if ((MpidrAff(s.Cpu) & mask) != target) continue;
                matching++;
                if (!s.Stopped) return 0; // PSCI_0_2_AFFINITY_LEVEL_ON
            }
        }
        return matching == 0 ? PSCI_RET_INVALID_PARAMS : 1; // PSCI_0_2_AFFINITY_LEVEL_OFF
    }
}

/// <summary>vcpu->arch.reset_state of a CPU_ON: the entry point and the context id for x0.</summary>
internal sealed record Arm64ResetState(ulong Pc, ulong R0);
