// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Ends the current instruction early (arch/x86/kvm/emulate.c returns X86EMUL_* codes for the same cases). The
/// emulator undoes the instruction's register changes and turns the stop into a KVM_RUN result. Only thrown on the
/// way out of KVM_RUN, never on the hot path.
/// </summary>
internal abstract class GuestStop : Exception
{
    protected GuestStop(string message) : base(message) { }
}

/// <summary>A read of emulated MMIO without data yet: exit KVM_EXIT_MMIO, re-execute with userspace's data.</summary>
internal sealed class MmioReadStop(ulong gpa, int length) : GuestStop($"MMIO read of {length} bytes at 0x{gpa:X}")
{
    public ulong Gpa { get; } = gpa;

    public int Length { get; } = length;
}

/// <summary>
/// An architectural exception the guest raised (#UD, #GP, #PF, #DE, #NP, #SS, #DF), or a software interrupt (INT n,
/// INT3: <see cref="Software"/>, delivered with RIP past the instruction and without the EXT bit).
/// </summary>
internal sealed class GuestFault(int vector, int errorCode = 0, ulong address = 0, bool software = false) : GuestStop($"exception vector {vector}")
{
    public int Vector { get; } = vector;

    public bool Software { get; } = software;

    public int ErrorCode { get; } = errorCode;

    /// <summary>CR2 for #PF.</summary>
    public ulong Address { get; } = address;

    /// <summary>
    /// An event KVM_RUN delivers from the vCPU's queue (X86Emulator.Events): its error code is pushed iff
    /// <see cref="ErrorCodeValid"/>, and delivery itself touches neither RFLAGS.RF nor CR2 (the queue code did).
    /// </summary>
    public bool Queued { get; init; }

    /// <summary>For a <see cref="Queued"/> event: kvm_queued_exception.has_error_code.</summary>
    public bool ErrorCodeValid { get; init; }

    /// <summary>An NMI or an external interrupt: no error code, benign for the double-fault rules whatever the vector.</summary>
    public bool External { get; init; }
}

/// <summary>The instruction is outside the emulated subset, or its bytes could not be fetched (EMULATION_FAILED).</summary>
internal sealed class EmulationFailure(string reason, bool haveInstructionBytes) : GuestStop(reason)
{
    public bool HaveInstructionBytes { get; } = haveInstructionBytes;
}

/// <summary>The fault-in path failed (kvm_mmu_faultin_pfn): KVM_RUN returns the errno with a memory-fault exit.</summary>
internal sealed class MemoryFaultStop(GpaResult result) : GuestStop($"memory fault at 0x{result.Gpa:X}: {result.Errno}")
{
    public GpaResult Result { get; } = result;
}
