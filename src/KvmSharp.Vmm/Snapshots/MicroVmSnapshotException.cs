// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Snapshots;

/// <summary>Why a micro-VM refused to take or go back to a snapshot.</summary>
public enum SnapshotRefusal
{
    /// <summary>The micro-VM is disposed.</summary>
    Disposed,

    /// <summary>A host function of the micro-VM's own call asked (re-entry): its memory is mid-call.</summary>
    InCall,

    /// <summary>The last call did not end normally: memory may hold a half-done update; Reset or Restore first.</summary>
    Faulted,

    /// <summary>Some guest pages are private (guest_memfd with private memory): the host cannot read them.</summary>
    PrivatePages,

    /// <summary>The snapshot was taken of another image than this micro-VM runs.</summary>
    ImageMismatch,

    /// <summary>The snapshot's memory size differs from this micro-VM's.</summary>
    MemorySizeMismatch,

    /// <summary>The snapshot's guest was offered other features (CallRegion.features) than this micro-VM offers.</summary>
    FeatureMismatch,

    /// <summary>The snapshot was taken under another GUEST-ABI version: its VMM pages are another layout.</summary>
    AbiMismatch,

    /// <summary>
    /// The kernel does not take the snapshot's vCPU state: an MSR it does not list in KVM_GET_MSR_INDEX_LIST or whose
    /// value KVM_SET_MSRS refuses (the message names it), special registers KVM_SET_SREGS refuses (e.g. a CR4 bit this
    /// vCPU's CPUID does not offer), or an MSR it would not read for the snapshot.
    /// </summary>
    VcpuStateRefused,

    /// <summary>
    /// <see cref="SnapshotRestoreMode.Lazy"/> was asked for, but the memory is not guest_memfd written by write(2) or
    /// the kernel has no KVM userfault (both unmerged proposals).
    /// </summary>
    LazyRestoreUnavailable,

    /// <summary>
    /// The snapshot's TSC rate (<see cref="MicroVmSnapshot.TscKhz"/>) cannot be given to this vCPU: KVM_SET_TSC_KHZ
    /// refused it (without TSC scaling a rate more than 250 ppm below the host's is EINVAL), or, for
    /// <see cref="MicroVm.Restore"/>, it differs from the micro-VM's own rate, which its CPUID already announced (create
    /// a micro-VM from the snapshot instead).
    /// </summary>
    TscRateRefused,

    /// <summary>
    /// The micro-VM is an SEV-SNP guest (<see cref="VmType.Snp"/>): its pages are private and launched by
    /// SNP_LAUNCH_UPDATE, its registers sealed by SNP_LAUNCH_FINISH, so the host can neither capture nor restore them.
    /// </summary>
    ProtectedGuest,

    /// <summary>
    /// The snapshot is of a micro-VM of another instruction set (<see cref="MicroVmSnapshot.Architecture"/>): an x86-64
    /// snapshot never goes into an arm64 micro-VM, nor the reverse. The message names both.
    /// </summary>
    ArchitectureMismatch,
}

/// <summary>
/// <see cref="MicroVm.Snapshot"/>, <see cref="MicroVm.Restore"/> or <c>MicroVm.Create(snapshot)</c> refused; the
/// message names the values that disagree. Nothing changed.
/// </summary>
public sealed class MicroVmSnapshotException : MicroVmException
{
    /// <summary>
    /// Creates the exception without a specific reason (<see cref="Reason"/> keeps its default value).
    /// </summary>
    public MicroVmSnapshotException()
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/> and no specific reason.</summary>
    public MicroVmSnapshotException(string message)
        : base(message)
    {
    }

    /// <summary>
    /// Creates the exception with <paramref name="message"/>, its cause <paramref name="inner"/> and no specific
    /// reason.
    /// </summary>
    public MicroVmSnapshotException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>
    /// Creates the exception for <paramref name="reason"/>, with a <paramref name="message"/> naming the values that
    /// disagree.
    /// </summary>
    public MicroVmSnapshotException(SnapshotRefusal reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    /// <summary>
    /// Creates the exception for <paramref name="reason"/>, with a <paramref name="message"/> naming the values the
    /// kernel refused and its failure <paramref name="inner"/>.
    /// </summary>
    public MicroVmSnapshotException(SnapshotRefusal reason, string message, Exception inner)
        : base(message, inner)
    {
        Reason = reason;
    }

    /// <summary>Why the snapshot operation was refused.</summary>
    public SnapshotRefusal Reason { get; }
}
