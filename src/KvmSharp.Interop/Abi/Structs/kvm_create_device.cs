// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_create_device</c>, 12 bytes (KVM_CREATE_DEVICE on a VM fd): the kernel writes the new device's
/// descriptor into <see cref="fd"/>; with <see cref="KvmDeviceConstants.KVM_CREATE_DEVICE_TEST"/> in
/// <see cref="flags"/> it only answers whether <see cref="type"/> exists and leaves <see cref="fd"/> alone.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_create_device
{
    /// <summary>A KVM_DEV_TYPE_* value.</summary>
    public uint type;
    /// <summary>Out: the device's descriptor.</summary>
    public uint fd;
    /// <summary>KVM_CREATE_DEVICE_TEST or 0; other bits are not checked by the kernel.</summary>
    public uint flags;
}
