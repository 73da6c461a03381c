// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// lapic.c kvm_apic_accept_events and x86.c's blocking of a vCPU that is not runnable (vcpu_block, kvm_vcpu_block,
/// kvm_arch_vcpu_runnable / kvm_vcpu_has_events) for a vCPU with an in-kernel local APIC. Probed on this host
/// (Conformance/Cases/ApicWaiting.cs): a HLT with an in-kernel APIC waits in KVM_RUN until an event (an NMI, an
/// interrupt the guest can take) or a signal (-EINTR, KVM_EXIT_INTR, mp_state still HALTED); an UNINITIALIZED AP's
/// KVM_RUN waits the same way and then answers -EAGAIN (or -EINTR with a signal).
/// </summary>
internal static class ApicEvents
{
    /// <summary>
    /// kvm_apic_accept_events: INIT resets the vCPU (kvm_vcpu_reset(vcpu, true)) and makes it RUNNABLE if it is the
    /// BSP, else INIT_RECEIVED; a SIPI then starts an INIT_RECEIVED vCPU (kvm_vcpu_deliver_sipi_vector: CS.selector =
    /// vector &lt;&lt; 8, CS.base = vector &lt;&lt; 12, RIP = 0) and makes it RUNNABLE; a SIPI in any other state is dropped.
    /// kvm_apic_init_sipi_allowed is always true here (no SMM, no nested GIF).
    /// </summary>
    public static void Accept(KvmVcpu vcpu)
    {
        if (vcpu.Lapic is null) return;
        var s = vcpu.Cpu.State;
        bool init, sipi;
        byte vector;
        lock (s.ApicEventsLock)
        {
            init = s.InitPending;
            sipi = s.SipiPending;
            vector = s.SipiVector;
            s.InitPending = false;
            s.SipiPending = false;
        }
        if (init)
        {
            InitReset(vcpu);
            // kvm_vcpu_is_bsp: MSR_IA32_APICBASE_BSP.
            s.MpState = (vcpu.Cpu.Sregs.apic_base & (1UL << 8)) != 0 ? KvmMpState.KVM_MP_STATE_RUNNABLE : KvmMpState.KVM_MP_STATE_INIT_RECEIVED;
        }
        if (sipi && s.MpState == KvmMpState.KVM_MP_STATE_INIT_RECEIVED)
        {
            // svm_vcpu_deliver_sipi_vector: an SEV-ES/SNP VM takes sev_vcpu_deliver_sipi_vector instead (X86Emulator.GhcbApResetHold.cs).
            if (vcpu.Emulator.SevDeliverSipiVector())
            {
                s.MpState = KvmMpState.KVM_MP_STATE_RUNNABLE;
                return;
            }
            var sregs = vcpu.Cpu.Sregs;
            sregs.cs.selector = (ushort)(vector << 8);
            sregs.cs.@base = (ulong)vector << 12;
            vcpu.Cpu.Sregs = sregs;
            vcpu.Cpu.Rip = 0;
            s.MpState = KvmMpState.KVM_MP_STATE_RUNNABLE;
        }
    }

    /// <summary>
    /// x86.c kvm_vcpu_reset(vcpu, init_event = true), as far as the emulator keeps the state: the power-on registers
    /// (<see cref="VcpuReset"/>) with the APIC base kept and CR0's CD/NW kept ("new_cr0 = X86_CR0_ET | (old_cr0 &amp;
    /// (X86_CR0_NW | X86_CR0_CD))"), the event queues cleared (kvm_clear_interrupt_queue, kvm_clear_exception_queue,
    /// nmi_injected, nmi_pending and nmi_queued), DR0–3/6/7 reset, then kvm_lapic_reset(vcpu, true). MSRs (but EFER
    /// and the segment bases), XCR0 and the FPU are kept, as upstream: kvm_vcpu_reset resets PAT,
    /// MISC_FEATURES_ENABLES, MISC_ENABLE, XCR0 and XSS only "if (!init_event)", and kvm_xstate_reset zeroes only the
    /// MPX/CET components, which the emulated CPU lacks (Conformance/Cases/InitReset.cs).
    /// </summary>
    internal static void InitReset(KvmVcpu vcpu)
    {
        var cpu = vcpu.Cpu;
        var s = cpu.State;
        // svm_vcpu_reset(vcpu, true): an SEV-ES/SNP vCPU's protected registers live in its VMSA, out of kvm_vcpu_reset's
        // reach; an SNP AP waiting for reset takes its new VMSA (sev_snp_init_protected_guest_state, X86Emulator.GhcbApCreation.cs).
        if (vcpu.Emulator.SevInitEvent())
        {
            ClearEventQueues(s);
            vcpu.Lapic?.ResetForInit();
            return;
        }
        ulong apicBase = cpu.Sregs.apic_base;
        ulong cdNw = cpu.Sregs.cr0 & (X86Consts.CR0_CD | X86Consts.CR0_NW);
        VcpuReset.Apply(cpu);
        // x86.c kvm_vcpu_reset: "cpuid_0x1 = kvm_find_cpuid_entry(vcpu, 1); kvm_rdx_write(vcpu, cpuid_0x1 ?
        // cpuid_0x1->eax : 0x600);" — the first leaf-1 entry of KVM_SET_CPUID2's table (found by the differential
        // fuzzer on Linux 6.18: a one-leaf table with EAX 0, then a latched INIT taken → RDX 0).
        foreach (ref readonly var e in cpu.Cpuid.Entries)
        {
            if (e.function != 1) continue;
            cpu.Gpr[X86Cpu.RDX] = e.eax;
            break;
        }
        var sregs = cpu.Sregs;
        sregs.apic_base = apicBase;
        sregs.cr0 = X86Consts.CR0_ET | cdNw;
        cpu.Sregs = sregs;
        ClearEventQueues(s);
        Array.Clear(s.Db);
        s.Dr6 = VcpuState.Dr6ActiveLow;
        s.Dr7 = VcpuState.Dr7Fixed1;
        vcpu.Lapic?.ResetForInit();
    }

