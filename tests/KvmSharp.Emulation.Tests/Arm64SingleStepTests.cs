// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Host single-step of an arm64 vCPU on the emulated kernel (Arm64SingleStep.cs): KVM_SET_GUEST_DEBUG's arm64 rules
/// (guest.c kvm_arch_vcpu_ioctl_set_guest_debug), one KVM_EXIT_DEBUG per instruction with the software step ESR
/// (handle_exit.c kvm_handle_guest_debug: EC 0x32, IL, IFSC 0x22, ISV and EX when an instruction was stepped), the
/// step right at entry after an instruction KVM completed (an MMIO access, an HVC) and at the vector after an exception
/// to EL1 (debug.c kvm_arm_setup_debug / DBG_SS_ACTIVE_PENDING, Arm ARM D2.12). No arm64 host here: the oracle is the
/// kernel source and the Arm ARM, cited per assertion.
/// </summary>
public sealed class Arm64SingleStepTests
{
    /// <summary>An address outside the test VM's one slot: a store there is a KVM_EXIT_MMIO.</summary>
    private const ulong MmioAddress = 0x2_0000;

    /// <summary>The sync-from-EL1h vector with VBAR_EL1 = 0 (its reset value): VBAR_EL1 + 0x200.</summary>
    private const ulong SyncVector = 0x200;

    private static readonly uint SetGuestDebug = IoctlEncoding._IOW(KvmIoctls.KVMIO, 0x9b, 520);

    /// <summary>The software step ESR: EC 0x32 &lt;&lt; 26, IL, IFSC 0x22 (Arm ARM, ESR_EL2 "ISS encoding for an exception from a Software Step exception").</summary>
    private const uint StepEsr = 0xCA00_0022;

    private const uint Isv = 1u << 24, Ex = 1u << 6;

    private static readonly uint[] Program =
    [
        0xD2900001, // 0x800 mov x1, #0x8000
        0xC85F7C26, // 0x804 ldxr x6, [x1]           a Load-Exclusive: EX
        0x91001463, // 0x808 add x3, x3, #5
        0xD2A00049, // 0x80c mov x9, #0x20000        (MmioAddress)
        0xF9000122, // 0x810 str x2, [x9]            KVM_EXIT_MMIO
        0xD2800547, // 0x814 mov x7, #42
        0x52B08000, // 0x818 mov w0, #0x84000000     PSCI_VERSION
        0xD4000002, // 0x81c hvc #0                  handled in the kernel
        0x00000000, // 0x820 udf #0                  UNDEFINED: taken to EL1 at VBAR_EL1 + 0x200
    ];

    private sealed class StepVm : Arm64TestVm
    {
        public StepVm()
            : base(a =>
            {
                foreach (uint w in Program) a.Emit(w);
            })
        {
            // The sync vector: mov x8, #1; str x8, [x9] (an MMIO exit that says the handler ran); b .
            Host.Write(SyncVector, new byte[] { 0x28, 0x00, 0x80, 0xD2, 0x28, 0x01, 0x00, 0xF9, 0x00, 0x00, 0x00, 0x14 });
            Vcpu = AddVcpu();
        }

        public KvmSharp.Vcpu Vcpu { get; }

        public long Debug(uint control)
        {
            var dbg = new byte[520];
            BitConverter.TryWriteBytes(dbg, control);
            return Kernel.Ioctl(Vcpu.Handle, SetGuestDebug, dbg);
        }

