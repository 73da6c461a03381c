// SPDX-License-Identifier: MIT
using System.Diagnostics.CodeAnalysis;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// KVM_HAS/GET/SET_DEVICE_ATTR of one 64-bit attribute on a descriptor (/dev/kvm, a vCPU): the value travels through
/// a pinned u64 that kvm_device_attr.addr points at.
/// </summary>
internal static class DeviceAttribute
{
    /// <summary>KVM_HAS_DEVICE_ATTR: true on 0, false on ENXIO (no such group or attribute); throws otherwise.</summary>
    public static bool Has(IKernel kernel, KernelFd fd, uint group, ulong attribute, string target)
    {
        var attr = new kvm_device_attr { group = group, attr = attribute };
        long rc = kernel.Ioctl(fd, KvmIoctls.KVM_HAS_DEVICE_ATTR, KvmCall.Bytes(ref attr));
        if (rc == -(long)Errno.ENXIO) return false;
        KvmCall.Check(rc, "KVM_HAS_DEVICE_ATTR", $"{target} group={group} attr={attribute}");
        return true;
    }

    /// <summary>
    /// KVM_GET_DEVICE_ATTR (<paramref name="set"/> false) or KVM_SET_DEVICE_ATTR of the u64 in <paramref name="value"/>:
    /// the raw result (no message is built on success; <see cref="Throw"/> makes the error).
    /// </summary>
    public static long Transfer(IKernel kernel, KernelFd fd, bool set, uint group, ulong attribute, PinnedArray<ulong> value)
    {
        var attr = new kvm_device_attr { group = group, attr = attribute, addr = value.Address };
        long rc = kernel.Ioctl(fd, set ? KvmIoctls.KVM_SET_DEVICE_ATTR : KvmIoctls.KVM_GET_DEVICE_ATTR, KvmCall.Bytes(ref attr));
        GC.KeepAlive(value);
        return rc;
    }

    /// <summary>
    /// The exception for a failed <see cref="Transfer"/>: ENXIO (no such attribute) and EINVAL (no device attributes on
    /// this descriptor: the ioctl is unknown) are a <see cref="KvmCapabilityException"/> naming <paramref name="capability"/>.
    /// </summary>
    [DoesNotReturn]
    public static void Throw(long rc, bool set, string request, string capability, long reported)
    {
        string operation = set ? "KVM_SET_DEVICE_ATTR" : "KVM_GET_DEVICE_ATTR";
        if (rc == -(long)Errno.ENXIO || rc == -(long)Errno.EINVAL)
            throw new KvmCapabilityException(operation, (int)-rc, request, capability, reported);
        KvmCall.ThrowKvm(rc, operation, request);
    }
}
