// SPDX-License-Identifier: MIT
using System.Diagnostics;
using static KvmSharp.Abi.Arm64.KvmArm64TimerRegs;

namespace KvmSharp.Emulation.Arm64;

/// <summary>kvm->arch.timer_data: the VM-wide counter offsets (voffset for the virtual, poffset for the physical timer).</summary>
internal sealed class Arm64TimerOffsets
{
    public ulong Voffset { get; set; }

    public ulong Poffset { get; set; }

    /// <summary>
    /// KVM_ARCH_FLAG_VM_COUNTER_OFFSET: KVM_ARM_SET_COUNTER_OFFSET set both offsets (Arm64CounterOffset); from then
    /// on writes of TIMER_CNT / PTIMER_CNT through KVM_SET_ONE_REG are ignored.
    /// </summary>
    public bool VmCounterOffset { get; set; }
}

/// <summary>One struct arch_timer_context: CNTx_CTL_EL0 (as stored, without ISTATUS) and CNTx_CVAL_EL0.</summary>
internal sealed class Arm64TimerContext
{
    public uint Ctl { get; set; }

    public ulong Cval { get; set; }
}

/// <summary>What a guest MSR to a timer register did.</summary>
internal enum TimerWrite
{
    NotATimerRegister,
    Done,
    Undefined,
}

/// <summary>
/// The generic timer of one vCPU (arch/arm64/kvm/arch_timer.c): the virtual and physical EL1 timers, their
/// KVM_GET/SET_ONE_REG ids (guest.c timer_reg_list / is_timer_reg, kvm_arm_timer_get_reg / kvm_arm_timer_set_reg) and
/// the guest's MRS/MSR of CNTFRQ_EL0, CNTPCT_EL0, CNTVCT_EL0 and CNT{P,V}_{TVAL,CTL,CVAL}_EL0 (kvm_arm_timer_read /
/// kvm_arm_timer_write). The physical counter is the emulator's clock (Stopwatch) scaled to
/// <see cref="Arm64HostCpu.CounterFrequency"/>; ISTATUS is computed from it on every read (read_timer_ctl). The timers'
/// PPIs are raised through the vGIC (Vgic/VgicDelivery.UpdateTimers). Writes of TIMER_CNT / PTIMER_CNT move the VM-wide
/// offsets until KVM_ARM_SET_COUNTER_OFFSET was used (Arm64CounterOffset), after which they are ignored.
/// </summary>
internal sealed class Arm64Timer
{
    private readonly Arm64TimerOffsets _offsets;

    public Arm64Timer(Arm64TimerOffsets offsets) => _offsets = offsets;

    public Arm64TimerContext Virtual { get; } = new();

    public Arm64TimerContext Physical { get; } = new();

    /// <summary>guest.c timer_reg_list[] (6.4+: both timers), the order copy_timer_indices lists them.</summary>
    public static ulong[] Indices { get; } =
        [KVM_REG_ARM_TIMER_CTL, KVM_REG_ARM_TIMER_CNT, KVM_REG_ARM_TIMER_CVAL, KVM_REG_ARM_PTIMER_CTL, KVM_REG_ARM_PTIMER_CNT, KVM_REG_ARM_PTIMER_CVAL];

    /// <summary>guest.c is_timer_reg: the exact ids of <see cref="Indices"/>.</summary>
    public static bool IsTimerReg(ulong id) => Array.IndexOf(Indices, id) >= 0;

    /// <summary>kvm_phys_timer_read(): the host's CNTPCT_EL0.</summary>
    public static ulong PhysicalCounter() =>
        (ulong)((UInt128)(ulong)Stopwatch.GetTimestamp() * Arm64HostCpu.CounterFrequency / (ulong)Stopwatch.Frequency);

    private ulong Offset(Arm64TimerContext t) => ReferenceEquals(t, Virtual) ? _offsets.Voffset : _offsets.Poffset;

    /// <summary>kvm_arm_timer_read TIMER_REG_CNT: kvm_phys_timer_read() - timer_get_offset(timer).</summary>
    public ulong Counter(Arm64TimerContext t) => PhysicalCounter() - Offset(t);