        public void Step(ulong pc, uint esr)
        {
            VcpuExit exit = Vcpu.RunBounded();
            Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, exit.Reason);
            Assert.Equal(esr, exit.DebugException); // debug.arch.hsr (the offset of x86's exception)
            Assert.Equal(pc, Vcpu.GetPc());
        }
    }

    private const uint Step = KvmConstants.KVM_GUESTDBG_ENABLE | KvmConstants.KVM_GUESTDBG_SINGLESTEP;

    [Fact]
    public void Each_instruction_ends_the_run_with_a_software_step_exit_at_the_next_pc()
    {
        using var t = new StepVm();
        Assert.Equal(0, t.Debug(Step));
        t.Step(0x804, StepEsr | Isv);
        t.Step(0x808, StepEsr | Isv | Ex); // ldxr: EX set
        t.Step(0x80c, StepEsr | Isv);
        Assert.Equal(5UL, t.Vcpu.GetX(3));
        t.Step(0x810, StepEsr | Isv);
        // The store is a data abort to userspace: the instruction has not completed, no step exit.
        VcpuExit mmio = t.Vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, mmio.Reason);
        Assert.Equal(MmioAddress, mmio.MmioAddress);
        Assert.Equal(0x810UL, t.Vcpu.GetPc());
        // kvm_handle_mmio_return → kvm_incr_pc clears PSTATE.SS: the next entry steps at once, nothing else runs
        // (x7 still 0) and no instruction was stepped on that entry (ISV = 0).
        t.Step(0x814, StepEsr);
        Assert.Equal(0UL, t.Vcpu.GetX(7));
        t.Step(0x818, StepEsr | Isv);
        Assert.Equal(42UL, t.Vcpu.GetX(7));
        t.Step(0x81c, StepEsr | Isv);
        // HVC: an exception-generating instruction, SPSR_EL2.SS = 0 → DBG_SS_ACTIVE_PENDING; the kernel answers the
        // PSCI call and the step exit comes after it, before the UDF.
        t.Step(0x820, StepEsr);
        Assert.NotEqual(0x8400_0000UL, t.Vcpu.GetX(0));
        // UDF: the exception to EL1 clears PSTATE.SS, the step exception comes at the vector before its first instruction.
        t.Step(SyncVector, StepEsr);
        Assert.Equal(0UL, t.Vcpu.GetX(8));
        Assert.Equal(0x820UL, t.Vcpu.GetOneReg(KvmSharp.Abi.Arm64.KvmArm64Regs.ElrEl1));
        t.Step(SyncVector + 4, StepEsr | Isv);
        Assert.Equal(1UL, t.Vcpu.GetX(8));
        // Control 0: stepping off; the handler's store is the next exit.
        Assert.Equal(0, t.Debug(0));
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, t.Vcpu.RunBounded().Reason);
        Assert.Equal(SyncVector + 4, t.Vcpu.GetPc());
    }

    [Fact]
    public void Set_guest_debug_checks_the_arm64_mask_and_a_refused_call_changes_nothing()
    {
        using var t = new StepVm();
        // KVM_GUESTDBG_VALID_MASK = ENABLE | SINGLESTEP | USE_SW_BP | USE_HW (0x30003): any other bit is EINVAL.
        foreach (uint bad in new[] { 0x4u, 0x8u, 0x4_0000u, 0x8000_0000u })
            Assert.Equal(-(long)Errno.EINVAL, t.Debug(Step | bad));
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, t.Vcpu.RunBounded().Reason); // still not stepping
        Assert.Equal(0x810UL, t.Vcpu.GetPc());
        Assert.Equal(0, t.Debug(Step));
        Assert.Equal(-(long)Errno.EINVAL, t.Debug(Step | 0x4));
        // Refused: stepping stays on. The MMIO completes and the step comes at once.
        t.Step(0x814, StepEsr);
    }

    [Fact]
    public void Singlestep_without_enable_is_accepted_and_does_nothing()
    {
        using var t = new StepVm();
        // "if (!(dbg->control & KVM_GUESTDBG_ENABLE)) … vcpu->guest_debug = 0".
        Assert.Equal(0, t.Debug(KvmConstants.KVM_GUESTDBG_SINGLESTEP));
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, t.Vcpu.RunBounded().Reason);
        Assert.Equal(0x810UL, t.Vcpu.GetPc());
    }

    [Fact]
    public void A_pc_advance_committed_outside_the_run_does_not_step_at_entry()
    {
        using var t = new StepVm();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, t.Vcpu.RunBounded().Reason);
        Assert.Equal(0, t.Debug(Step));
        // immediate_exit: kvm_handle_mmio_return advances PC, KVM_RUN returns EINTR and arm.c commits the skip on the way
        // out (__kvm_adjust_pc), outside kvm_arm_setup_debug's window: the next entry runs one instruction, then steps.
        t.Vcpu.ImmediateExit = true;
        Assert.True(t.Vcpu.RunBounded().Interrupted);
        t.Vcpu.ImmediateExit = false;
        Assert.Equal(0x814UL, t.Vcpu.GetPc());
        t.Step(0x818, StepEsr | Isv);
        Assert.Equal(42UL, t.Vcpu.GetX(7));
        t.Step(0x81c, StepEsr | Isv);
        // The HVC's DBG_SS_ACTIVE_PENDING is taken in the same KVM_RUN, after the kernel answered the call.
        t.Step(0x820, StepEsr);
        Assert.NotEqual(0x8400_0000UL, t.Vcpu.GetX(0));
    }

    [Fact]
    public void The_uapi_numbers_have_their_header_values()
    {
        // arch/arm64/include/asm/esr.h ESR_ELx_EC_SOFTSTP_LOW = 0x32; arch/arm64/include/uapi/asm/kvm.h
        // KVM_DEBUG_ARCH_HSR_HIGH_VALID = (1 << 0); KVM_SET_GUEST_DEBUG = _IOW(KVMIO, 0x9b, 520-byte arm64 struct).
        Assert.Equal(0x32u, Arm64SingleStep.EcSoftStepLow);
        Assert.Equal((ushort)1, Arm64SingleStep.KvmDebugArchHsrHighValid);
        Assert.Equal(0x4208AE9Bu, Arm64VcpuIoctls.SetGuestDebugRequest);
        Assert.Equal(0x30003u, Arm64VcpuIoctls.GuestDebugValidMask);
    }

    [Theory]
    [InlineData(0xC85F7C26u, true)]  // ldxr x6, [x1]
    [InlineData(0xC85FFC23u, true)]  // ldaxr x3, [x1]
    [InlineData(0x085F7C28u, true)]  // ldxrb w8, [x1]
    [InlineData(0x485F7C33u, true)]  // ldxrh w19, [x1]
    [InlineData(0xC87FB82Du, true)]  // ldaxp x13, x14, [x1]
    [InlineData(0xC8057C23u, false)] // stxr w5, x3, [x1]
    [InlineData(0xC8DFFC30u, false)] // ldar x16, [x1]
    [InlineData(0x48DFFC31u, false)] // ldarh w17, [x1]
    [InlineData(0x08607C40u, false)] // caspa w0, w1, w0, w1, [x2] (o1 = 1, bit 31 = 0)
    [InlineData(0xF9400035u, false)] // ldr x21, [x1]
    public void The_ex_bit_marks_load_exclusives_only(uint insn, bool exclusive) =>
        Assert.Equal(exclusive, Arm64SingleStep.IsLoadExclusive(insn));
}
