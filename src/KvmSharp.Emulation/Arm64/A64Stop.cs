// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Ends the current A64 instruction before it commits (the guest exits to KVM and KVM returns to userspace). Thrown
/// only on the way out of KVM_RUN, never per instruction on the hot path. Instructions write registers only after
/// their memory access, so a stop leaves the vCPU exactly at the instruction, as a hardware abort does.
/// </summary>
internal abstract class A64Stop(string message) : Exception(message);

/// <summary>
/// A data abort on an IPA without memory that carries a valid syndrome (ESR_EL2.ISV): io_mem_abort prepares
/// KVM_EXIT_MMIO; the instruction completes on the next KVM_RUN (kvm_handle_mmio_return).
/// </summary>
internal sealed class MmioStop(MmioSyndrome syndrome) : A64Stop($"MMIO {(syndrome.IsWrite ? "write" : "read")} at 0x{syndrome.Ipa:X}")
{
    public MmioSyndrome Syndrome { get; } = syndrome;
}

/// <summary>The decoded syndrome of an MMIO data abort (ESR_EL2 ISS: WnR, SAS, SSE, SRT, SF) and the fault IPA.</summary>
internal readonly record struct MmioSyndrome(ulong Ipa, bool IsWrite, int Length, int Rt, bool SignExtend, bool Sf, ulong WriteData);

/// <summary>
/// A data abort on MMIO without a valid syndrome (ESR_EL2.ISV = 0: writeback, a page-crossing access): io_mem_abort
/// exits with KVM_EXIT_ARM_NISV when KVM_CAP_ARM_NISV_TO_USER is enabled, else KVM_RUN fails with -ENOSYS. The
/// instruction did not execute (PC stays). <see cref="EsrIss"/> is kvm_vcpu_dabt_iss_nisv_sanitized's view.
/// </summary>
internal sealed class NisvStop(ulong esrIss, ulong ipa) : A64Stop($"data abort without ISV at 0x{ipa:X}")
{
    public ulong EsrIss { get; } = esrIss;

    public ulong Ipa { get; } = ipa;
}

/// <summary>KVM_RUN returns <see cref="Errno"/> (io_mem_abort without ISV: -ENOSYS; a failed fault-in: -EFAULT …).</summary>
internal sealed class RunErrorStop(long errno, ulong ipa, bool memoryFaultExit, bool userfault = false) : A64Stop($"KVM_RUN error {errno} at 0x{ipa:X}")
{
    /// <summary>The memory fault exit is KVM userfault's (KVM_MEMORY_EXIT_FLAG_USERFAULT).</summary>
    public bool Userfault { get; } = userfault;

    public long Errno { get; } = errno;

    public ulong Ipa { get; } = ipa;

    /// <summary>gmem_abort (or kvm_do_userfault) fills KVM_EXIT_MEMORY_FAULT before returning the error.</summary>
    public bool MemoryFaultExit { get; } = memoryFaultExit;
}

/// <summary>An A64 encoding outside the emulated subset (see <see cref="A64Interpreter"/>): an emulation failure.</summary>
internal sealed class UnsupportedInstructionStop(uint instruction) : A64Stop($"A64 instruction 0x{instruction:X8} is not emulated")
{
    public uint Instruction { get; } = instruction;
}
