// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The saved/restored x86 vCPU state that no other register file holds: the legacy FPU image (guest_fpu's fxsave
/// area), the AVX upper halves, the XSAVE header's XSTATE_BV and PKRU (KVM_GET/SET_XSAVE), XCR0, the event state of
/// struct kvm_vcpu_arch (exception / interrupt / NMI queues, interrupt shadow), the MP state and the debug registers.
/// The interpreter reads and writes the SSE/AVX registers, MXCSR, XCR0 and DR0–DR7 (Emulate/X86Emulator.Sse, .Avx,
/// .Xcr, .DebugRegisters; execute breakpoints raise #DB); KVM_RUN delivers the queued exception / NMI / interrupt
/// through the guest's IDT (Emulate/X86Emulator.Events, kvm_check_and_inject_events), IRET unmasks NMIs and a
/// completed instruction ends the interrupt shadow. It runs no x87 instruction and raises no data breakpoint; the
/// guest's own STI / MOV SS open no shadow: those parts are stored and reported as the kernel stores and reports them.
/// </summary>
internal sealed class VcpuState
{
    /// <summary>arch/x86/include/asm/fpu/types.h MXCSR_DEFAULT, fpstate_init_user's reset value.</summary>
    public const uint MxcsrDefault = 0x1f80;

    /// <summary>fpstate_init_fx/fpstate_init_user: cwd = 0x37f (x87 default control word).</summary>
    public const ushort FcwDefault = 0x37f;

    /// <summary>arch/x86/include/asm/kvm_host.h DR6_ACTIVE_LOW: the reset value of DR6.</summary>
    public const ulong Dr6ActiveLow = 0xffff0ff0;

    /// <summary>DR7_FIXED_1: the reset value of DR7.</summary>
    public const ulong Dr7Fixed1 = 0x400;

    /// <summary>XFEATURE_MASK_FP: XCR0's reset value (kvm_vcpu_reset: vcpu->arch.xcr0 = XFEATURE_MASK_FP).</summary>
    public const ulong Xcr0Fp = 1;

    /// <summary>
    /// The fxsave image (the live registers while a KVM_RUN runs): KVM_SET_FPU writes all but mxcsr, KVM_SET_XSAVE the
    /// components it names, mxcsr included; KVM_GET_FPU does not return mxcsr.
    /// </summary>
    public kvm_fpu Fpu = new() { fcw = FcwDefault, mxcsr = MxcsrDefault };

    /// <summary>
    /// The upper halves of YMM0..YMM15 (XSAVE component 2, XFEATURE_YMM: 16 × 16 bytes, register n at n*16), the
    /// part of the AVX registers the fxsave image above does not hold. Zero at reset (fpstate_init_user).
    /// </summary>
    public readonly byte[] YmmHigh = new byte[256];

    /// <summary>
    /// The XSAVE components past AVX other than PKRU, at their standard-format offsets (<see cref="XsaveRules"/>):
    /// AVX-512's opmask, ZMM_Hi256 and Hi16_ZMM on a Genoa host. The interpreter never touches them. Zero at reset.
    /// </summary>
    public readonly byte[] ExtendedArea = new byte[XsaveRules.Size];

    /// <summary>vcpu->arch.xcr0.</summary>
    public ulong Xcr0 = Xcr0Fp;

    /// <summary>
    /// The guest fpstate's header.xfeatures (XSTATE_BV): which components the saved image holds; a clear bit means
    /// the component is in its init state whatever <see cref="Fpu"/> / <see cref="YmmHigh"/> hold. 0 at creation
    /// (fpstate_init_user). KVM_SET_XSAVE replaces it; KVM_SET_FPU leaves it alone; a KVM_RUN re-derives it from the
    /// registers (<see cref="XsaveRules.AfterRun"/>), so an interpreter write to the registers is reported.
    /// </summary>
    public ulong XstateBv;

    /// <summary>The fxsave area's mxcsr_mask field as KVM_SET_XSAVE stored it (0 at creation; not in kvm_fpu).</summary>
    public uint MxcsrMask;

    /// <summary>vcpu->arch.pkru: PKRU (XSAVE component 9), kept outside the fpstate; 0 at creation.</summary>
    public uint Pkru;

    /// <summary>
    /// The image kept aside while a KVM_RUN runs with components in their init state (<see cref="XsaveRules"/>):
    /// the registers are then the init values, the saved area keeps what was there.
    /// </summary>
    internal XsaveRules.SavedArea? InitAtEntry;

    /// <summary>vcpu->arch.exception (struct kvm_queued_exception).</summary>
    public bool ExceptionInjected, ExceptionPending, ExceptionHasErrorCode, ExceptionHasPayload;

