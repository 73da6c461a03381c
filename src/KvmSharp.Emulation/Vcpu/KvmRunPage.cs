// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Vcpu;

/// <summary>
/// The vCPU's mmap area (kvm_vcpu_fault): page 0 is struct kvm_run, page KVM_PIO_PAGE_OFFSET (1) holds port I/O
/// data. It is a memfd, so userspace mmaps of the vCPU fd and the kernel's own mapping here see the same bytes, read
/// in place by the SDK. Page KVM_COALESCED_MMIO_PAGE_OFFSET (2; 1 on arm64) is the VM's coalesced MMIO ring, one page
/// for all its vCPUs: a mapping of the vCPU fd gets the VM's ring memfd over it (KvmVcpuFile.MapOtherBackings), and
/// that page of this memfd is never used.
/// </summary>
internal sealed class KvmRunPage : IDisposable
{
    /// <summary>KVM_PIO_PAGE_OFFSET * PAGE_SIZE: kvm_run.io.data_offset for every port I/O exit.</summary>
    public static int PioDataOffset => EmulatorConfig.PageSize;

    private readonly HostMapping _map;

    private KvmRunPage(int memfd, HostMapping map)
    {
        MemfdFd = memfd;
        _map = map;
    }

    /// <summary>The host memfd behind the area (what an mmap of the vCPU fd maps).</summary>
    public int MemfdFd { get; private set; }

    /// <summary>
    /// Creates the area; <paramref name="fileSize"/> (at least <paramref name="size"/>) is the memfd's length when
    /// more than kvm_run lives in it — the dirty ring's pages at KVM_DIRTY_LOG_PAGE_OFFSET (KvmMain/KvmDirtyRing.cs).
    /// </summary>
    public static long Create(long size, out KvmRunPage? page, long fileSize = 0)
    {
        page = null;
        long fd = HostMemory.MemfdCreate("kvm-vcpu", HostMemory.MFD_CLOEXEC);
        if (Err.IsError(fd)) return fd;
        HostMapping? map = null;
        long rc = HostMemory.Ftruncate((int)fd, Math.Max(size, fileSize));
        if (!Err.IsError(rc)) rc = HostMapping.MapShared((int)fd, 0, (ulong)size, out map);
        if (Err.IsError(rc))
        {
            _ = HostMemory.Close((int)fd);
            return Err.ENOMEM;
        }
        page = new KvmRunPage((int)fd, map!);
        return 0;
    }

    private Span<byte> Bytes(int offset, int length) => _map.GetSpan((ulong)offset, length);

