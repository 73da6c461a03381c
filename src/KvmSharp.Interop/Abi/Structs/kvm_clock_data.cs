// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_clock_data</c>, 48 bytes (x86 KVM_GET_CLOCK / KVM_SET_CLOCK on a VM fd, KVM_CAP_ADJUST_CLOCK): the
/// kvmclock value in nanoseconds, and with KVM_CLOCK_REALTIME / KVM_CLOCK_HOST_TSC in <see cref="flags"/> the host's
/// CLOCK_REALTIME and TSC read at the same instant.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_clock_data
{
    public ulong clock;
    public uint flags;
    public uint pad0;
    public ulong realtime;
    public ulong host_tsc;
    public U32x4 pad;
}
