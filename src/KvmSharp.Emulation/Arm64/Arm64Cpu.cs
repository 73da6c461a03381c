// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The architectural state of one emulated arm64 vCPU: the <c>struct kvm_regs</c> part KVM_GET/SET_ONE_REG
/// exposes (x0..x30, SP_EL0, PC, PSTATE, SP_EL1, ELR_EL1, the SPSRs, the FP/SIMD file) plus the EL1/EL0 system
/// registers of <see cref="Arm64SysRegs"/> and, for an SVE vCPU, the rest of the SVE registers (<see cref="Sve"/>).
/// </summary>
internal sealed class Arm64Cpu
{
    /// <summary>arch/arm64/kvm/sys_regs.c reset_unknown: the value KVM writes into UNKNOWN-at-reset registers.</summary>
    public const ulong ResetUnknown = 0x1de7ec7edbadc0de;

    /// <summary>arch/arm64/kvm/reset.c VCPU_RESET_PSTATE_EL1: EL1h with D, A, I, F masked.</summary>
    public const ulong ResetPstateEl1 = KvmArm64Constants.PSR_MODE_EL1h | KvmArm64Constants.PSR_A_BIT |
        KvmArm64Constants.PSR_I_BIT | KvmArm64Constants.PSR_F_BIT | KvmArm64Constants.PSR_D_BIT;

    public ulong[] X { get; } = new ulong[31];

    public ulong SpEl0 { get; set; }

    public ulong SpEl1 { get; set; }

    public ulong Pc { get; set; }

    public ulong Pstate { get; set; }

    public ulong ElrEl1 { get; set; }

    /// <summary>spsr[KVM_NR_SPSR]: EL1, then the AArch32 abt, und, irq, fiq banks.</summary>
    public ulong[] Spsr { get; } = new ulong[5];

    public UInt128[] Vregs { get; } = new UInt128[32];

    public uint Fpsr { get; set; }

    public uint Fpcr { get; set; }

    /// <summary>The vCPU's id (MPIDR_EL1's reset value is built from it).</summary>
    public int VcpuId { get; init; }

    /// <summary>The VM's ID registers (shared by every vCPU of the VM; guest MRS reads them).</summary>
    public Arm64IdRegState IdRegs { get; init; } = new();

    /// <summary>The vCPU's generic timer.</summary>
    public Arm64Timer Timer { get; init; } = new(new Arm64TimerOffsets());

    /// <summary>The vGIC CPU interface the guest's ICC_* accesses reach (null: none; it is inactive until the vGIC is ready).</summary>
    public Vgic.VgicCpuInterface? CpuInterface { get; set; }

    /// <summary>kvm_vcpu_has_pmu: the vCPU was initialised with KVM_ARM_VCPU_PMU_V3.</summary>
    public bool HasPmu { get; set; }

    /// <summary>vcpu_has_ptrauth: the vCPU was initialised with KVM_ARM_VCPU_PTRAUTH_ADDRESS and _GENERIC.</summary>
    public bool HasPtrAuth { get; set; }

    /// <summary>
    /// vcpu_has_sve: the SVE state of a vCPU initialised with KVM_ARM_VCPU_SVE (null without). Its Z registers' low
    /// 128 bits are <see cref="Vregs"/> (one storage, Arm64Sve).
    /// </summary>
    public Arm64SveState? Sve { get; set; }

    /// <summary>The VM's PMU configuration (PMCR_EL0.N), shared by its vCPUs.</summary>
    public Arm64PmuVm PmuVm { get; init; } = new();

    /// <summary>vcpu->arch.ccsidr: the CCSIDR values userspace set through the demux ids (null: fabricated).</summary>
    public uint[]? Ccsidr { get; set; }

    /// <summary>The modelled system registers, indexed as <see cref="Arm64SysRegs.Table"/> (ID register slots unused).</summary>
    public ulong[] SysRegs { get; } = new ulong[Arm64SysRegs.Count];