    /// <summary>read_timer_ctl: with ENABLE set, ISTATUS = "the counter has reached CVAL" (kvm_timer_compute_delta == 0).</summary>
    public ulong ReadCtl(Arm64TimerContext t)
    {
        ulong ctl = t.Ctl;
        if ((ctl & ARCH_TIMER_CTRL_ENABLE) == 0) return ctl;
        return Counter(t) >= t.Cval ? ctl | ARCH_TIMER_CTRL_IT_STAT : ctl & ~ARCH_TIMER_CTRL_IT_STAT;
    }

    /// <summary>
    /// The Stopwatch timestamp at which <paramref name="t"/> starts to fire (kvm_timer_should_fire: ENABLE set, IMASK
    /// clear, the counter at CVAL — kvm_timer_earliest_exp / kvm_timer_compute_delta, where kvm_timer_blocking arms the
    /// background hrtimer that wakes a blocked vCPU, kvm_bg_timer_expire); long.MaxValue when it is disabled or masked,
    /// or fires already (a level that stays: no new event to wait for). Read-only, for a blocked vCPU's wait
    /// (Arm64Run.cs WaitForInterrupt).
    /// </summary>
    public long DueTimestamp(Arm64TimerContext t)
    {
        ulong ctl = t.Ctl;
        if ((ctl & ARCH_TIMER_CTRL_ENABLE) == 0 || (ctl & ARCH_TIMER_CTRL_IT_MASK) != 0) return long.MaxValue;
        long now = Stopwatch.GetTimestamp();
        ulong counter = (ulong)((UInt128)(ulong)now * Arm64HostCpu.CounterFrequency / (ulong)Stopwatch.Frequency) - Offset(t);
        if (counter >= t.Cval) return long.MaxValue;
        // Rounded up: the counter reaches CVAL at the tick it is due, not before.
        UInt128 ticks = ((UInt128)(t.Cval - counter) * (ulong)Stopwatch.Frequency + Arm64HostCpu.CounterFrequency - 1) / Arm64HostCpu.CounterFrequency;
        return ticks >= long.MaxValue / 2 ? long.MaxValue : now + (long)ticks;
    }

    /// <summary>kvm_timer_vcpu_reset: "timer_set_ctl(vcpu_get_timer(vcpu, i), 0)" for each timer; CVAL is kept.</summary>
    public void Reset()
    {
        Virtual.Ctl = 0;
        Physical.Ctl = 0;
    }

    /// <summary>kvm_arm_timer_get_reg.</summary>
    public ulong Get(ulong id)
    {
        if (id == KVM_REG_ARM_TIMER_CTL) return ReadCtl(Virtual);
        if (id == KVM_REG_ARM_TIMER_CNT) return Counter(Virtual);
        if (id == KVM_REG_ARM_TIMER_CVAL) return Virtual.Cval;
        if (id == KVM_REG_ARM_PTIMER_CTL) return ReadCtl(Physical);
        if (id == KVM_REG_ARM_PTIMER_CNT) return Counter(Physical);
        return Physical.Cval;
    }

    /// <summary>
    /// kvm_arm_timer_set_reg: CTL through kvm_arm_timer_write (ISTATUS dropped, stored as u32); CNT sets the VM-wide
    /// offset to kvm_phys_timer_read() - value (timer_set_offset) unless KVM_ARCH_FLAG_VM_COUNTER_OFFSET is set, when
    /// "the counters cannot be written to to set the offsets implicitly (the writes are instead ignored)"; CVAL as is.
    /// </summary>
    public void Set(ulong id, ulong value)
    {
        lock (_offsets)
        {
            if (id == KVM_REG_ARM_TIMER_CTL) Virtual.Ctl = (uint)(value & ~ARCH_TIMER_CTRL_IT_STAT);
            else if (id == KVM_REG_ARM_TIMER_CNT) { if (!_offsets.VmCounterOffset) _offsets.Voffset = PhysicalCounter() - value; }
            else if (id == KVM_REG_ARM_TIMER_CVAL) Virtual.Cval = value;
            else if (id == KVM_REG_ARM_PTIMER_CTL) Physical.Ctl = (uint)(value & ~ARCH_TIMER_CTRL_IT_STAT);
            else if (id == KVM_REG_ARM_PTIMER_CNT) { if (!_offsets.VmCounterOffset) _offsets.Poffset = PhysicalCounter() - value; }
            else Physical.Cval = value;
        }
    }

