// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Abi.TdxGhci;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// A TD's TDG.VP.VMCALLs as arch/x86/kvm/vmx/tdx.c (6.18) answers them: which reach userspace and how (KVM_EXIT_IO,
/// _MMIO, _HYPERCALL, _SYSTEM_EVENT, _TDX), what the guest gets back in R10/R11, the TDX module's register passing
/// (Intel TDX Module ABI, TDG.VP.VMCALL) and the #VE for the instructions a TD may not run itself. The TD boots itself
/// (<see cref="TdGuest"/>). This host has no TDX: the cases run on the emulator's X86Coco profile.
/// </summary>
public static class TdVmcallRules
{
    private const string Tdx = "arch/x86/kvm/vmx/tdx.c";

    private static TdGuest Td(Kvm kvm, Action<Iced.Intel.Assembler> program, Action<Vm>? prepareVm = null, bool enableApic = false)
    {
        if (!kvm.SupportsGuestMemfd) CaseContext.Skip("a TD's memory is guest_memfd, which this kernel lacks (KVM_CAP_GUEST_MEMFD = 0)");
        return TdGuest.Create(kvm, program, prepareVm, enableApic);
    }

    [ConformanceCase(Tdx + " tdx_emulate_io: Instruction.IO goes to the in-kernel PIO bus or KVM_EXIT_IO; an IN completes into R11 (tdx_complete_pio_in); a size other than 1, 2, 4 is TDVMCALL_STATUS_INVALID_OPERAND without an exit",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void port_io_goes_to_userspace_and_an_in_value_comes_back_in_r11(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            TdGuest.Vmcall(a, EXIT_REASON_IO_INSTRUCTION, 1, 1, 0x80, 0x42);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, EXIT_REASON_IO_INSTRUCTION, 4, 0, 0x81);
            TdGuest.Report(a, r11);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, EXIT_REASON_IO_INSTRUCTION, 3, 1, 0x80, 0);
            TdGuest.Report(a, r10);
        });
        var exit = td.Vcpu.Run();
        Assert.Equal((KvmExitReason.KVM_EXIT_IO, true, (ushort)0x80, 1, (byte)0x42), (exit.Reason, exit.IoIsOut, exit.IoPort, exit.IoSize, exit.IoData[0]));
        Assert.Equal(TDVMCALL_STATUS_SUCCESS, td.RunToReport());
        exit = td.Vcpu.Run();
        Assert.Equal((KvmExitReason.KVM_EXIT_IO, false, (ushort)0x81, 4), (exit.Reason, exit.IoIsOut, exit.IoPort, exit.IoSize));
        BitConverter.TryWriteBytes(exit.IoData, 0x1234_5678u);
        Assert.Equal(0x1234_5678UL, td.RunToReport());
        Assert.Equal(TDVMCALL_STATUS_SUCCESS, td.RunToReport());
        // tdx_emulate_io: a size other than 1, 2, 4 is refused without an exit.
        Assert.Equal(TDVMCALL_STATUS_INVALID_OPERAND, td.RunToReport());
    }

    [ConformanceCase(Tdx + " tdx_emulate_mmio: #VE.RequestMMIO to a shared GPA is KVM_EXIT_MMIO at the GPA without the shared bit, a read completes into R11 (tdx_complete_mmio_read); a private GPA or a size other than 1, 2, 4, 8 is INVALID_OPERAND",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void mmio_takes_shared_addresses_only_and_a_read_comes_back_in_r11(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            TdGuest.Vmcall(a, EXIT_REASON_EPT_VIOLATION, 4, 0, 0xfee0_1000 | TdGuest.SharedBit);
            TdGuest.Report(a, r11);
            TdGuest.Vmcall(a, EXIT_REASON_EPT_VIOLATION, 4, 0, 0xfee0_1000);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, EXIT_REASON_EPT_VIOLATION, 3, 0, 0xfee0_1000 | TdGuest.SharedBit);
            TdGuest.Report(a, r10);
        });
        var exit = td.Vcpu.Run();
        Assert.Equal((KvmExitReason.KVM_EXIT_MMIO, false, 0xfee0_1000UL), (exit.Reason, exit.MmioIsWrite, exit.MmioAddress));
        BitConverter.TryWriteBytes(exit.MmioData, 0xcafe_f00du);
        Assert.Equal(0xcafe_f00dUL, td.RunToReport());
        // tdx_emulate_mmio: "TDG.VP.VMCALL<MMIO> allows only shared GPA"; the size must be 1, 2, 4 or 8.
        Assert.Equal(TDVMCALL_STATUS_INVALID_OPERAND, td.RunToReport());
        Assert.Equal(TDVMCALL_STATUS_INVALID_OPERAND, td.RunToReport());
    }

    [ConformanceCase(Tdx + " tdx_map_gpa / __tdx_map_gpa / tdx_complete_vmcall_map_gpa: MapGPA is KVM_EXIT_HYPERCALL(KVM_HC_MAP_GPA_RANGE) 2 MiB (TDX_MAP_GPA_MAX_LEN) at a time, DECRYPTED for shared and ENCRYPTED for private GPAs, the shared bit cleared, LONG_MODE; a refused chunk is INVALID_OPERAND with R11 = its GPA; misaligned ALIGN_ERROR; across the shared bit INVALID_OPERAND",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void map_gpa_goes_to_userspace_as_map_gpa_range_hypercalls_of_2_mib(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            TdGuest.Vmcall(a, TDVMCALL_MAP_GPA, 0x20_0000 | TdGuest.SharedBit, 0x40_0000);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, TDVMCALL_MAP_GPA, 0x20_0000, 0x1000);
            TdGuest.Report(a, r10);
            TdGuest.Report(a, r11);
            TdGuest.Vmcall(a, TDVMCALL_MAP_GPA, 0x20_0800, 0x1000);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, TDVMCALL_MAP_GPA, TdGuest.SharedBit - 0x1000, 0x2000);
            TdGuest.Report(a, r10);
        }, vm => vm.EnableHypercallExits(HypercallExits.MapGpaRange));
        // A shared range: DECRYPTED, the shared bit cleared, 512 pages at a time.
        foreach (ulong gpa in new ulong[] { 0x20_0000, 0x40_0000 })
        {
            var exit = td.Vcpu.Run();
            Assert.True(exit.TryGetMapGpaRange(out var request), exit.ToString());
            Assert.Equal((gpa, 512UL, KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED, true), (request.Gpa, request.PageCount, request.Attributes, exit.HypercallLongMode));
            exit.HypercallReturn = 0;
        }
        Assert.Equal(TDVMCALL_STATUS_SUCCESS, td.RunToReport());
        // A private page: ENCRYPTED; userspace refuses it → INVALID_OPERAND with R11 = the chunk's GPA.
        var refused = td.Vcpu.Run();
        Assert.True(refused.TryGetMapGpaRange(out var r) && r.Attributes == KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED && r.PageCount == 1, refused.ToString());
        refused.HypercallReturn = -(long)KvmPara.KVM_EINVAL;
        Assert.Equal(TDVMCALL_STATUS_INVALID_OPERAND, td.RunToReport());
        Assert.Equal(0x20_0000UL, td.RunToReport());
        Assert.Equal(TDVMCALL_STATUS_ALIGN_ERROR, td.RunToReport());
        // A range across the shared bit is INVALID_OPERAND, without an exit.
        Assert.Equal(TDVMCALL_STATUS_INVALID_OPERAND, td.RunToReport());
    }

    [ConformanceCase(Tdx + " tdx_map_gpa: without the KVM_HC_MAP_GPA_RANGE bit of KVM_CAP_EXIT_HYPERCALL, MapGPA is TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED with R11 = the GPA",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void map_gpa_without_the_hypercall_exit_enabled_is_unsupported(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            TdGuest.Vmcall(a, TDVMCALL_MAP_GPA, 0x20_0000, 0x1000);
            TdGuest.Report(a, r10);
            TdGuest.Report(a, r11);
        });
        Assert.Equal(TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED, td.RunToReport());
        Assert.Equal(0x20_0000UL, td.RunToReport());
    }

    [ConformanceCase(Tdx + " tdx_complete_vmcall_map_gpa: with an event pending between chunks (kvm_vcpu_has_events) MapGPA returns TDVMCALL_STATUS_RETRY with R11 = the next GPA",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void map_gpa_stops_between_chunks_with_retry_when_an_interrupt_is_pending(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            TdGuest.Vmcall(a, TDVMCALL_MAP_GPA, 0x20_0000 | TdGuest.SharedBit, 0x40_0000);
            TdGuest.Report(a, r10);
            TdGuest.Report(a, r11);
        }, vm => vm.EnableHypercallExits(HypercallExits.MapGpaRange), enableApic: true);
        var exit = td.Vcpu.Run();
        Assert.True(exit.TryGetMapGpaRange(out _), exit.ToString());
        exit.HypercallReturn = 0;
        // tdx_complete_vmcall_map_gpa: "if (kvm_vcpu_has_events(vcpu)) { … TDVMCALL_STATUS_RETRY; r11 = map_gpa_next }".
        Assert.Equal(1, td.Vm.SignalMsi(0xfee0_0000, 0x30));
        Assert.Equal(TDVMCALL_STATUS_RETRY, td.RunToReport());
        Assert.Equal(0x40_0000UL | TdGuest.SharedBit, td.RunToReport());
    }

    [ConformanceCase(Tdx + " tdx_report_fatal_error: KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_TDX_FATAL, 16 words in VCPU_REGS order (RAX = the TDCALL exit 77, the exposed GPRs, 0 for RSP and RBP)",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void report_fatal_error_is_a_tdx_fatal_system_event_with_the_registers(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            a.mov(rdx, 0x1111);
            a.mov(rcx, TdGuest.ExposeR10ToR15 | (1 << 2));
            a.xor(r10, r10);
            a.mov(r11, TDVMCALL_REPORT_FATAL_ERROR);
            a.mov(r12, 0xdead);
            a.xor(eax, eax);
            a.tdcall();
        });
        var exit = td.Vcpu.Run();
        Assert.Equal((KvmExitReason.KVM_EXIT_SYSTEM_EVENT, KvmConstants.KVM_SYSTEM_EVENT_TDX_FATAL), (exit.Reason, exit.SystemEventType));
        var data = exit.SystemEventData;
        Assert.Equal(16, data.Length);
        // VCPU_REGS order: RAX = TDH.VP.ENTER's exit (EXIT_REASON_TDCALL 77), RCX = the mask, RDX exposed, … R11, R12.
        Assert.Equal((77UL, TdGuest.ExposeR10ToR15 | 4, 0x1111UL, TDVMCALL_REPORT_FATAL_ERROR, 0xdeadUL), (data[0], data[1], data[2], data[11], data[12]));
    }

    [ConformanceCase(Tdx + " tdx_get_td_vm_call_info: leaf 0 answered by KVM (R11-R14 = 0), leaf 1 is KVM_EXIT_TDX whose r11-r14 and ret userspace fills (tdx_complete_get_td_vm_call_info), other leaves INVALID_OPERAND",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void get_td_vm_call_info_leaf_0_is_answered_by_kvm_and_leaf_1_by_userspace(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            a.mov(r13, 0x77);
            TdGuest.Vmcall(a, TDVMCALL_GET_TD_VM_CALL_INFO, 0);
            TdGuest.Report(a, r10);
            TdGuest.Report(a, r13);
            TdGuest.Vmcall(a, TDVMCALL_GET_TD_VM_CALL_INFO, 1);
            TdGuest.Report(a, r10);
            TdGuest.Report(a, r11);
            TdGuest.Report(a, r14);
            TdGuest.Vmcall(a, TDVMCALL_GET_TD_VM_CALL_INFO, 2);
            TdGuest.Report(a, r10);
        });
        Assert.Equal(TDVMCALL_STATUS_SUCCESS, td.RunToReport());
        Assert.Equal(0UL, td.RunToReport());
        var exit = td.Vcpu.Run();
        Assert.Equal((KvmExitReason.KVM_EXIT_TDX, TDVMCALL_GET_TD_VM_CALL_INFO, 1UL, TDVMCALL_STATUS_SUCCESS),
            (exit.Reason, exit.TdxCall, exit.TdxGetTdVmCallInfoLeaf, exit.TdxReturn));
        Assert.True(exit.TdxGetTdVmCallInfoRegs.SequenceEqual(new ulong[4]));
        exit.TdxGetTdVmCallInfoRegs[0] = 0x6; // GetQuote | SetupEventNotifyInterrupt, say
        exit.TdxGetTdVmCallInfoRegs[3] = 0x9;
        Assert.Equal(TDVMCALL_STATUS_SUCCESS, td.RunToReport());
        Assert.Equal(0x6UL, td.RunToReport());
        Assert.Equal(0x9UL, td.RunToReport());
        Assert.Equal(TDVMCALL_STATUS_INVALID_OPERAND, td.RunToReport());
    }

    [ConformanceCase(Tdx + " tdx_get_quote / tdx_setup_event_notify_interrupt: a shared buffer / a vector 32-255 is KVM_EXIT_TDX with ret preset to SUBFUNC_UNSUPPORTED (tdx_complete_simple puts the ret userspace left in R10); a private buffer / vector 31 is INVALID_OPERAND",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void get_quote_and_setup_event_notify_interrupt_go_to_userspace_with_unsupported_preset(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            TdGuest.Vmcall(a, TDVMCALL_GET_QUOTE, 0x3000, 0x1000);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, TDVMCALL_GET_QUOTE, 0x3000 | TdGuest.SharedBit, 0x2000);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, TDVMCALL_SETUP_EVENT_NOTIFY_INTERRUPT, 31);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, TDVMCALL_SETUP_EVENT_NOTIFY_INTERRUPT, 0x40);
            TdGuest.Report(a, r10);
        });
        // tdx_get_quote: "The gpa of buffer must have shared bit set."
        Assert.Equal(TDVMCALL_STATUS_INVALID_OPERAND, td.RunToReport());
        var exit = td.Vcpu.Run();
        Assert.Equal((KvmExitReason.KVM_EXIT_TDX, TDVMCALL_GET_QUOTE, TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED, (0x3000UL, 0x2000UL)),
            (exit.Reason, exit.TdxCall, exit.TdxReturn, exit.TdxGetQuote));
        exit.TdxReturn = TDVMCALL_STATUS_SUCCESS;
        Assert.Equal(TDVMCALL_STATUS_SUCCESS, td.RunToReport());
        Assert.Equal(TDVMCALL_STATUS_INVALID_OPERAND, td.RunToReport());
        exit = td.Vcpu.Run();
        Assert.Equal((KvmExitReason.KVM_EXIT_TDX, TDVMCALL_SETUP_EVENT_NOTIFY_INTERRUPT, TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED, 0x40UL),
            (exit.Reason, exit.TdxCall, exit.TdxReturn, exit.TdxSetupEventNotifyVector));
        Assert.Equal(TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED, td.RunToReport());
    }

    [ConformanceCase(Tdx + " tdx_handle_exit: Instruction.CPUID (kvm_cpuid into R12-R15), RDMSR/WRMSR through tdx_get_msr/tdx_set_msr (FEAT_CTL reads LOCKED, EFER read-only, MSRs outside tdx_has_emulated_msr INVALID_OPERAND), an unknown sub-function SUBFUNC_UNSUPPORTED, R10 != 0 a KVM hypercall with its result in R10 (tdx_emulate_vmcall)",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void cpuid_msrs_unknown_calls_and_kvm_hypercalls_are_answered_in_the_kernel(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            TdGuest.Vmcall(a, EXIT_REASON_CPUID, 0, 0);
            TdGuest.Report(a, r13);
            TdGuest.Vmcall(a, EXIT_REASON_MSR_READ, 0x3a);
            TdGuest.Report(a, r11);
            TdGuest.Vmcall(a, EXIT_REASON_MSR_WRITE, 0xc000_0080, 0);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, EXIT_REASON_MSR_READ, 0x10);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, 0x10_0ff);
            TdGuest.Report(a, r10);
            // R10 != 0: a KVM hypercall (tdx_emulate_vmcall), its result in R10.
            a.mov(rcx, TdGuest.ExposeR10ToR15);
            a.mov(r10, KvmPara.KVM_HC_VAPIC_POLL_IRQ);
            a.xor(eax, eax);
            a.tdcall();
            TdGuest.Report(a, r10);
            a.mov(rcx, TdGuest.ExposeR10ToR15);
            a.mov(r10, 0x7777);
            a.xor(eax, eax);
            a.tdcall();
            TdGuest.Report(a, r10);
        });
        // kvm_cpuid over the table KVM_SET_CPUID2 gave the vCPU (the supported one).
        Assert.Equal((ulong)kvm.GetSupportedCpuid().First(e => e.Function == 0).Ebx, td.RunToReport());
        // tdx_get_msr: IA32_FEATURE_CONTROL reads FEAT_CTL_LOCKED; EFER is read-only (tdx_is_read_only_msr); TSC (0x10)
        // is not in tdx_has_emulated_msr.
        Assert.Equal(1UL, td.RunToReport() & 1);
        Assert.Equal(TDVMCALL_STATUS_INVALID_OPERAND, td.RunToReport());
        Assert.Equal(TDVMCALL_STATUS_INVALID_OPERAND, td.RunToReport());
        Assert.Equal(TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED, td.RunToReport());
        Assert.Equal(0UL, td.RunToReport());
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_ENOSYS), td.RunToReport());
    }

    [ConformanceCase(Tdx + " Intel TDX Module ABI, TDG.VP.VMCALL: only the registers RCX exposes reach KVM (the others read 0) and come back; RCX bits 0, 1, 4, 63:32 set are TDX_OPERAND_INVALID for RCX with nothing passed",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void the_tdx_module_passes_only_the_registers_rcx_exposes_and_refuses_reserved_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            // R11 hidden: KVM sees sub-function 0 (unsupported), and the guest's R11 stays as it was.
            a.mov(r11, 12);
            a.mov(rcx, 1 << 10);
            a.xor(r10, r10);
            a.xor(eax, eax);
            a.tdcall();
            a.mov(rsi, r10);
            TdGuest.Report(a, rsi);
            // RCX bit 0 (RAX) may not be set: TDX_OPERAND_INVALID for RCX, nothing reaches KVM.
            a.mov(rcx, TdGuest.ExposeR10ToR15 | 1);
            a.xor(eax, eax);
            a.tdcall();
            TdGuest.Report(a, rax);
        });
        Assert.Equal(TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED, td.RunToReport());
        Assert.Equal(0xC000_0100_0000_0001UL, td.RunToReport());
    }

    [ConformanceCase(Tdx + " Instruction.HLT: kvm_emulate_halt_noskip, KVM_RUN waits; an interrupt wakes it unless R12 said interrupts are blocked (tdx_interrupt_allowed); a signal still ends the wait",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void hlt_waits_in_kvm_run_until_an_interrupt_unless_the_guest_said_interrupts_are_blocked(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            TdGuest.Vmcall(a, EXIT_REASON_HLT, 0);
            TdGuest.Report(a, r10);
            TdGuest.Vmcall(a, EXIT_REASON_HLT, 1);
            TdGuest.Report(a, r10);
        }, enableApic: true);
        var run = Task.Run(td.RunToReport);
        Assert.False(run.Wait(150), "KVM_RUN returned while the TD was halted");
        Assert.Equal(1, td.Vm.SignalMsi(0xfee0_0000, 0x30));
        Assert.True(run.Wait(TimeSpan.FromSeconds(30)), "the interrupt did not wake the TD");
        Assert.Equal(TDVMCALL_STATUS_SUCCESS, run.Result);
        // R12 = 1 (interrupts blocked): tdx_interrupt_allowed is false, another interrupt does not wake it; a signal does.
        var blocked = Task.Run(() => td.Vcpu.Run().Interrupted);
        Assert.False(blocked.Wait(150), "KVM_RUN returned while the TD was halted");
        td.Vm.SignalMsi(0xfee0_0000, 0x31);
        Assert.False(blocked.Wait(150), "an interrupt woke a TD halted with interrupts blocked");
        td.Vcpu.Kick();
        Assert.True(blocked.Wait(TimeSpan.FromSeconds(30)) && blocked.Result, "the kick did not end KVM_RUN");
    }

    [ConformanceCase(Tdx + " TDX module: HLT, IN and OUT in a TD are a #VE; without an IDT the TD triple-faults (tdx_handle_exit EXIT_REASON_TRIPLE_FAULT: KVM_EXIT_SHUTDOWN)",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void hlt_and_port_io_instructions_are_a_virtualization_exception(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (Action<Iced.Intel.Assembler> program in new Action<Iced.Intel.Assembler>[] { a => a.hlt(), a => a.@out(0x80, al), a => a.@in(al, 0x80) })
        {
            // No IDT: #VE → #DF → triple fault, KVM_EXIT_SHUTDOWN (tdx_handle_exit EXIT_REASON_TRIPLE_FAULT).
            using var td = Td(kvm, program);
            Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, td.Vcpu.Run().Reason);
        }
    }
}
