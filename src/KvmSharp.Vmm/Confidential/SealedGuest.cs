// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Confidential;

/// <summary>
/// The launch of a micro-VM whose vCPU registers the host cannot set once it runs — an SEV-SNP guest
/// (<see cref="SnpBoot"/>) or a TD (<see cref="TdBoot"/>) —: its code, data and page tables private, only
/// <see cref="SealedGuest.SharedRangesOf"/> shared, every call entered by the guest-side dispatcher
/// (<see cref="SnpDispatcher"/>).
/// </summary>
internal interface ISealedLaunch : IDisposable
{
    /// <summary>The VM type: <see cref="VmType.Snp"/> or <see cref="VmType.Tdx"/>.</summary>
    VmType Type { get; }

    /// <summary>What sealed the registers, in messages: "SNP_LAUNCH_FINISH", "KVM_TDX_FINALIZE_VM".</summary>
    string SealedBy { get; }

    /// <summary>
    /// True when the host can still set the vCPU's registers before the launch (SNP: the first call points RIP at
    /// the dispatcher before SNP_LAUNCH_FINISH); false when they are protected from creation (a TD starts at its
    /// reset vector, whose boot stub enters the dispatcher).
    /// </summary>
    bool SetsEntryRegisters { get; }

    /// <summary>Makes the private ranges private, adds (measures) them and seals the guest.</summary>
    void Launch(GuestMemory memory, Vcpu vcpu);
}

/// <summary>
/// What an SNP and a TD micro-VM share: which pages stay shared (the host reads and writes them during a call), and the
/// refusals of a sealed guest (Reset, snapshots, calls after an ending other than a return).
/// </summary>
internal static class SealedGuest
{
    /// <summary>
    /// The ranges the host reads and writes during a call, left shared: the call region with the host-call block and
    /// the call data [<see cref="Layout.CallRegion"/>, <see cref="Layout.CallDataEnd"/>), and the exception block
    /// [<see cref="Layout.ExceptionBlock"/>, +4 KiB). A TD's shared ranges.
    /// </summary>
    public static readonly (ulong Start, ulong End)[] SharedRanges =
    [
        (Layout.CallRegion, Layout.CallDataEnd),
        (Layout.ExceptionBlock, Layout.ExceptionBlock + Layout.PageSize),
    ];

    /// <summary>
    /// An SNP micro-VM's shared ranges: <see cref="SharedRanges"/> and its GHCB page [<see cref="Layout.Ghcb"/>, +4 KiB),
    /// which the hypervisor reads and writes at each VMGEXIT (<see cref="SnpRuntime"/>). In address order.
    /// </summary>
    public static readonly (ulong Start, ulong End)[] SnpSharedRanges =
    [
        (Layout.Ghcb, Layout.Ghcb + Layout.PageSize),
        .. SharedRanges,
    ];

    /// <summary>The shared ranges of a sealed micro-VM of <paramref name="type"/> (<see cref="VmType.Snp"/> or <see cref="VmType.Tdx"/>).</summary>
    public static (ulong Start, ulong End)[] SharedRangesOf(VmType type) => type == VmType.Snp ? SnpSharedRanges : SharedRanges;

    /// <summary>True when <paramref name="gpa"/>'s page is one of the shared ranges of <paramref name="type"/>.</summary>
    public static bool IsShared(ulong gpa, VmType type)
    {
        foreach (var (start, end) in SharedRangesOf(type))
            if (gpa >= start && gpa < end) return true;
        return false;
    }

    /// <summary>Every other range of [0, <paramref name="size"/>) than <paramref name="type"/>'s shared ranges: private and launched (measured).</summary>
    public static IEnumerable<(ulong Start, ulong End)> PrivateRanges(ulong size, VmType type)
    {
        ulong at = 0;
        foreach (var (start, end) in SharedRangesOf(type))
        {
            if (start > at) yield return (at, start);
            at = end;
        }
        if (size > at) yield return (at, size);
    }

    /// <summary>
    /// Why <paramref name="memory"/> cannot hold a sealed micro-VM of <paramref name="type"/> (null when it can): the
    /// private pages are guest_memfd pages the host first writes through the mapping and then converts in place.
    /// </summary>
    public static string? Unusable(GuestMemory memory, VmType type) =>
        memory.Backing != GuestMemoryBacking.GuestMemfd
            ? $"VM type {type} needs guest_memfd memory (its private pages), not host memory"
            : !memory.SupportsPrivateMemory
                ? $"VM type {type}: this kernel's guest_memfd cannot convert pages in place (KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES " +
                  $"lacks PRIVATE), which {Named(type)} micro-VM needs to launch the pages it wrote through the mapping"
                : null;