    private static readonly int VbarIndex = Arm64SysRegs.Index("VBAR_EL1"), EsrIndex = Arm64SysRegs.Index("ESR_EL1"),
        FarIndex = Arm64SysRegs.Index("FAR_EL1"), SctlrIndex = Arm64SysRegs.Index("SCTLR_EL1"),
        CntkctlIndex = Arm64SysRegs.Index("CNTKCTL_EL1");

    public ulong VbarEl1 { get => SysRegs[VbarIndex]; set => SysRegs[VbarIndex] = value; }

    public ulong EsrEl1 { get => SysRegs[EsrIndex]; set => SysRegs[EsrIndex] = value; }

    public ulong FarEl1 { get => SysRegs[FarIndex]; set => SysRegs[FarIndex] = value; }

    public ulong SctlrEl1 => SysRegs[SctlrIndex];

    public ulong CntkctlEl1 => SysRegs[CntkctlIndex];

    /// <summary>PSTATE.M[3:0]: 0 EL0t, 4 EL1t, 5 EL1h.</summary>
    public ulong Mode => Pstate & 0xf;

    /// <summary>
    /// KVM stepping over a trapped instruction (arch/arm64/kvm/hyp/include/hyp/adjust_pc.h kvm_skip_instr, AArch64):
    /// "*vcpu_pc(vcpu) += 4; *vcpu_cpsr(vcpu) &amp;= ~PSR_BTYPE_MASK" — the next instruction is not a branch target. Its
    /// single-step part is Arm64SingleStep.SkippedByKvm.
    /// </summary>
    public void SkipInstruction()
    {
        Pc += 4;
        Pstate &= ~(3UL << 10);
    }

    public bool AtEl0 => (Mode >> 2) == 0;

    /// <summary>The stack pointer the current mode selects: SP_EL0 in EL0t/EL1t, SP_EL1 in EL1h.</summary>
    public ulong Sp
    {
        get => (Mode & 1) != 0 ? SpEl1 : SpEl0;
        set
        {
            if ((Mode & 1) != 0) SpEl1 = value;
            else SpEl0 = value;
        }
    }

    /// <summary>
    /// arch/arm64/kvm/reset.c kvm_reset_vcpu: core and FP registers zeroed, PSTATE = VCPU_RESET_PSTATE_EL1, the
    /// AArch32 SPSRs zeroed; kvm_reset_sys_regs: SP_EL1, ELR_EL1, SPSR_EL1 are reset_unknown, the system registers
    /// of <see cref="Arm64SysRegs"/> get their sys_reg_descs[] reset (the VM-wide ID registers are not reset);
    /// kvm_timer_vcpu_reset clears both timers' CTL.
    /// </summary>
    public void Reset()
    {
        Array.Clear(X);
        SpEl0 = 0;
        Pc = 0;
        Pstate = ResetPstateEl1;
        Array.Clear(Vregs);
        // kvm_vcpu_reset_sve: "memset(vcpu->arch.sve_state, 0, vcpu_sve_state_size(vcpu))" once finalized.
        Sve?.Clear();
        Fpsr = 0;
        Fpcr = 0;
        Array.Clear(Spsr);
        SpEl1 = ResetUnknown;
        ElrEl1 = ResetUnknown;
        Spsr[0] = ResetUnknown;
        Arm64SysRegs.Reset(this);
        Timer.Reset();
    }

    /// <summary>Register n as a source operand where 31 encodes XZR.</summary>
    public ulong Reg(int n) => n == 31 ? 0 : X[n];

    /// <summary>Register n as a source operand where 31 encodes SP.</summary>
    public ulong RegOrSp(int n) => n == 31 ? Sp : X[n];

    /// <summary>Writes register n where 31 encodes XZR (the write is discarded).</summary>
    public void SetReg(int n, ulong value)
    {
        if (n != 31) X[n] = value;
    }

    public void SetRegOrSp(int n, ulong value)
    {
        if (n == 31) Sp = value;
        else X[n] = value;
    }
}
