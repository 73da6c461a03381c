// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// Divergences the differential fuzzer found that are this host's, not the emulator's: kvm_pvm answers differently
/// from upstream, recorded with their evidence as HostDeviations.KvmPvmDropsRflagsVm and
/// HostDeviations.KvmPvmDropsCr0PgWithoutLongMode (src/KvmSharp.Conformance/HostDeviations.cs); the emulator keeps the
/// upstream answer. By default the generator steers around them; <see cref="OpGenerator"/>'s <c>includeReported</c>
/// (`kvmsharp fuzz --include-reported`) draws them again. Each names its reduced reproducer (open, KVM_CREATE_VM,
/// KVM_CREATE_VCPU id 1, then the call). Fixed since (no longer steered around): MADV_COLLAPSE of length 0,
/// MADV_POPULATE_* on private gmem pages (EmulatedKernel.Madvise), CR8 above 15 in KVM_SET_SREGS (SregsRules), and the
/// irqchip stream's KVM_SIGNAL_MSI delivery modes and addresses (the APIC map and the redirect hint, X86/Irqchip/ApicMap.cs,
/// ApicDelivery.cs) and KVM_SET_VCPU_EVENTS' latched INIT (VcpuStateRules) — none of them this host's: upstream answers
/// the same (Conformance ApicMessages).
/// </summary>
public static class ReportedDivergences
{
    /// <summary>
    /// KVM_SET_REGS with RFLAGS.VM (bit 17) set, then KVM_GET_REGS: this host reports bit 17 clear (every other bit,
    /// reserved ones included, as written); the emulator keeps it. E.g. set 0x43813626751E329E → host 0x43813626751C329E.
    /// </summary>
    public const ulong RflagsVm = 1UL << 17;

    /// <summary>
    /// KVM_SET_SREGS with CR0.PG | PE (0x80000031) outside long mode (EFER.LME clear): accepted by both, but this host then
    /// reports CR0 = 0x31 (PG dropped) while the emulator keeps 0x80000031.
    /// </summary>
    public static ulong SteerCr0(ulong cr0, ulong efer) =>
        (cr0 & (1UL << 31)) != 0 && (cr0 & 1) != 0 && (efer & (1UL << 8)) == 0 ? cr0 & ~(1UL << 31) : cr0;
}