    /// <summary>kvm_run.kvm_valid_regs .</summary>
    public ulong KvmValidRegs => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(KvmRunLayout.kvm_valid_regs, 8));

    /// <summary>kvm_run.kvm_dirty_regs.</summary>
    public ulong KvmDirtyRegs => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(KvmRunLayout.kvm_dirty_regs, 8));

    /// <summary>kvm_run.immediate_exit (READ_ONCE: userspace may set it from another thread).</summary>
    public bool ImmediateExit => Volatile.Read(ref Bytes(KvmRunLayout.immediate_exit, 1)[0]) != 0;

    /// <summary>kvm_run->cr8: userspace's TPR, loaded into the vCPU at the start of every KVM_RUN without an in-kernel APIC.</summary>
    public ulong Cr8 => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(KvmRunLayout.cr8, 8));

    public uint ExitReason
    {
        get => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(KvmRunLayout.exit_reason, 4));
        set => BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.exit_reason, 4), value);
    }

    /// <summary>kvm_run.request_interrupt_window (userspace's, read when KVM_RUN starts: dm_request_for_irq_injection).</summary>
    public bool RequestInterruptWindow => Volatile.Read(ref Bytes(KvmRunLayout.request_interrupt_window, 1)[0]) != 0;

    /// <summary>
    /// post_kvm_run_save: if_flag, cr8, apic_base and ready_for_interrupt_injection ("pic_in_kernel(vcpu-&gt;kvm) ||
    /// kvm_vcpu_ready_for_interrupt_injection(vcpu)") mirror the vCPU after every KVM_RUN, an EINTR one included.
    /// </summary>
    public void SaveState(bool interruptsEnabled, ulong cr8, ulong apicBase, bool readyForInterruptInjection)
    {
        Bytes(KvmRunLayout.ready_for_interrupt_injection, 1)[0] = readyForInterruptInjection ? (byte)1 : (byte)0;
        Bytes(KvmRunLayout.if_flag, 1)[0] = interruptsEnabled ? (byte)1 : (byte)0;
        // "kvm_run->cr8 = kvm_get_cr8(vcpu)" (was always 0: a CR8 set through KVM_SET_SREGS or kvm_run->cr8 was lost;
        // found by the differential fuzzer, tests/KvmSharp.Fuzzing.Tests/FoundDivergenceTests.cs).
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.cr8, 8), cr8);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.apic_base, 8), apicBase);
    }

    /// <summary>
    /// KVM_EXIT_IO with <paramref name="count"/> elements (more than 1 for an INS batch); the data lives at
    /// <see cref="PioDataOffset"/> (x86.c emulator_pio_in_out).
    /// </summary>
    public Span<byte> SetIoExit(bool output, int size, ushort port, int count = 1)
    {
        ExitReason = (uint)KvmExitReason.KVM_EXIT_IO;
        Bytes(KvmRunLayout.io_direction, 1)[0] = output ? KvmConstants.KVM_EXIT_IO_OUT : KvmConstants.KVM_EXIT_IO_IN;
        Bytes(KvmRunLayout.io_size, 1)[0] = (byte)size;
        BinaryPrimitives.WriteUInt16LittleEndian(Bytes(KvmRunLayout.io_port, 2), port);
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.io_count, 4), (uint)count);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.io_data_offset, 8), (ulong)PioDataOffset);
        return IoData(size * count);
    }

    public Span<byte> IoData(int size) => Bytes(PioDataOffset, size);

    /// <summary>KVM_EXIT_MMIO; for a write, <paramref name="data"/> is copied into kvm_run.mmio.data.</summary>
    public void SetMmioExit(ulong gpa, ReadOnlySpan<byte> data, int length, bool write)
    {
        ExitReason = (uint)KvmExitReason.KVM_EXIT_MMIO;
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.mmio_phys_addr, 8), gpa);
        var d = Bytes(KvmRunLayout.mmio_data, 8);
        if (write) data.CopyTo(d);
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.mmio_len, 4), (uint)length);
        Bytes(KvmRunLayout.mmio_is_write, 1)[0] = write ? (byte)1 : (byte)0;
    }

    public Span<byte> MmioData(int length) => Bytes(KvmRunLayout.mmio_data, length);

    /// <summary>KVM_EXIT_ARM_NISV (arm64 mmio.c io_mem_abort): kvm_run.arm_nisv.{esr_iss, fault_ipa}.</summary>
    public void SetArmNisvExit(ulong esrIss, ulong faultIpa)
    {
        ExitReason = KvmSharp.Abi.Arm64.KvmArm64Constants.KVM_EXIT_ARM_NISV;
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.arm_nisv_esr_iss, 8), esrIss);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.arm_nisv_fault_ipa, 8), faultIpa);
    }

    /// <summary>
    /// x86.c prepare_emulation_failure_exit: suberror KVM_INTERNAL_ERROR_EMULATION; data[0] = flags
    /// (KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES when the bytes are known), then insn_size + 15 bytes
    /// (padded with 0x90), then the five exit-info words (zero: there is no hardware exit here).
    /// </summary>
    public void SetEmulationFailure(ReadOnlySpan<byte> instruction)
    {
        ExitReason = (uint)KvmExitReason.KVM_EXIT_INTERNAL_ERROR;
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.internal_suberror, 4), KvmInternalErrorEmulation);
        var data = Bytes(KvmRunLayout.internal_data, 16 * 8);
        data.Clear();
        int ndata = 1 + 5;
        if (!instruction.IsEmpty)
        {
            data[0] = 1;
            data[8] = (byte)instruction.Length;
            data.Slice(9, 15).Fill(0x90);
            instruction.CopyTo(data.Slice(9, 15));
            ndata += 2;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.internal_ndata, 4), (uint)ndata);
    }

    /// <summary>
    /// x86.c kvm_prepare_unexpected_reason_exit: suberror KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, ndata 2, data[0] =
    /// the exit reason, data[1] = last_vmentry_cpu (the host CPU the vCPU last entered on).
    /// </summary>
    public void SetUnexpectedExitReason(ulong exitReason, ulong lastVmentryCpu)
    {
        ExitReason = (uint)KvmExitReason.KVM_EXIT_INTERNAL_ERROR;
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.internal_suberror, 4), KvmInternalErrorUnexpectedExitReason);
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.internal_ndata, 4), 2);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.internal_data, 8), exitReason);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.internal_data + 8, 8), lastVmentryCpu);
    }

    /// <summary>
    /// kvm_run.hypercall.ret: written by KVM for every hypercall it answers itself, set to 0 on KVM_EXIT_HYPERCALL,
    /// and read back by complete_hypercall_exit with what userspace left there.
    /// </summary>
    public ulong HypercallRet
    {
        get => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(KvmRunLayout.hypercall_ret, 8));
        set => BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.hypercall_ret, 8), value);
    }

    /// <summary>x86.c ____kvm_emulate_hypercall's KVM_EXIT_HYPERCALL: nr, ret = 0, args[0..2], flags (args[3..5] untouched).</summary>
    public void SetHypercallExit(ulong nr, ulong a0, ulong a1, ulong a2, ulong flags)
    {
        ExitReason = (uint)KvmExitReason.KVM_EXIT_HYPERCALL;
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.hypercall_nr, 8), nr);
        HypercallRet = 0;
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.hypercall_args, 8), a0);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.hypercall_args + 8, 8), a1);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.hypercall_args + 16, 8), a2);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.hypercall_flags, 8), flags);
    }

    /// <summary>kvm_run.hypercall.flags as it is (svm/sev.c's page-state-change exits leave it untouched).</summary>
    public ulong HypercallFlags => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(KvmRunLayout.hypercall_flags, 8));

    /// <summary>
    /// x86.c kvm_msr_user_space: exit_reason KVM_EXIT_X86_RDMSR or _WRMSR, msr.error = 0, msr.pad zeroed, msr.reason,
    /// msr.index and msr.data (the WRMSR value; 0 for RDMSR).
    /// </summary>
    public void SetMsrExit(bool write, ulong reason, uint index, ulong data)
    {
        ExitReason = (uint)(write ? KvmExitReason.KVM_EXIT_X86_WRMSR : KvmExitReason.KVM_EXIT_X86_RDMSR);
        Bytes(KvmRunLayout.msr_error, 8).Clear(); // error and pad[7]
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.msr_reason, 4), (uint)reason);
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.msr_index, 4), index);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.msr_data, 8), data);
    }

    /// <summary>kvm_run.msr.error (a __u8) and msr.data as userspace left them, read back by the MSR exit's completion.</summary>
    public (byte Error, ulong Data) MsrAnswer =>
        (Bytes(KvmRunLayout.msr_error, 1)[0], BinaryPrimitives.ReadUInt64LittleEndian(Bytes(KvmRunLayout.msr_data, 8)));

    /// <summary>KVM_EXIT_SYSTEM_EVENT: type, ndata and data[0 .. ndata) (vmx/tdx.c tdx_report_fatal_error fills 16 words).</summary>
    public void SetSystemEvent(uint type, ReadOnlySpan<ulong> data)
    {
        ExitReason = (uint)KvmExitReason.KVM_EXIT_SYSTEM_EVENT;
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.system_event_type, 4), type);
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.system_event_ndata, 4), (uint)data.Length);
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.system_event_data + 8 * i, 8), data[i]);
    }

    /// <summary>KVM_EXIT_IOAPIC_EOI (x86.c vcpu_enter_guest's KVM_REQ_IOAPIC_EOI_EXIT): eoi.vector, the rest of the union untouched.</summary>
    public void SetIoapicEoi(byte vector)
    {
        ExitReason = (uint)KvmExitReason.KVM_EXIT_IOAPIC_EOI;
        Bytes(KvmRunLayout.eoi_vector, 1)[0] = vector;
    }

    /// <summary>
    /// KVM_EXIT_TDX (vmx/tdx.c tdx_get_quote, tdx_get_td_vm_call_info, tdx_setup_event_notify_interrupt): flags 0, the
    /// sub-function, ret, then the member's words (<paramref name="data"/>, at most 5); the rest of the union is left as
    /// it was.
    /// </summary>
    public void SetTdxExit(ulong nr, ulong ret, ReadOnlySpan<ulong> data)
    {
        ExitReason = (uint)KvmExitReason.KVM_EXIT_TDX;
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.tdx_flags, 8), 0);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.tdx_nr, 8), nr);
        TdxRet = ret;
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.tdx_unknown_data + 8 * i, 8), data[i]);
    }

    /// <summary>kvm_run.tdx.*.ret (the same offset in every member): read back on completion.</summary>
    public ulong TdxRet
    {
        get => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(KvmRunLayout.tdx_unknown_ret, 8));
        set => BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.tdx_unknown_ret, 8), value);
    }

    /// <summary>kvm_run.tdx.unknown.data[<paramref name="index"/>] (get_tdvmcall_info.r11 … r14 are data[1..4]).</summary>
    public ulong TdxData(int index) => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(KvmRunLayout.tdx_unknown_data + 8 * index, 8));

    /// <summary>
    /// KVM_EXIT_SNP_REQ_CERTS (sev.c snp_handle_ext_guest_req, [PATCH v7 1/2]): exit_reason <paramref name="exitReason"/>
    /// (the configured number), gpa, npages and ret = 0; the rest of the union untouched.
    /// </summary>
    public void SetSnpReqCerts(uint exitReason, ulong gpa, ulong npages)
    {
        ExitReason = exitReason;
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.snp_req_certs_gpa, 8), gpa);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.snp_req_certs_npages, 8), npages);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.snp_req_certs_ret, 8), 0);
    }

    /// <summary>kvm_run.snp_req_certs.ret and .npages as userspace left them (READ_ONCE on completion).</summary>
    public (ulong Ret, ulong Npages) SnpReqCertsAnswer =>
        (BinaryPrimitives.ReadUInt64LittleEndian(Bytes(KvmRunLayout.snp_req_certs_ret, 8)),
         BinaryPrimitives.ReadUInt64LittleEndian(Bytes(KvmRunLayout.snp_req_certs_npages, 8)));

    /// <summary>
    /// kvm_prepare_memory_fault_exit; <paramref name="userfault"/> adds KVM_MEMORY_EXIT_FLAG_USERFAULT (kvm_do_userfault,
    /// [PATCH v3 04/15]).
    /// </summary>
    public void SetMemoryFault(ulong gpa, ulong size, bool isPrivate, bool userfault = false)
    {
        ExitReason = (uint)KvmExitReason.KVM_EXIT_MEMORY_FAULT;
        ulong flags = (isPrivate ? KvmConstants.KVM_MEMORY_EXIT_FLAG_PRIVATE : 0) | (userfault ? KvmConstants.KVM_MEMORY_EXIT_FLAG_USERFAULT : 0);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.memory_fault_flags, 8), flags);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.memory_fault_gpa, 8), gpa);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.memory_fault_size, 8), size);
    }

    /// <summary>
    /// KVM_EXIT_DEBUG: exception and pc always; dr6 and dr7 only where the kernel's path writes them. x86.c
    /// kvm_vcpu_do_singlestep / kvm_inject_emulated_db and kvm_vcpu_check_code_breakpoint write dr6, never dr7; svm.c
    /// bp_interception (and vmx.c handle_exception_nmi for BP_VECTOR) write neither; svm.c db_interception
    /// ("kvm_run->debug.arch.dr7 = svm->vmcb->save.dr7") and vmx.c handle_exception_nmi DB_VECTOR
    /// ("kvm_run->debug.arch.dr7 = vmcs_readl(GUEST_DR7)") write both, for a #DB the hardware raised. pad and a field
    /// not written keep what was there (observed on this host: GuestDebug.debug_exits_leave_dr7_alone).
    /// </summary>
    public void SetDebugExit(uint exception, ulong pc, ulong? dr6, ulong? dr7 = null)
    {
        ExitReason = (uint)KvmExitReason.KVM_EXIT_DEBUG;
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes(KvmRunLayout.debug_arch_exception, 4), exception);
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.debug_arch_pc, 8), pc);
        if (dr6 is ulong d) BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.debug_arch_dr6, 8), d);
        if (dr7 is ulong d7) BinaryPrimitives.WriteUInt64LittleEndian(Bytes(KvmRunLayout.debug_arch_dr7, 8), d7);
    }

    /// <summary>KVM_INTERNAL_ERROR_EMULATION (include/uapi/linux/kvm.h).</summary>
    public const uint KvmInternalErrorEmulation = 1;

    /// <summary>KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON (include/uapi/linux/kvm.h).</summary>
    public const uint KvmInternalErrorUnexpectedExitReason = 4;

    public void Dispose()
    {
        _map.Dispose();
        if (MemfdFd >= 0) _ = HostMemory.Close(MemfdFd);
        MemfdFd = -1;
    }
}
