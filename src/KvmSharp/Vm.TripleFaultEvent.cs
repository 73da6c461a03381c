// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// KVM_CAP_X86_TRIPLE_FAULT_EVENT (x86, since 6.0): with it on, every vCPU's <see cref="Vcpu.GetEvents"/> reports a
    /// pending triple fault (<see cref="Vcpu.GetTripleFaultPending"/>) and <see cref="Vcpu.SetEvents"/> may make or
    /// cancel one (<see cref="Vcpu.SetTripleFaultPending"/>), so a VMM can save and restore it with the rest of the
    /// event state. <paramref name="enable"/> false turns it off again; it may change after vCPUs exist.
    /// </summary>
    /// <exception cref="KvmCapabilityException">EINVAL: the kernel does not offer the capability (not x86, or before 6.0).</exception>
    /// <exception cref="KvmException">The ioctl failed otherwise.</exception>
    public void EnableTripleFaultEvent(bool enable = true) =>
        EnableCapability(KvmCaps.KVM_CAP_X86_TRIPLE_FAULT_EVENT, enable ? 1UL : 0UL);
}
