// SPDX-License-Identifier: MIT
namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// The kvm_run page decoded as it is now, without running: what the last KVM_RUN left there, or what another ioctl
    /// filled in since — KVM_PRE_FAULT_MEMORY fills a KVM_EXIT_MEMORY_FAULT when it fails on a page the VMM must provide
    /// first (a KVM userfault page, [PATCH v3 05/15]). Valid until the next <see cref="Run"/>.
    /// </summary>
    public VcpuExit LastExit => new(_run.GetSpan(0, (int)_run.Length), interrupted: false);
}
