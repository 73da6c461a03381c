// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Abi.KvmVcpuEvents;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl: KVM_GET/SET_FPU, KVM_GET/SET_XCRS, KVM_GET/SET_VCPU_EVENTS,
/// KVM_GET/SET_MP_STATE and KVM_GET/SET_DEBUGREGS over <see cref="VcpuState"/>. Every rule was probed on this host
/// (Linux 6.18 kvm_pvm); the one place it differs from upstream is the interrupt shadow (see
/// <see cref="SetEvents"/>). Bad input is an errno, never an exception.
/// </summary>
internal static class VcpuStateRules
{
    private const ulong XfeatureSse = 1UL << 1;
    private const ulong XfeatureYmm = 1UL << 2;
    private const ulong XfeatureBndregs = 1UL << 3;
    private const ulong XfeatureBndcsr = 1UL << 4;
    private const ulong XfeatureAvx512 = 0xe0;
    private const ulong XfeatureXtile = 0x60000;

    private const uint ValidEventFlags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
        KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD |
        KVM_VCPUEVENT_VALID_TRIPLE_FAULT;

    private const byte NmiVector = 2;

    /// <summary>
    /// kvm_arch_vcpu_ioctl_get_fpu into a kzalloc'd struct: fpr, fcw, fsw, ftwx, last_opcode, last_ip, last_dp and
    /// xmm from the fxsave area. mxcsr is not copied (reads 0, observed: a new vCPU and one given 0x1f81 both read
    /// 0), nor are the pads.
    /// </summary>
    public static long GetFpu(X86Cpu cpu, IoctlArg arg)
    {
        var fpu = cpu.State.Fpu;
        fpu.mxcsr = 0;
        fpu.pad1 = 0;
        fpu.pad2 = 0;
        return arg.CopyToUser(fpu) ? 0 : Err.EFAULT;
    }