    // op0:op1:CRn:CRm:op2 of the EL0 timer registers (Arm ARM D23.8).
    internal const ushort CntfrqEl0 = 0xDF00, CntpctEl0 = 0xDF01, CntvctEl0 = 0xDF02;
    internal const ushort CntpTvalEl0 = 0xDF10, CntpCtlEl0 = 0xDF11, CntpCvalEl0 = 0xDF12;
    internal const ushort CntvTvalEl0 = 0xDF18, CntvCtlEl0 = 0xDF19, CntvCvalEl0 = 0xDF1A;

    /// <summary>Whether <paramref name="encoding"/> is one of the timer registers handled here.</summary>
    public static bool IsTimerEncoding(ushort encoding) =>
        encoding is CntfrqEl0 or CntpctEl0 or CntvctEl0 or CntpTvalEl0 or CntpCtlEl0 or CntpCvalEl0 or CntvTvalEl0 or CntvCtlEl0 or CntvCvalEl0;

    /// <summary>
    /// CNTKCTL_EL1's EL0 access controls: EL0PCTEN (bit 0) for CNTPCT_EL0, EL0VCTEN (bit 1) for CNTVCT_EL0, either for
    /// CNTFRQ_EL0, EL0VTEN (bit 8) for the CNTV_* registers, EL0PTEN (bit 9) for the CNTP_* ones.
    /// </summary>
    public static bool El0Allowed(ushort encoding, ulong cntkctl) => encoding switch
    {
        CntfrqEl0 => (cntkctl & 3) != 0,
        CntpctEl0 => (cntkctl & 1) != 0,
        CntvctEl0 => (cntkctl & 2) != 0,
        CntvTvalEl0 or CntvCtlEl0 or CntvCvalEl0 => (cntkctl & (1UL << 8)) != 0,
        _ => (cntkctl & (1UL << 9)) != 0,
    };

    /// <summary>MRS of a timer register (kvm_arm_timer_read / the hardware's view): TVAL is (CVAL - counter)[31:0].</summary>
    public ulong GuestRead(ushort encoding) => encoding switch
    {
        CntfrqEl0 => Arm64HostCpu.CounterFrequency,
        CntpctEl0 => Counter(Physical),
        CntvctEl0 => Counter(Virtual),
        CntpTvalEl0 => (Physical.Cval - Counter(Physical)) & 0xffff_ffff,
        CntpCtlEl0 => ReadCtl(Physical),
        CntpCvalEl0 => Physical.Cval,
        CntvTvalEl0 => (Virtual.Cval - Counter(Virtual)) & 0xffff_ffff,
        CntvCtlEl0 => ReadCtl(Virtual),
        _ => Virtual.Cval,
    };

    /// <summary>
    /// MSR of a timer register (kvm_arm_timer_write): TVAL sets CVAL = counter + (s32)value; CTL drops ISTATUS;
    /// CNTFRQ_EL0 (writable only at the highest EL) and the counters are read-only: UNDEFINED.
    /// </summary>
    public TimerWrite GuestWrite(ushort encoding, ulong value)
    {
        switch (encoding)
        {
            case CntfrqEl0 or CntpctEl0 or CntvctEl0:
                return TimerWrite.Undefined;
            case CntpTvalEl0: Physical.Cval = Counter(Physical) + (ulong)(long)(int)(uint)value; break;
            case CntpCtlEl0: Physical.Ctl = (uint)(value & ~ARCH_TIMER_CTRL_IT_STAT); break;
            case CntpCvalEl0: Physical.Cval = value; break;
            case CntvTvalEl0: Virtual.Cval = Counter(Virtual) + (ulong)(long)(int)(uint)value; break;
            case CntvCtlEl0: Virtual.Ctl = (uint)(value & ~ARCH_TIMER_CTRL_IT_STAT); break;
            case CntvCvalEl0: Virtual.Cval = value; break;
            default: return TimerWrite.NotATimerRegister;
        }
        return TimerWrite.Done;
    }
}
