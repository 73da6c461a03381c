// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// KVM_ENABLE_CAP on this vCPU with up to four arguments (kvm_enable_cap.args) and flags 0 — the vCPU-level
    /// capabilities (x86 kvm_vcpu_ioctl_enable_cap), e.g. <see cref="KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID"/>.
    /// Throws a <see cref="KvmException"/> naming the capability and arguments; EINVAL for a capability the VM reports
    /// as 0 becomes a <see cref="KvmCapabilityException"/>.
    /// </summary>
    /// <exception cref="ArgumentException">More than four arguments.</exception>
    /// <exception cref="KvmException">
    /// The ioctl failed: EINVAL (flags not 0, or a capability the vCPU cannot enable — every one on arm64 and most on
    /// x86, VM-level ones included).
    /// </exception>
    public void EnableCapability(int capability, params ReadOnlySpan<ulong> args) => EnableCapability(EnableCap.Build(capability, args));

    /// <summary>
    /// Raw KVM_ENABLE_CAP on this vCPU with any field values (flags included), errors as in
    /// <see cref="EnableCapability(int, ReadOnlySpan{ulong})"/>.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void EnableCapability(kvm_enable_cap cap) => EnableCap.Enable(Kernel, Handle, cap, $"vcpu={Id} ", Vm.CheckExtension);
}
