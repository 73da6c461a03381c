// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

public sealed partial class MicroVm
{
    /// <summary>
    /// Opens the binary statistics of the micro-VM's vCPU (KVM_GET_STATS_FD): exits by kind, halts, injections. The
    /// caller owns the returned object; it may be read from any thread, during a call too, and stays readable after the
    /// micro-VM is disposed (the file keeps the VM in the kernel until it is closed). Reset does not zero the counters.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The micro-VM was disposed.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmCapabilityException">The kernel has no KVM_CAP_BINARY_STATS_FD.</exception>
    public KvmStatistics OpenVcpuStatistics()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _vcpu.OpenStatistics();
    }
}
