// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// Opens the vCPU's binary statistics (KVM_GET_STATS_FD on the vCPU fd): exits by kind, halts, injections, halt
    /// polling histograms. The returned object owns the new descriptor; read it from any thread, also while the vCPU
    /// runs.
    /// </summary>
    /// <exception cref="KvmCapabilityException">The kernel has no KVM_CAP_BINARY_STATS_FD (before Linux 5.14).</exception>
    /// <exception cref="KvmException">The ioctl or a read of the header failed (EMFILE, …).</exception>
    public KvmStatistics OpenStatistics() => KvmStatistics.Open(Kernel, Handle, $"vcpu {Id}");
}