    /// <summary>kvm_vcpu_reset's kvm_clear_interrupt_queue, kvm_clear_exception_queue and NMI state.</summary>
    private static void ClearEventQueues(VcpuState s)
    {
        s.ExceptionInjected = s.ExceptionPending = s.ExceptionHasErrorCode = s.ExceptionHasPayload = false;
        s.InterruptInjected = s.InterruptSoft = false;
        s.InterruptShadow = 0;
        // "atomic_set(&vcpu->arch.nmi_queued, 0); vcpu->arch.nmi_pending = 0; vcpu->arch.nmi_injected = false;"
        s.NmiInjected = false;
        s.NmiPending = 0;
        Volatile.Write(ref s.NmiQueued, 0);
    }

    /// <summary>kvm_apic_has_pending_init_or_sipi.</summary>
    public static bool HasPendingInitOrSipi(KvmVcpu vcpu)
    {
        var s = vcpu.Cpu.State;
        lock (s.ApicEventsLock) return s.InitPending || s.SipiPending;
    }

    /// <summary>
    /// kvm_arch_vcpu_runnable: kvm_vcpu_running (mp_state RUNNABLE) or kvm_vcpu_has_events — a pending INIT or SIPI,
    /// pv_unhalted, a pending exception, an NMI pending or queued (nmi_allowed: not masked, none injected), or, with
    /// interrupts allowed (RFLAGS.IF, no shadow, nothing injected), an interrupt the APIC would deliver
    /// (kvm_cpu_has_interrupt: a PIC ExtINT or an IRR vector above PPR).
    /// </summary>
    public static bool Runnable(KvmVcpu vcpu) => vcpu.Cpu.State.MpState == KvmMpState.KVM_MP_STATE_RUNNABLE || HasEvents(vcpu);

    /// <summary>
    /// kvm_vcpu_has_events (see <see cref="Runnable"/>). A TD: KVM cannot see the guest's RFLAGS, so tdx_interrupt_allowed
    /// is "unless the last TDVMCALL was HLT with interrupts blocked (R12)", and the posted interrupt the APIC holds
    /// counts (tdx_protected_apic_has_interrupt: pi_has_pending_interrupt; the emulator's TD APIC is the in-kernel one,
    /// so an IRR vector above PPR stands for it).
    /// </summary>
    public static bool HasEvents(KvmVcpu vcpu)
    {
        var s = vcpu.Cpu.State;
        if (HasPendingInitOrSipi(vcpu)) return true;
        if (s.PvUnhalted) return true;
        // "if (kvm_test_request(KVM_REQ_UPDATE_PROTECTED_GUEST_STATE, vcpu)) return true;" (SNP AP creation).
        if (vcpu.Emulator.ProtectedGuestStateUpdatePending) return true;
        if (s.ExceptionPending) return true;
        if ((Volatile.Read(ref s.NmiQueued) != 0 || s.NmiPending != 0) && !s.NmiMasked && !s.NmiInjected) return true;
        if (Arch.CocoState.IsTd(vcpu.Kvm)) return !vcpu.Emulator.TdHaltedWithInterruptsBlocked && HasInterrupt(vcpu);
        return InterruptIoctls.ReadyForInterruptInjection(vcpu.Cpu) && HasInterrupt(vcpu);
    }

    /// <summary>kvm_cpu_has_interrupt for a vCPU with an in-kernel APIC.</summary>
    private static bool HasInterrupt(KvmVcpu vcpu)
    {
        var apic = vcpu.Lapic!;
        if (ApicInjection.HasExtint(vcpu, apic)) return true;
        if ((vcpu.Cpu.Sregs.apic_base & (1UL << 11)) == 0) return false;
        return apic.HasInterrupt();
    }
}