    /// <summary>
    /// kvm_arch_vcpu_ioctl_set_fpu: copies fpr, fcw, fsw, ftwx, last_opcode, last_ip, last_dp and xmm into the
    /// fxsave area with no check — not mxcsr (observed through KVM_GET_XSAVE: MXCSR keeps its value whatever
    /// kvm_fpu.mxcsr says). twd (16 bits) = ftwx, so the byte after it (kvm_fpu.pad1's place, which KVM_GET_XSAVE
    /// shows) becomes 0. The XSAVE header is not touched: while XSTATE_BV lacks FP/SSE, KVM_GET_XSAVE and the guest
    /// see the init state instead (observed).
    /// </summary>
    public static long SetFpu(X86Cpu cpu, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_fpu fpu)) return Err.EFAULT;
        fpu.pad1 = 0;
        fpu.mxcsr = cpu.State.Fpu.mxcsr;
        fpu.pad2 = 0;
        cpu.State.Fpu = fpu;
        return 0;
    }

    /// <summary>kvm_vcpu_ioctl_x86_get_xcrs into a kzalloc'd struct: nr_xcrs = 1, xcrs[0] = { XCR0, 0, xcr0 }.</summary>
    public static long GetXcrs(X86Cpu cpu, IoctlArg arg)
    {
        var xcrs = new kvm_xcrs { nr_xcrs = 1 };
        xcrs.xcrs[0].value = cpu.State.Xcr0;
        return arg.CopyToUser(xcrs) ? 0 : Err.EFAULT;
    }

    /// <summary>
    /// kvm_vcpu_ioctl_x86_set_xcrs: nr_xcrs &gt; KVM_MAX_XCRS or flags != 0 → EINVAL; then only the first entry naming
    /// XCR0 counts (entries for other XCRs are skipped, later XCR0 entries ignored); __kvm_set_xcr refusing it →
    /// EINVAL. nr_xcrs = 0 or no XCR0 entry succeeds without change. reserved and padding are not checked.
    /// </summary>
    public static long SetXcrs(X86Cpu cpu, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_xcrs xcrs)) return Err.EFAULT;
        if (xcrs.nr_xcrs > kvm_xcrs.KVM_MAX_XCRS || xcrs.flags != 0) return Err.EINVAL;
        for (int i = 0; i < (int)xcrs.nr_xcrs; i++)
        {
            if (xcrs.xcrs[i].xcr != 0) continue;
            return SetXcr0(cpu, xcrs.xcrs[i].value) ? 0 : Err.EINVAL;
        }
        return 0;
    }

    /// <summary>
    /// __kvm_set_xcr(XCR_XFEATURE_ENABLED_MASK): FP must be set; YMM needs SSE; no bit outside
    /// guest_supported_xcr0 | FP (guest_supported_xcr0: the vCPU's CPUID.0xD.0 EDX:EAX &amp; supported_xcr0, so 0
    /// without KVM_SET_CPUID2 — observed: only XCR0 = 1 is accepted then); BNDREGS and BNDCSR together; AVX512 needs
    /// YMM and all three of its bits; XTILE both bits or none.
    /// </summary>
    public static bool SetXcr0(X86Cpu cpu, ulong xcr0)
    {
        if ((xcr0 & VcpuState.Xcr0Fp) == 0) return false;
        if ((xcr0 & XfeatureYmm) != 0 && (xcr0 & XfeatureSse) == 0) return false;
        if ((xcr0 & ~(GuestSupportedXcr0(cpu) | VcpuState.Xcr0Fp)) != 0) return false;
        if (((xcr0 & XfeatureBndregs) == 0) != ((xcr0 & XfeatureBndcsr) == 0)) return false;
        if ((xcr0 & XfeatureAvx512) != 0 && ((xcr0 & XfeatureYmm) == 0 || (xcr0 & XfeatureAvx512) != XfeatureAvx512))
            return false;
        if ((xcr0 & XfeatureXtile) != 0 && (xcr0 & XfeatureXtile) != XfeatureXtile) return false;
        cpu.State.Xcr0 = xcr0;
        return true;
    }

    /// <summary>cpuid.c cpuid_get_supported_xcr0: (CPUID.0xD.0 EDX:EAX of the vCPU's table) &amp; kvm_caps.supported_xcr0
    /// (<see cref="X86CpuModel.SupportedXcr0"/>).</summary>
    internal static ulong GuestSupportedXcr0(X86Cpu cpu)
    {
        foreach (ref readonly var e in cpu.Cpuid.Entries)
        {
            if (e.function != 0xd) continue;
            if ((e.flags & KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0 && e.index != 0) continue;
            return (e.eax | ((ulong)e.edx << 32)) & cpu.Model.SupportedXcr0;
        }
        return 0;
    }

    /// <summary>
    /// kvm_vcpu_ioctl_x86_get_vcpu_events: process_nmi; without KVM_CAP_EXCEPTION_PAYLOAD a pending exception's
    /// payload is delivered first (kvm_deliver_exception_payload: CR2 / DR6); then a zeroed struct with the exception
    /// (soft exceptions #BP and #OF are not reported as injected/pending; without the cap pending is folded into
    /// injected), the interrupt (a soft one reads as not injected), the shadow, the NMI state; sipi_vector and smi
    /// read 0 (no SMM, no in-kernel LAPIC); flags = NMI_PENDING | SHADOW | SMM, and PAYLOAD with the cap. With
    /// KVM_CAP_X86_TRIPLE_FAULT_EVENT: "events->triple_fault.pending = kvm_test_request(KVM_REQ_TRIPLE_FAULT, vcpu);
    /// events->flags |= KVM_VCPUEVENT_VALID_TRIPLE_FAULT;" (observed: pending 1 after KVM_X86_SET_MCE made the request).
    /// </summary>
    public static long GetEvents(X86Cpu cpu, IoctlArg arg, bool payloadEnabled, bool tripleFaultEvent)
    {
        var s = cpu.State;
        s.ProcessNmi();
        if (!payloadEnabled && s.ExceptionPending && s.ExceptionHasPayload) Emulate.X86Emulator.DeliverExceptionPayload(cpu);
        var ev = default(kvm_vcpu_events);
        bool soft = s.ExceptionVector is 3 or 4; // kvm_exception_is_soft: BP_VECTOR, OF_VECTOR
        if (!soft)
        {
            ev.exception_injected = B(s.ExceptionInjected || (s.ExceptionPending && !payloadEnabled));
            ev.exception_pending = B(s.ExceptionPending);
        }
        ev.exception_nr = s.ExceptionVector;
        ev.exception_has_error_code = B(s.ExceptionHasErrorCode);
        ev.exception_error_code = s.ExceptionErrorCode;
        ev.exception_has_payload = B(s.ExceptionHasPayload);
        ev.exception_payload = s.ExceptionPayload;
        ev.interrupt_injected = B(s.InterruptInjected && !s.InterruptSoft);
        ev.interrupt_nr = s.InterruptNr;
        ev.interrupt_shadow = s.InterruptShadow;
        ev.nmi_injected = B(s.NmiInjected);
        ev.nmi_pending = (byte)s.NmiPending;
        ev.nmi_masked = B(s.NmiMasked);
        ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
        // "events->smi.latched_init = kvm_lapic_latched_init(vcpu)": an in-kernel APIC with KVM_APIC_INIT pending (an
        // INIT message not yet taken by kvm_apic_accept_events, or one latched by KVM_SET_VCPU_EVENTS).
        if (s.HasLapic)
            lock (s.ApicEventsLock) ev.smi_latched_init = B(s.InitPending);
        if (payloadEnabled) ev.flags |= KVM_VCPUEVENT_VALID_PAYLOAD;
        if (tripleFaultEvent)
        {
            ev.triple_fault_pending = B(s.TripleFaultRequested);
            ev.flags |= KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
        }
        return arg.CopyToUser(ev) ? 0 : Err.EFAULT;
    }

    /// <summary>
    /// kvm_vcpu_ioctl_x86_set_vcpu_events, in the kernel's order (observed: a refused SMM or TRIPLE_FAULT part leaves
    /// the exception/interrupt/NMI parts already applied):
    /// <list type="bullet">
    /// <item>flags outside the six KVM_VCPUEVENT_VALID_* → EINVAL.</item>
    /// <item>VALID_PAYLOAD without KVM_CAP_EXCEPTION_PAYLOAD enabled → EINVAL; with it, a pending exception is not also
    /// injected, and a non-pending one drops has_payload; without the flag, exception.pending and
    /// exception_has_payload are cleared (exception_payload itself is stored and read back).</item>
    /// <item>an injected or pending exception with nr &gt; 31 or nr == NMI_VECTOR → EINVAL.</item>
    /// <item>process_nmi; store the exception, interrupt, nmi.injected; VALID_SHADOW: the shadow; VALID_NMI_PENDING:
    /// nmi_pending = 0, nmi_queued = nmi.pending; the NMI mask.</item>
    /// <item>VALID_SIPI_VECTOR: ignored without an in-kernel LAPIC.</item>
    /// <item>VALID_SMM without CONFIG_KVM_SMM (KVM_CAP_X86_SMM is 0 here): smm, pending or smm_inside_nmi → EINVAL;
    /// latched_init is ignored without an in-kernel LAPIC.</item>
    /// <item>VALID_TRIPLE_FAULT without KVM_CAP_X86_TRIPLE_FAULT_EVENT enabled → EINVAL; with it, a non-zero
    /// triple_fault.pending makes KVM_REQ_TRIPLE_FAULT (the next KVM_RUN ends in KVM_EXIT_SHUTDOWN) and 0 clears it
    /// (observed: it cancels the request KVM_X86_SET_MCE made; without the flag the field is ignored).</item>
    /// </list>
    /// The shadow is kept as given: this host reads back 0xff after writing 0xff (upstream VMX keeps only STI|MOV_SS,
    /// SVM reads 3 for any non-zero value), see HostDeviations.KvmPvmInterruptShadowStoredVerbatim.
    /// </summary>
    public static long SetEvents(X86Cpu cpu, IoctlArg arg, bool payloadEnabled, bool tripleFaultEvent)
    {
        if (!arg.CopyFromUser(out kvm_vcpu_events ev)) return Err.EFAULT;
        if ((ev.flags & ~ValidEventFlags) != 0) return Err.EINVAL;
        if ((ev.flags & KVM_VCPUEVENT_VALID_PAYLOAD) != 0)
        {
            if (!payloadEnabled) return Err.EINVAL;
            if (ev.exception_pending != 0) ev.exception_injected = 0;
            else ev.exception_has_payload = 0;
        }
        else
        {
            ev.exception_pending = 0;
            ev.exception_has_payload = 0;
        }
        if ((ev.exception_injected != 0 || ev.exception_pending != 0) &&
            (ev.exception_nr > 31 || ev.exception_nr == NmiVector))
            return Err.EINVAL;

        var s = cpu.State;
        s.ProcessNmi();
        s.ExceptionInjected = ev.exception_injected != 0;
        s.ExceptionPending = ev.exception_pending != 0;
        s.ExceptionVector = ev.exception_nr;
        s.ExceptionHasErrorCode = ev.exception_has_error_code != 0;
        s.ExceptionErrorCode = ev.exception_error_code;
        s.ExceptionHasPayload = ev.exception_has_payload != 0;
        s.ExceptionPayload = ev.exception_payload;
        s.InterruptInjected = ev.interrupt_injected != 0;
        s.InterruptNr = ev.interrupt_nr;
        s.InterruptSoft = ev.interrupt_soft != 0;
        if ((ev.flags & KVM_VCPUEVENT_VALID_SHADOW) != 0) s.InterruptShadow = ev.interrupt_shadow;
        s.NmiInjected = ev.nmi_injected != 0;
        if ((ev.flags & KVM_VCPUEVENT_VALID_NMI_PENDING) != 0)
        {
            s.NmiPending = 0;
            s.NmiQueued = ev.nmi_pending;
        }
        s.NmiMasked = ev.nmi_masked != 0;
        // "if (events->flags & KVM_VCPUEVENT_VALID_SIPI_VECTOR && lapic_in_kernel(vcpu)) vcpu->arch.apic->sipi_vector = …".
        if ((ev.flags & KVM_VCPUEVENT_VALID_SIPI_VECTOR) != 0 && s.HasLapic)
            lock (s.ApicEventsLock) s.SipiVector = (byte)ev.sipi_vector;
        if ((ev.flags & KVM_VCPUEVENT_VALID_SMM) != 0)
        {
            if (ev.smi_smm != 0 || ev.smi_pending != 0 || ev.smi_smm_inside_nmi != 0) return Err.EINVAL;
            // "if (lapic_in_kernel(vcpu)) { if (events->smi.latched_init) set_bit(KVM_APIC_INIT, …pending_events); else
            // clear_bit(…); }" — outside the CONFIG_KVM_SMM block, so also on this host (probed: latched_init 1 reads
            // back 1; found by the differential fuzzer as byte 27 of the struct).
            if (s.HasLapic)
                lock (s.ApicEventsLock) s.InitPending = ev.smi_latched_init != 0;
        }
        if ((ev.flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT) != 0)
        {
            // "if (!vcpu->kvm->arch.triple_fault_event) return -EINVAL;" — after the parts above were applied.
            if (!tripleFaultEvent) return Err.EINVAL;
            // "if (events->triple_fault.pending) kvm_make_request(KVM_REQ_TRIPLE_FAULT, vcpu); else kvm_clear_request(…)"
            s.TripleFaultRequested = ev.triple_fault_pending != 0;
        }
        return 0;
    }

    /// <summary>
    /// kvm_arch_vcpu_ioctl_get_mpstate: with an in-kernel APIC kvm_apic_accept_events first — a pending SIPI on an
    /// INIT_RECEIVED vCPU is delivered (kvm_vcpu_deliver_sipi_vector: CS.selector = vector &lt;&lt; 8, CS.base = vector
    /// &lt;&lt; 12, RIP = 0) and the vCPU becomes RUNNABLE (probed on this host: SET SIPI_RECEIVED reads back RUNNABLE with
    /// CS 0/0, RIP 0); then vcpu->arch.mp_state (pv_unhalted is never set here).
    /// </summary>
    public static long GetMpState(Vcpu.KvmVcpu vcpu, IoctlArg arg)
    {
        var s = vcpu.Cpu.State;
        // kvm_apic_accept_events (X86/Irqchip/ApicEvents.cs): a pending INIT resets the vCPU too (probed: an INIT MSI to
        // the BSP, then KVM_GET_MP_STATE → RUNNABLE and latched_init reads 0 afterwards).
        Irqchip.ApicEvents.Accept(vcpu);
        // "if ((mp_state == KVM_MP_STATE_HALTED || mp_state == KVM_MP_STATE_AP_RESET_HOLD) && vcpu->arch.pv.pv_unhalted)
        // mp_state->mp_state = KVM_MP_STATE_RUNNABLE" — only what is reported (found by the differential fuzzer: a
        // remote-read message to an AP_RESET_HOLD vCPU).
        uint reported = s.MpState is KvmMpState.KVM_MP_STATE_HALTED or KvmMpState.KVM_MP_STATE_AP_RESET_HOLD && s.PvUnhalted
            ? KvmMpState.KVM_MP_STATE_RUNNABLE : s.MpState;
        return arg.CopyToUser(new kvm_mp_state { mp_state = reported }) ? 0 : Err.EFAULT;
    }

    /// <summary>
    /// kvm_arch_vcpu_ioctl_set_mpstate: UNINITIALIZED, HALTED, AP_RESET_HOLD, INIT_RECEIVED and SIPI_RECEIVED need an
    /// in-kernel local APIC (EINVAL otherwise), RUNNABLE is always taken, anything else is EINVAL; SIPI_RECEIVED is
    /// stored as INIT_RECEIVED with a pending SIPI (probed on this host, full and split irqchip, BSP and AP: 0–4 and 9
    /// accepted, 5–8, 10, 11 EINVAL; without an APIC only 0). The refusal of INIT/SIPI states while INIT is blocked or
    /// an SMI is pending (kvm_apic_init_sipi_allowed, smi_pending) cannot arise here: no SMM, no GIF.
    /// </summary>
    public static long SetMpState(Vcpu.KvmVcpu vcpu, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_mp_state mp)) return Err.EFAULT;
        var s = vcpu.Cpu.State;
        switch (mp.mp_state)
        {
            case KvmMpState.KVM_MP_STATE_UNINITIALIZED or KvmMpState.KVM_MP_STATE_HALTED or KvmMpState.KVM_MP_STATE_AP_RESET_HOLD
                or KvmMpState.KVM_MP_STATE_INIT_RECEIVED or KvmMpState.KVM_MP_STATE_SIPI_RECEIVED:
                if (vcpu.Lapic is null) return Err.EINVAL;
                break;
            case KvmMpState.KVM_MP_STATE_RUNNABLE:
                break;
            default:
                return Err.EINVAL;
        }
        if (mp.mp_state == KvmMpState.KVM_MP_STATE_SIPI_RECEIVED)
        {
            s.MpState = KvmMpState.KVM_MP_STATE_INIT_RECEIVED;
            lock (s.ApicEventsLock) s.SipiPending = true;
        }
        else
        {
            // kvm_set_mp_state: "if (mp_state == KVM_MP_STATE_RUNNABLE) vcpu->arch.pv.pv_unhalted = false".
            s.MpState = mp.mp_state;
            if (mp.mp_state == KvmMpState.KVM_MP_STATE_RUNNABLE) s.PvUnhalted = false;
        }
        return 0;
    }

    /// <summary>
    /// kvm_vcpu_ioctl_x86_get_debugregs: a zeroed struct with db[0..3], dr6 and dr7 as stored (a new vCPU: 0, 0, 0, 0,
    /// 0xffff0ff0, 0x400).
    /// </summary>
    public static long GetDebugRegs(X86Cpu cpu, IoctlArg arg)
    {
        var s = cpu.State;
        var d = default(kvm_debugregs);
        for (int i = 0; i < 4; i++) d.db[i] = s.Db[i];
        d.dr6 = s.Dr6;
        d.dr7 = s.Dr7;
        return arg.CopyToUser(d) ? 0 : Err.EFAULT;
    }

    /// <summary>
    /// kvm_vcpu_ioctl_x86_set_debugregs: flags != 0 → EINVAL; kvm_dr6_valid / kvm_dr7_valid (bits 63:32 clear) →
    /// else EINVAL; then db, dr6 and dr7 are stored as given (observed: dr6 = 0 reads back 0; db need not be
    /// canonical; reserved is not checked).
    /// </summary>
    public static long SetDebugRegs(X86Cpu cpu, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_debugregs d)) return Err.EFAULT;
        if (d.flags != 0) return Err.EINVAL;
        if ((d.dr6 >> 32) != 0 || (d.dr7 >> 32) != 0) return Err.EINVAL;
        var s = cpu.State;
        for (int i = 0; i < 4; i++) s.Db[i] = d.db[i];
        s.Dr6 = d.dr6;
        s.Dr7 = d.dr7;
        return 0;
    }

    /// <summary>
    /// x86.c __get_sregs: an injected hard interrupt (vcpu->arch.interrupt.injected &amp;&amp; !soft) is reported as its bit in
    /// kvm_sregs.interrupt_bitmap. Found by the differential fuzzer (KVM_SET_VCPU_EVENTS with interrupt.injected, then
    /// KVM_GET_SREGS: this host reported the bit, the emulator an empty bitmap).
    /// </summary>
    public static kvm_sregs WithInjectedInterrupt(X86Cpu cpu, kvm_sregs sregs)
    {
        var s = cpu.State;
        sregs.interrupt_bitmap = default;
        if (s.InterruptInjected && !s.InterruptSoft) sregs.interrupt_bitmap[s.InterruptNr / 64] |= 1UL << (s.InterruptNr % 64);
        return sregs;
    }

    /// <summary>
    /// x86.c __set_sregs: the first bit set in interrupt_bitmap is queued as an injected hard interrupt
    /// (kvm_queue_interrupt(vcpu, pending_vec, false)); an empty bitmap leaves the interrupt state alone.
    /// </summary>
    public static void QueueInterruptFromBitmap(X86Cpu cpu, in kvm_sregs sregs)
    {
        for (int vector = 0; vector < 256; vector++)
        {
            if ((sregs.interrupt_bitmap[vector / 64] & (1UL << (vector % 64))) == 0) continue;
            cpu.State.InterruptInjected = true;
            cpu.State.InterruptNr = (byte)vector;
            cpu.State.InterruptSoft = false;
            return;
        }
    }

    private static byte B(bool value) => value ? (byte)1 : (byte)0;
}
