// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_device_attr</c>, 24 bytes (KVM_SET/GET/HAS_DEVICE_ATTR on a device, VM or vCPU fd). On an x86 vCPU
/// (KVM_CAP_VCPU_ATTRIBUTES) the one group is KVM_VCPU_TSC_CTRL with the attribute KVM_VCPU_TSC_OFFSET, whose
/// <see cref="addr"/> points at a <c>__u64</c> (x86.c kvm_vcpu_ioctl_device_attr). <see cref="flags"/> is not checked.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_device_attr
{
    public uint flags;
    public uint group;
    public ulong attr;
    /// <summary>A user pointer to the attribute's value (for the TSC offset: a <c>__u64</c>).</summary>
    public ulong addr;
}
