// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// Opens the VM's binary statistics (KVM_GET_STATS_FD on the VM fd): remote TLB flushes, MMU counters and, on
    /// x86, page counts. The returned object owns the new descriptor.
    /// </summary>
    /// <exception cref="KvmCapabilityException">The kernel has no KVM_CAP_BINARY_STATS_FD (before Linux 5.14).</exception>
    /// <exception cref="KvmException">The ioctl or a read of the header failed (EMFILE, …).</exception>
    public KvmStatistics OpenStatistics() => KvmStatistics.Open(Kernel, Handle, "VM");
}