    /// <summary>"an SNP" or "a TD", for messages.</summary>
    private static string Named(VmType type) => type == VmType.Snp ? "an SNP" : "a TD";

    /// <summary>The refusal of <c>MicroVm.{what}</c> (Reset) on a launched sealed micro-VM.</summary>
    public static string ResetRefusal(ISealedLaunch launch, string what) => launch.Type == VmType.Snp
        ? $"MicroVm.{what} on an SNP micro-VM after its first call: SNP_LAUNCH_FINISH sealed the vCPU's registers into its " +
          "encrypted VMSA (KVM_SET_REGS and KVM_SET_SREGS are EINVAL for a vCPU with protected state) and its private " +
          "memory cannot be rewritten, so it cannot be reset or restored; create a new micro-VM"
        : $"MicroVm.{what} on a TD micro-VM after its first call: KVM_TDX_FINALIZE_VM fixed its private memory (added and " +
          "measured by KVM_TDX_INIT_MEM_REGION) and its vCPU registers are the TDX module's (KVM_SET_REGS and KVM_SET_SREGS " +
          "are EINVAL from the vCPU's creation), so it cannot be reset or restored; create a new micro-VM";

    /// <summary>The refusal of a snapshot operation <c>MicroVm.{what}</c> on a sealed micro-VM (always, launched or not).</summary>
    public static string SnapshotRefusal(ISealedLaunch launch, string what) => launch.Type == VmType.Snp
        ? $"MicroVm.{what} on an SNP micro-VM: its memory is private and launched by SNP_LAUNCH_UPDATE, its vCPU registers " +
          "are sealed by SNP_LAUNCH_FINISH (KVM_GET/SET_REGS are EINVAL), so the host cannot capture or restore them"
        : $"MicroVm.{what} on a TD micro-VM: its memory is private and added by KVM_TDX_INIT_MEM_REGION, its vCPU registers " +
          "are protected from the vCPU's creation (KVM_GET/SET_REGS are EINVAL), so the host cannot capture or restore them";

    /// <summary>The refusal of creating a micro-VM of <paramref name="type"/> from a snapshot.</summary>
    public static string CreateFromSnapshotRefusal(VmType type) => type == VmType.Snp
        ? "VM type Snp: a micro-VM cannot be created from a snapshot: its private pages are launched (and measured) " +
          "by SNP_LAUNCH_UPDATE and its registers sealed by SNP_LAUNCH_FINISH; create it from the image"
        : "VM type Tdx: a micro-VM cannot be created from a snapshot: its private pages are added (and measured) " +
          "by KVM_TDX_INIT_MEM_REGION and its registers are protected from the vCPU's creation; create it from the image";

    /// <summary>The refusal of a call on a sealed micro-VM whose vCPU no longer waits in the dispatcher.</summary>
    public static string CallRefusal(ISealedLaunch launch, long call, string ending) =>
        $"MicroVm.Call on {Named(launch.Type)} micro-VM whose call {call} {ending}: {launch.SealedBy} sealed its vCPU's " +
        "registers, so the host cannot move it back to the dispatcher that takes the next call (it only resumes it " +
        "there after a call that returned); create a new micro-VM";

    /// <summary>The refusal of an entry the dispatcher would not enter.</summary>
    public static string EntryRefusal(ISealedLaunch launch, ulong entry, ulong memorySize) =>
        $"entry 0x{entry:X} is outside the image area [0x{Layout.ImageBase:X}, 0x{memorySize:X}): {Named(launch.Type)} micro-VM's " +
        "dispatcher enters only functions of the image";

    /// <summary>The refusal of an instruction trace, which reads the vCPU's registers.</summary>
    public static string TraceRefusal(VmType type, string sealedBy) =>
        $"VM type {type} with MicroVmOptions.TraceInstructions: tracing reads the vCPU's registers, which {sealedBy} " +
        "seals (KVM_GET_REGS is EINVAL for a vCPU with protected state), and its private code";
}
