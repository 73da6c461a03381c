// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// One KVM_RUN exit, read in place from the vCPU's kvm_run page (no copy). Valid until the next Run. Data spans
/// (port I/O, MMIO) point into that page, so an IN or MMIO read is answered by writing into them.
/// </summary>
public readonly ref struct VcpuExit
{
    private readonly Span<byte> _run;
    private readonly uint _snpReqCertsExit;

    internal VcpuExit(Span<byte> run, bool interrupted, uint snpReqCertsExit = (uint)KvmExitReason.KVM_EXIT_SNP_REQ_CERTS)
    {
        _run = run;
        Interrupted = interrupted;
        _snpReqCertsExit = snpReqCertsExit;
    }

    /// <summary>KVM_RUN returned EINTR (a signal or immediate_exit); <see cref="Reason"/> is stale.</summary>
    public bool Interrupted { get; }

    /// <summary>
    /// kvm_run.exit_reason: why KVM_RUN returned; it decides which exit-specific members (Io*, Mmio*, MemoryFault*,
    /// Hypercall* …) are meaningful.
    /// </summary>
    public KvmExitReason Reason => (KvmExitReason)U32(KvmRunLayout.exit_reason);

    /// <summary>
    /// kvm_run.ready_for_interrupt_injection after this exit: the guest can take an interrupt now (RFLAGS.IF set, no
    /// interrupt shadow, nothing queued), so <see cref="Vcpu.InjectInterrupt"/> is safe. Set on every
    /// <see cref="KvmExitReason.KVM_EXIT_IRQ_WINDOW_OPEN"/>.
    /// </summary>
    public bool ReadyForInterruptInjection => _run[KvmRunLayout.ready_for_interrupt_injection] != 0;

    /// <summary>kvm_run.if_flag after this exit: the guest's RFLAGS.IF.</summary>
    public bool InterruptFlag => _run[KvmRunLayout.if_flag] != 0;

    /// <summary>
    /// KVM_EXIT_DIRTY_RING_FULL: this vCPU's dirty ring reached its soft limit. Harvest every vCPU's
    /// <see cref="Vcpu.DirtyRing"/> and call <see cref="Vm.ResetDirtyRings"/>; until then every KVM_RUN of this vCPU
    /// exits the same way without running the guest.
    /// </summary>
    public bool IsDirtyRingFull => !Interrupted && Reason == KvmExitReason.KVM_EXIT_DIRTY_RING_FULL;

    // ---- KVM_EXIT_IO ----
    /// <summary>
    /// KVM_EXIT_IO: true for OUT/OUTS (guest to host), false for IN/INS (answer by writing <see cref="IoData"/>).
    /// </summary>
    public bool IoIsOut => _run[KvmRunLayout.io_direction] == KvmConstants.KVM_EXIT_IO_OUT;
    /// <summary>KVM_EXIT_IO: the access width in bytes (1, 2 or 4).</summary>
    public int IoSize => _run[KvmRunLayout.io_size];
    /// <summary>KVM_EXIT_IO: the port number.</summary>
    public ushort IoPort => BinaryPrimitives.ReadUInt16LittleEndian(_run[KvmRunLayout.io_port..]);
    /// <summary>
    /// KVM_EXIT_IO: how many accesses of <see cref="IoSize"/> bytes (greater than 1 for REP INS/OUTS).
    /// </summary>
    public uint IoCount => U32(KvmRunLayout.io_count);

    /// <summary>
    /// KVM_EXIT_IO: kvm_run.io.data_offset, the offset of the <see cref="IoData"/> bytes from the start of the vCPU's
    /// mmap (x86.c emulator_pio_in_out: "KVM_PIO_PAGE_OFFSET * PAGE_SIZE", the page after struct kvm_run, for IN/OUT
    /// and INS/OUTS alike).
    /// </summary>
    public ulong IoDataOffset => U64(KvmRunLayout.io_data_offset);

    /// <summary>The bytes of a port I/O exit (size × count), inside the kvm_run mapping.</summary>
    public Span<byte> IoData
    {
        get
        {
            ulong offset = IoDataOffset;
            int length = IoSize * (int)IoCount;
            if (offset > (ulong)_run.Length || (ulong)length > (ulong)_run.Length - offset)
                throw new InvalidOperationException($"KVM_EXIT_IO data_offset 0x{offset:X} (+{length}) lies outside the kvm_run page");
            return _run.Slice((int)offset, length);
        }
    }

    // ---- KVM_EXIT_MMIO ----
    /// <summary>KVM_EXIT_MMIO: the guest-physical address accessed.</summary>
    public ulong MmioAddress => U64(KvmRunLayout.mmio_phys_addr);
    /// <summary>
    /// KVM_EXIT_MMIO: true for a guest write, false for a read (answer by writing <see cref="MmioData"/>).
    /// </summary>
    public bool MmioIsWrite => _run[KvmRunLayout.mmio_is_write] != 0;
    /// <summary>KVM_EXIT_MMIO: the data bytes in place (kvm_run.mmio.len of them, at most 8).</summary>
    public Span<byte> MmioData => _run.Slice(KvmRunLayout.mmio_data, (int)Math.Min(8u, U32(KvmRunLayout.mmio_len)));

    // ---- KVM_EXIT_MEMORY_FAULT ----
    /// <summary>
    /// KVM_EXIT_MEMORY_FAULT: kvm_run.memory_fault.flags; KVM_MEMORY_EXIT_FLAG_PRIVATE (bit 3) means the guest accessed
    /// the range as private.
    /// </summary>
    public ulong MemoryFaultFlags => U64(KvmRunLayout.memory_fault_flags);
    /// <summary>KVM_EXIT_MEMORY_FAULT: the guest-physical address of the faulting range.</summary>
    public ulong MemoryFaultGpa => U64(KvmRunLayout.memory_fault_gpa);
    /// <summary>KVM_EXIT_MEMORY_FAULT: the faulting range's length in bytes.</summary>
    public ulong MemoryFaultSize => U64(KvmRunLayout.memory_fault_size);
    /// <summary>
    /// KVM_EXIT_MEMORY_FAULT: true when the guest accessed the range as private (KVM_MEMORY_EXIT_FLAG_PRIVATE in
    /// <see cref="MemoryFaultFlags"/>), so the VMM converts it to private before running again; false: to shared.
    /// </summary>
    public bool MemoryFaultIsPrivate => (MemoryFaultFlags & KvmConstants.KVM_MEMORY_EXIT_FLAG_PRIVATE) != 0;
    /// <summary>
    /// KVM_EXIT_MEMORY_FAULT: true when the page's bit is set in its slot's userfault bitmap
    /// (KVM_MEMORY_EXIT_FLAG_USERFAULT, PROPOSAL "[PATCH v3 04/15]"): the VMM provides the page at
    /// <see cref="MemoryFaultGpa"/> (<see cref="MemoryFaultSize"/> bytes), clears the bit
    /// (<see cref="UserfaultBitmap.Clear(ulong)"/>) and runs again. <see cref="MemoryFaultIsPrivate"/> may be set too.
    /// </summary>
    public bool MemoryFaultIsUserfault => !Interrupted && Reason == KvmExitReason.KVM_EXIT_MEMORY_FAULT &&
                                          (MemoryFaultFlags & KvmConstants.KVM_MEMORY_EXIT_FLAG_USERFAULT) != 0;

    // ---- KVM_EXIT_HYPERCALL ----
    /// <summary>The hypercall number (RAX at the VMCALL, truncated to 32 bits outside 64-bit mode).</summary>
    public ulong HypercallNr => U64(KvmRunLayout.hypercall_nr);

    /// <summary>kvm_run.hypercall.args[6], in place (x86 fills args[0..2] for KVM_HC_MAP_GPA_RANGE from RBX, RCX, RDX).</summary>
    public ReadOnlySpan<ulong> HypercallArgs => MemoryMarshal.Cast<byte, ulong>(_run.Slice(KvmRunLayout.hypercall_args, 6 * sizeof(ulong)));

    /// <summary>kvm_run.hypercall.flags: <see cref="KvmPara.KVM_EXIT_HYPERCALL_LONG_MODE"/> on x86.</summary>
    public ulong HypercallFlags => U64(KvmRunLayout.hypercall_flags);

    /// <summary>The guest was in 64-bit mode: its arguments were not truncated, and the return value is not either.</summary>
    public bool HypercallLongMode => (HypercallFlags & KvmPara.KVM_EXIT_HYPERCALL_LONG_MODE) != 0;

    /// <summary>
    /// kvm_run.hypercall.ret: what the guest gets in RAX when the next <see cref="Vcpu.Run"/> completes the
    /// hypercall (x86.c complete_hypercall_exit; only the low 32 bits outside 64-bit mode). KVM sets it to 0 when it
    /// exits; write 0 for success or <c>-KvmPara.KVM_E*</c> for failure before running the vCPU again.
    /// </summary>
    public long HypercallReturn
    {
        get => (long)U64(KvmRunLayout.hypercall_ret);
        set => BinaryPrimitives.WriteInt64LittleEndian(_run[KvmRunLayout.hypercall_ret..], value);
    }

    /// <summary>True when this is a KVM_EXIT_HYPERCALL for KVM_HC_MAP_GPA_RANGE; <paramref name="request"/> decodes it.</summary>
    public bool TryGetMapGpaRange(out MapGpaRangeRequest request)
    {
        if (Interrupted || Reason != KvmExitReason.KVM_EXIT_HYPERCALL || HypercallNr != KvmPara.KVM_HC_MAP_GPA_RANGE)
        {
            request = default;
            return false;
        }
        var args = HypercallArgs;
        request = new MapGpaRangeRequest(args[0], args[1], args[2]);
        return true;
    }

    /// <summary>The decoded KVM_HC_MAP_GPA_RANGE request; throws when this exit is not one.</summary>
    public MapGpaRangeRequest MapGpaRange => TryGetMapGpaRange(out var request) ? request
        : throw new InvalidOperationException($"not a KVM_HC_MAP_GPA_RANGE hypercall exit: {ToString()}");

    // ---- KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR ----
    /// <summary>
    /// A guest RDMSR or WRMSR that KVM failed for a reason <see cref="Vm.EnableUserSpaceMsr"/> asked for: the
    /// instruction waits (RIP on it) until the next <see cref="Vcpu.Run"/>, which completes it with what this exit holds
    /// then — <see cref="MsrError"/> non-zero injects #GP(0); else RDMSR loads <see cref="MsrData"/> into EDX:EAX, and
    /// RIP moves past the instruction.
    /// </summary>
    public bool IsMsrExit => !Interrupted && Reason is KvmExitReason.KVM_EXIT_X86_RDMSR or KvmExitReason.KVM_EXIT_X86_WRMSR;

    /// <summary>KVM_EXIT_X86_WRMSR (true) or KVM_EXIT_X86_RDMSR (false).</summary>
    public bool MsrIsWrite => Reason == KvmExitReason.KVM_EXIT_X86_WRMSR;

    /// <summary>kvm_run.msr.reason: why KVM did not complete the access (exactly one of the flags).</summary>
    public MsrExitReasons MsrReason => (MsrExitReasons)U32(KvmRunLayout.msr_reason);

    /// <summary>kvm_run.msr.index: the MSR (the guest's ECX).</summary>
    public uint MsrIndex => U32(KvmRunLayout.msr_index);

    /// <summary>
    /// kvm_run.msr.data: the value a WRMSR writes (EDX:EAX); 0 for RDMSR, whose result the VMM writes here — the guest
    /// gets its low half in EAX and high half in EDX (both zero-extended) when the next Run completes the exit.
    /// </summary>
    public ulong MsrData
    {
        get => U64(KvmRunLayout.msr_data);
        set => BinaryPrimitives.WriteUInt64LittleEndian(_run[KvmRunLayout.msr_data..], value);
    }

    /// <summary>
    /// kvm_run.msr.error: 0 when KVM exits; set it non-zero to make the access fail — the next Run injects #GP(0) with
    /// RIP on the instruction (RDMSR then leaves EDX:EAX alone).
    /// </summary>
    public byte MsrError
    {
        get => _run[KvmRunLayout.msr_error];
        set => _run[KvmRunLayout.msr_error] = value;
    }

    // ---- KVM_EXIT_SYSTEM_EVENT ----
    /// <summary>kvm_run.system_event.type: KVM_SYSTEM_EVENT_SHUTDOWN, _RESET, _CRASH, … _TDX_FATAL.</summary>
    public uint SystemEventType => U32(KvmRunLayout.system_event_type);

    /// <summary>kvm_run.system_event.data[0 .. ndata) (at most 16 words; for KVM_SYSTEM_EVENT_TDX_FATAL the TD's GPRs in VCPU_REGS order).</summary>
    public ReadOnlySpan<ulong> SystemEventData =>
        MemoryMarshal.Cast<byte, ulong>(_run.Slice(KvmRunLayout.system_event_data, (int)Math.Min(16u, U32(KvmRunLayout.system_event_ndata)) * sizeof(ulong)));

    // ---- KVM_EXIT_ARM_NISV (arm64) ----
    /// <summary>
    /// arm64 KVM_EXIT_ARM_NISV (needs KVM_CAP_ARM_NISV_TO_USER enabled on the VM): a data abort on MMIO whose syndrome
    /// cannot describe the access (writeback, a page-crossing access). The PC stays at the instruction: userspace
    /// emulates it or injects an abort before the next Run (Documentation/virt/kvm/api.rst).
    /// </summary>
    public bool IsArmNisv => !Interrupted && (uint)Reason == Abi.Arm64.KvmArm64Constants.KVM_EXIT_ARM_NISV;

    /// <summary>kvm_run.arm_nisv.esr_iss: ESR_EL2 bits CM (8), WnR (6) and FSC (5:0) of the abort.</summary>
    public ulong ArmNisvEsrIss => U64(KvmRunLayout.arm_nisv_esr_iss);

    /// <summary>kvm_run.arm_nisv.fault_ipa: the faulting IPA, page offset included.</summary>
    public ulong ArmNisvFaultIpa => U64(KvmRunLayout.arm_nisv_fault_ipa);

    // ---- KVM_EXIT_IOAPIC_EOI ----
    /// <summary>
    /// KVM_EXIT_IOAPIC_EOI (split irqchip, <see cref="Vm.EnableSplitIrqchip"/>): the vector the guest EOI'd at its local
    /// APIC whose GSI route (an MSI below the reserved IOAPIC pins) is level-triggered; the userspace IOAPIC clears the
    /// pin's remote IRR and re-delivers a line still high (kvm_run.eoi.vector).
    /// </summary>
    public byte IoapicEoiVector => _run[KvmRunLayout.eoi_vector];

    /// <summary>True for a KVM_EXIT_IOAPIC_EOI (<see cref="IoapicEoiVector"/>).</summary>
    public bool IsIoapicEoi => !Interrupted && Reason == KvmExitReason.KVM_EXIT_IOAPIC_EOI;

    // ---- KVM_EXIT_TDX ----
    /// <summary>kvm_run.tdx.nr: the TDG.VP.VMCALL sub-function (<see cref="TdxGhci"/>: GetQuote, GetTdVmCallInfo, SetupEventNotifyInterrupt).</summary>
    public ulong TdxCall => U64(KvmRunLayout.tdx_nr);

    /// <summary>
    /// kvm_run.tdx.*.ret: the TDVMCALL status the guest gets in R10 when the next <see cref="Vcpu.Run"/> completes the
    /// call (vmx/tdx.c tdx_complete_simple). KVM fills in TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED for GetQuote and
    /// SetupEventNotifyInterrupt and TDVMCALL_STATUS_SUCCESS for GetTdVmCallInfo: write what the VMM did.
    /// </summary>
    public ulong TdxReturn
    {
        get => U64(KvmRunLayout.tdx_unknown_ret);
        set => BinaryPrimitives.WriteUInt64LittleEndian(_run[KvmRunLayout.tdx_unknown_ret..], value);
    }

    /// <summary>GetQuote: the shared buffer's GPA (shared bit already cleared) and size.</summary>
    public (ulong Gpa, ulong Size) TdxGetQuote => (U64(KvmRunLayout.tdx_get_quote_gpa), U64(KvmRunLayout.tdx_get_quote_size));

    /// <summary>GetTdVmCallInfo: the leaf the guest asked about (1 reaches userspace).</summary>
    public ulong TdxGetTdVmCallInfoLeaf => U64(KvmRunLayout.tdx_get_tdvmcall_info_leaf);

    /// <summary>
    /// GetTdVmCallInfo: R11–R14 for the guest, in place — the bitmaps of the TDVMCALLs the VMM supports (KVM zeroes
    /// them before the exit and copies them to the guest on completion, tdx_complete_get_td_vm_call_info).
    /// </summary>
    public Span<ulong> TdxGetTdVmCallInfoRegs => MemoryMarshal.Cast<byte, ulong>(_run.Slice(KvmRunLayout.tdx_get_tdvmcall_info_r11, 4 * sizeof(ulong)));

    /// <summary>SetupEventNotifyInterrupt: the vector (32–255) the guest wants for event notifications.</summary>
    public ulong TdxSetupEventNotifyVector => U64(KvmRunLayout.tdx_setup_event_notify_vector);

    // ---- KVM_EXIT_DEBUG ----
    /// <summary>
    /// KVM_EXIT_DEBUG (x86 kvm_debug_exit_arch.exception): 1 for #DB (single-step, hardware breakpoint), 3 for #BP
    /// (an INT3 under KVM_GUESTDBG_USE_SW_BP). arm64 keeps its ESR in these bytes: read <see cref="Arm64Debug"/> there.
    /// </summary>
    public uint DebugException => U32(KvmRunLayout.debug_arch_exception);

    /// <summary>
    /// KVM_EXIT_DEBUG: the linear address (CS base + RIP) the vCPU stopped at — the next instruction after a
    /// single-step, the breakpointed instruction for a hardware breakpoint or an INT3.
    /// </summary>
    public ulong DebugPc => U64(KvmRunLayout.debug_arch_pc);

    /// <summary>
    /// KVM_EXIT_DEBUG with exception 1: DR6 as the #DB would have set it (BS = bit 14 for a single-step, B0–B3 for
    /// a breakpoint; this host: 0xffff4ff0, 0xffff0ff1). Exits that do not write it (a #BP) leave the old bytes.
    /// </summary>
    public ulong DebugDr6 => U64(KvmRunLayout.debug_arch_dr6);

    /// <summary>KVM_EXIT_DEBUG: DR7 where the exit path reports it (a #DB intercepted by hardware); else the old bytes.</summary>
    public ulong DebugDr7 => U64(KvmRunLayout.debug_arch_dr7);

    /// <summary>True for a KVM_EXIT_DEBUG that reports a single-step (exception 1 with DR6.BS).</summary>
    public bool IsSingleStep => !Interrupted && Reason == KvmExitReason.KVM_EXIT_DEBUG && DebugException == 1 && (DebugDr6 & (1UL << 14)) != 0;

    /// <summary>
    /// An arm64 KVM_EXIT_DEBUG (arm64 kvm_debug_exit_arch): hsr and hsr_high (where x86 has exception and pad), far
    /// (where x86 has pc) and kvm_run.flags (KVM_DEBUG_ARCH_HSR_HIGH_VALID), read from the page now — 18 bytes, not
    /// the page. Meaningful only for a KVM_EXIT_DEBUG of an arm64 vCPU.
    /// </summary>
    public Arm64.Arm64DebugExit Arm64Debug => new(
        U32(Abi.Arm64.KvmArm64GuestDebug.kvm_run_debug_arch_hsr), U32(Abi.Arm64.KvmArm64GuestDebug.kvm_run_debug_arch_hsr_high),
        U64(Abi.Arm64.KvmArm64GuestDebug.kvm_run_debug_arch_far), BinaryPrimitives.ReadUInt16LittleEndian(_run[KvmRunLayout.flags..]));

    /// <summary>
    /// True for an arm64 KVM_EXIT_DEBUG that reports a software step (hsr EC 0x32, ESR_ELx_EC_SOFTSTP_LOW); the PC is
    /// the next instruction's (<see cref="Arm64.Arm64Vcpu.GetPc"/>).
    /// </summary>
    public bool IsArm64SoftwareStep => !Interrupted && Reason == KvmExitReason.KVM_EXIT_DEBUG &&
        U32(Abi.Arm64.KvmArm64GuestDebug.kvm_run_debug_arch_hsr) >> 26 == Arm64.Arm64DebugExit.SoftwareStepClass;

    // ---- KVM_EXIT_INTERNAL_ERROR ----
    /// <summary>
    /// KVM_EXIT_INTERNAL_ERROR: kvm_run.internal.suberror (KVM_INTERNAL_ERROR_*, e.g. 1 = emulation failure).
    /// </summary>
    public uint InternalSuberror => U32(KvmRunLayout.internal_suberror);

    /// <summary>
    /// KVM_EXIT_INTERNAL_ERROR: kvm_run.internal.data[0 .. ndata) — debug words whose format is the suberror's (at most
    /// the 16 the struct holds, whatever ndata says).
    /// </summary>
    public ReadOnlySpan<ulong> InternalData =>
        MemoryMarshal.Cast<byte, ulong>(_run.Slice(KvmRunLayout.internal_data, (int)Math.Min(U32(KvmRunLayout.internal_ndata), 16u) * sizeof(ulong)));

    /// <summary>
    /// The instruction the kernel failed to emulate: for suberror KVM_INTERNAL_ERROR_EMULATION whose
    /// emulation_failure.flags has KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES and whose ndata covers the
    /// bytes (x86.c prepare_emulation_failure_exit), insn_bytes[0 .. insn_size); otherwise empty. On x86 the fetched
    /// bytes from RIP (up to 15), on the emulated arm64 kernel the A64 word.
    /// </summary>
    public ReadOnlySpan<byte> EmulationFailureInstruction
    {
        get
        {
            if (InternalSuberror != (uint)KvmInternalError.KVM_INTERNAL_ERROR_EMULATION) return [];
            // flags (1 word) + insn_size/insn_bytes (2 words) must be inside ndata.
            if (U32(KvmRunLayout.internal_ndata) < 3) return [];
            if ((U64(KvmRunLayout.emulation_failure_flags) & KvmConstants.KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) == 0) return [];
            int size = Math.Min((int)_run[KvmRunLayout.emulation_failure_insn_size], 15);
            return _run.Slice(KvmRunLayout.emulation_failure_insn_bytes, size);
        }
    }

    // ---- KVM_EXIT_FAIL_ENTRY ----
    /// <summary>
    /// KVM_EXIT_FAIL_ENTRY: the hardware's VM-entry failure reason (fail_entry.hardware_entry_failure_reason).
    /// </summary>
    public ulong FailEntryReason => U64(KvmRunLayout.fail_entry_hardware_entry_failure_reason);

    // ---- KVM_EXIT_UNKNOWN ----
    /// <summary>
    /// KVM_EXIT_UNKNOWN: the hardware exit reason KVM did not handle (kvm_run.hw.hardware_exit_reason).
    /// </summary>
    public ulong HardwareExitReason => U64(KvmRunLayout.hw_hardware_exit_reason);

    // ---- KVM_EXIT_SNP_REQ_CERTS (after 6.18: "[PATCH v7 1/2] KVM: Introduce KVM_EXIT_SNP_REQ_CERTS") ----
    /// <summary>
    /// True when an SNP guest's extended guest request (MSG_REPORT_REQ) waits for the endorsement key's certificates
    /// (only after <see cref="SnpLaunch.EnableRequestCertificates"/>). The exit number is the kernel's
    /// (<see cref="UapiProposals.SnpReqCertsExit"/>).
    /// </summary>
    public bool IsSnpRequestCertificates => !Interrupted && U32(KvmRunLayout.exit_reason) == _snpReqCertsExit;

    /// <summary>The decoded KVM_EXIT_SNP_REQ_CERTS; throws when this exit is not one.</summary>
    public SnpCertificateRequest SnpRequestCertificates => IsSnpRequestCertificates ? new SnpCertificateRequest(_run)
        : throw new InvalidOperationException($"not a KVM_EXIT_SNP_REQ_CERTS exit: {ToString()}");

    /// <summary>
    /// The exit in the kernel's terms with its decoded fields, e.g. "KVM_EXIT_IO out port=0x3F8 size=1 count=1";
    /// "interrupted" for EINTR.
    /// </summary>
    public override string ToString() => Interrupted ? "interrupted" : IsSnpRequestCertificates
        ? $"KVM_EXIT_SNP_REQ_CERTS gpa=0x{U64(KvmRunLayout.snp_req_certs_gpa):X} npages={U64(KvmRunLayout.snp_req_certs_npages)}"
        : Reason switch
    {
        KvmExitReason.KVM_EXIT_IO => $"KVM_EXIT_IO {(IoIsOut ? "out" : "in")} port=0x{IoPort:X} size={IoSize} count={IoCount}",
        KvmExitReason.KVM_EXIT_MMIO => $"KVM_EXIT_MMIO {(MmioIsWrite ? "write" : "read")} addr=0x{MmioAddress:X}",
        KvmExitReason.KVM_EXIT_HYPERCALL => $"KVM_EXIT_HYPERCALL nr={HypercallNr} ({KvmPara.NameOf(HypercallNr) ?? "unknown"}) " +
            $"args=0x{HypercallArgs[0]:X},0x{HypercallArgs[1]:X},0x{HypercallArgs[2]:X} flags=0x{HypercallFlags:X}",
        KvmExitReason.KVM_EXIT_MEMORY_FAULT => $"KVM_EXIT_MEMORY_FAULT flags=0x{MemoryFaultFlags:X} gpa=0x{MemoryFaultGpa:X} size=0x{MemoryFaultSize:X}",
        KvmExitReason.KVM_EXIT_INTERNAL_ERROR => $"KVM_EXIT_INTERNAL_ERROR suberror={InternalSuberror}",
        KvmExitReason.KVM_EXIT_X86_RDMSR or KvmExitReason.KVM_EXIT_X86_WRMSR =>
            $"{Reason} index=0x{MsrIndex:X} reason={MsrReason} data=0x{MsrData:X} error={MsrError}",
        KvmExitReason.KVM_EXIT_IOAPIC_EOI => $"KVM_EXIT_IOAPIC_EOI vector=0x{IoapicEoiVector:X2}",
        KvmExitReason.KVM_EXIT_DEBUG => $"KVM_EXIT_DEBUG exception={DebugException} pc=0x{DebugPc:X} dr6=0x{DebugDr6:X} dr7=0x{DebugDr7:X}",
        KvmExitReason.KVM_EXIT_FAIL_ENTRY => $"KVM_EXIT_FAIL_ENTRY reason=0x{FailEntryReason:X}",
        KvmExitReason.KVM_EXIT_SYSTEM_EVENT => $"KVM_EXIT_SYSTEM_EVENT type={SystemEventType} ndata={SystemEventData.Length}",
        KvmExitReason.KVM_EXIT_TDX => $"KVM_EXIT_TDX nr=0x{TdxCall:X} ret=0x{TdxReturn:X}",
        (KvmExitReason)Abi.Arm64.KvmArm64Constants.KVM_EXIT_ARM_NISV => $"KVM_EXIT_ARM_NISV esr_iss=0x{ArmNisvEsrIss:X} fault_ipa=0x{ArmNisvFaultIpa:X}",
        _ => Reason.ToString(),
    };

    private uint U32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_run[offset..]);

    private ulong U64(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(_run[offset..]);
}