    /// <summary>vcpu->arch.exception.vector.</summary>
    public byte ExceptionVector;

    /// <summary>vcpu->arch.exception.error_code.</summary>
    public uint ExceptionErrorCode;

    /// <summary>vcpu->arch.exception.payload.</summary>
    public ulong ExceptionPayload;

    /// <summary>vcpu->arch.interrupt (struct kvm_queued_interrupt).</summary>
    public bool InterruptInjected, InterruptSoft;

    /// <summary>vcpu->arch.interrupt.nr.</summary>
    public byte InterruptNr;

    /// <summary>The interrupt shadow (KVM_X86_SHADOW_INT_*), as this host keeps it: the byte KVM_SET_VCPU_EVENTS gave.</summary>
    public byte InterruptShadow;

    /// <summary>vcpu->arch.nmi_injected; nmi_pending and nmi_queued (process_nmi folds the latter into the former).</summary>
    public bool NmiInjected, NmiMasked;

    /// <summary>
    /// KVM_REQ_TRIPLE_FAULT made outside a run (x86.c kvm_vcpu_ioctl_x86_set_mce): the next KVM_RUN ends in
    /// KVM_EXIT_SHUTDOWN before entering the guest, and clears it (vcpu_enter_guest).
    /// </summary>
    public bool TripleFaultRequested;

    /// <summary>
    /// KVM_REQ_EVENT, as far as a KVM_RUN that fails after injecting needs it (X86Emulator.InjectThenCancel): set at
    /// creation and by the requests that make it (KvmVcpuFile); cleared when such a run requeued nothing, so the next
    /// failing run injects nothing either (kvm_check_and_inject_events runs only on KVM_REQ_EVENT).
    /// </summary>
    public bool EventRequested = true;

    /// <summary>
    /// vcpu->arch.tpr_access_reporting (KVM_TPR_ACCESS_REPORTING, X86/VapicIoctls.cs). The KVM_EXIT_TPR_ACCESS exits it
    /// asks for (lapic.c apic_report_tpr_access) are not modelled.
    /// </summary>
    public bool TprAccessReporting;

    /// <summary>vcpu->arch.nmi_pending.</summary>
    public uint NmiPending;

    /// <summary>vcpu->arch.nmi_queued.</summary>
    public uint NmiQueued;

    /// <summary>
    /// vcpu->arch.mp_state. kvm_arch_vcpu_create: RUNNABLE, or UNINITIALIZED for an AP with an in-kernel irqchip
    /// (CreateVcpu).
    /// </summary>
    public uint MpState = KvmMpState.KVM_MP_STATE_RUNNABLE;

    /// <summary>KVM_APIC_SIPI in apic->pending_events (KVM_SET_MP_STATE of SIPI_RECEIVED), and apic->sipi_vector.</summary>
    public bool SipiPending;

    public byte SipiVector;

    /// <summary>
    /// KVM_APIC_INIT in apic->pending_events: an INIT accepted (__apic_accept_irq) or latched by KVM_SET_VCPU_EVENTS'
    /// smi.latched_init, acted on by kvm_apic_accept_events (X86/Irqchip/ApicEvents.cs).
    /// </summary>
    public bool InitPending;

    /// <summary>Guards <see cref="InitPending"/>, <see cref="SipiPending"/> and <see cref="SipiVector"/> (set from other threads).</summary>
    public readonly Lock ApicEventsLock = new();

    /// <summary>vcpu->arch.pv.pv_unhalted: a remote-read (PV kick) message arrived; a halted vCPU wakes.</summary>
    public volatile bool PvUnhalted;

    /// <summary>lapic_in_kernel(vcpu): the vCPU has an in-kernel local APIC (set at creation).</summary>
    public bool HasLapic;

    /// <summary>vcpu->arch.db[0..3].</summary>
    public readonly ulong[] Db = new ulong[4];

    /// <summary>vcpu->arch.dr6 (kvm_vcpu_reset: DR6_ACTIVE_LOW).</summary>
    public ulong Dr6 = Dr6ActiveLow;

    /// <summary>vcpu->arch.dr7 (kvm_vcpu_reset: DR7_FIXED_1).</summary>
    public ulong Dr7 = Dr7Fixed1;

    /// <summary>
    /// x86.c process_nmi: move the queued NMIs into nmi_pending, keeping at most two pending while NMIs are not
    /// blocked (one when masked or an NMI injection is in flight). This host has no virtual-NMI pending state.
    /// </summary>
    public void ProcessNmi()
    {
        uint limit = NmiMasked || NmiInjected ? 1u : 2u;
        NmiPending = Math.Min(NmiPending + NmiQueued, limit);
        NmiQueued = 0;
    }
}
