// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>
/// The TD-to-host calls of Intel's Guest-Hypervisor Communication Interface (GHCI) that a VMM meets in
/// <c>kvm_run.tdx.nr</c> and <c>kvm_run.tdx.*.ret</c> (KVM_EXIT_TDX) or that KVM turns into other exits: the
/// TDG.VP.VMCALL sub-functions and status codes as arch/x86/include/asm/shared/tdx.h defines them. Not uapi (QEMU
/// keeps its own copy), so the ABI oracle cannot check them: the numbers are the GHCI specification's.
/// </summary>
public static class TdxGhci
{
    // ---- TDG.VP.VMCALL sub-functions (R11 when R10 = 0) beyond the VMX exit reasons ----
    /// <summary>GetTdVmCallInfo: leaf 0 is answered by KVM, leaf 1 goes to userspace (KVM_EXIT_TDX).</summary>
    public const ulong TDVMCALL_GET_TD_VM_CALL_INFO = 0x10000;
    /// <summary>MapGPA: KVM turns it into KVM_EXIT_HYPERCALL(KVM_HC_MAP_GPA_RANGE), 2 MiB at a time.</summary>
    public const ulong TDVMCALL_MAP_GPA = 0x10001;
    /// <summary>GetQuote: KVM_EXIT_TDX with the shared buffer's GPA and size.</summary>
    public const ulong TDVMCALL_GET_QUOTE = 0x10002;
    /// <summary>ReportFatalError: KVM_EXIT_SYSTEM_EVENT(KVM_SYSTEM_EVENT_TDX_FATAL) with the guest's registers.</summary>
    public const ulong TDVMCALL_REPORT_FATAL_ERROR = 0x10003;
    /// <summary>SetupEventNotifyInterrupt: KVM_EXIT_TDX with the vector (32–255).</summary>
    public const ulong TDVMCALL_SETUP_EVENT_NOTIFY_INTERRUPT = 0x10004;

    // ---- The VMX exit reasons a TD uses as sub-functions for instruction emulation ----
    /// <summary>Instruction.CPUID: R12 = EAX, R13 = ECX in; R12–R15 = EAX, EBX, ECX, EDX out.</summary>
    public const ulong EXIT_REASON_CPUID = 10;
    /// <summary>Instruction.HLT: R12 = "interrupts were blocked".</summary>
    public const ulong EXIT_REASON_HLT = 12;
    /// <summary>Instruction.IO: R12 = size (1, 2, 4), R13 = direction (1 write), R14 = port, R15 = data; R11 = data read.</summary>
    public const ulong EXIT_REASON_IO_INSTRUCTION = 30;
    /// <summary>Instruction.RDMSR: R12 = MSR; R11 = value.</summary>
    public const ulong EXIT_REASON_MSR_READ = 31;
    /// <summary>Instruction.WRMSR: R12 = MSR, R13 = value.</summary>
    public const ulong EXIT_REASON_MSR_WRITE = 32;
    /// <summary>#VE.RequestMMIO: R12 = size (1, 2, 4, 8), R13 = direction, R14 = shared GPA, R15 = data; R11 = data read.</summary>
    public const ulong EXIT_REASON_EPT_VIOLATION = 48;

    // ---- TDG.VP.VMCALL status codes (R10 on return) ----
    public const ulong TDVMCALL_STATUS_SUCCESS = 0x0000000000000000;
    public const ulong TDVMCALL_STATUS_RETRY = 0x0000000000000001;
    public const ulong TDVMCALL_STATUS_INVALID_OPERAND = 0x8000000000000000;
    public const ulong TDVMCALL_STATUS_ALIGN_ERROR = 0x8000000000000002;
    public const ulong TDVMCALL_STATUS_SUBFUNC_UNSUPPORTED = 0x8000000000000003;
}
