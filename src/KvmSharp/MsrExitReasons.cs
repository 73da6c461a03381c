// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// Why a guest RDMSR/WRMSR failed in KVM (KVM_MSR_EXIT_REASON_*): the set <see cref="Vm.EnableUserSpaceMsr"/> sends to
/// userspace as KVM_EXIT_X86_RDMSR/WRMSR, and the one reason of such an exit (<see cref="VcpuExit.MsrReason"/>).
/// </summary>
[Flags]
public enum MsrExitReasons : ulong
{
    /// <summary>No MSR exits: every failed access is a #GP(0) in the guest.</summary>
    None = 0,

    /// <summary>KVM knows the MSR but refused the access or the value.</summary>
    Invalid = KvmMsrFilter.KVM_MSR_EXIT_REASON_INVAL,

    /// <summary>KVM does not know the MSR.</summary>
    Unknown = KvmMsrFilter.KVM_MSR_EXIT_REASON_UNKNOWN,

    /// <summary>The VM's MSR filter (<see cref="Vm.SetMsrFilter"/>) denied the access.</summary>
    Filter = KvmMsrFilter.KVM_MSR_EXIT_REASON_FILTER,
}
