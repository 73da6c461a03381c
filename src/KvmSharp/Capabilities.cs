// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>Capability queries shared by /dev/kvm and VM descriptors.</summary>
public static class Capabilities
{
    /// <summary>KVM_CHECK_EXTENSION: 0 when absent, the raw (possibly negative 32-bit) value otherwise.</summary>
    public static long Check(IKernel kernel, KernelFd fd, int capability)
    {
        long rc = kernel.Ioctl(fd, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)capability);
        return KvmCall.Check(rc, "KVM_CHECK_EXTENSION", $"cap={KvmCaps.NameOf(capability) ?? "?"} ({capability}) on {fd}");
    }

    /// <summary>
    /// Combines KVM_CAP_GUEST_MEMFD_FLAGS (bits 31:0, returned through an int) with KVM_CAP_GUEST_MEMFD_FLAGS_HI
    /// (bits 63:32, when <paramref name="flagsHiCap"/> names it) as Sean Christopherson proposes in the seed 000 thread:
    /// <c>check(FLAGS) | check(FLAGS_HI) &lt;&lt; 32</c>. Both halves are read as unsigned 32-bit values so bit 31
    /// cannot sign-extend into the high half.
    /// </summary>
    public static GuestMemfdFlags GuestMemfdFlags(Func<int, long> check, int? flagsHiCap)
    {
        ulong lo = (uint)check(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS);
        ulong hi = flagsHiCap is int capHi ? (uint)check(capHi) : 0;
        return (GuestMemfdFlags)(lo | (hi << 32));
    }

    /// <summary>Decodes the KVM_CAP_VM_TYPES bitmask; 0 means the cap is absent and only the default type exists.</summary>
    public static IReadOnlyList<VmType> VmTypes(long mask)
    {
        if (mask == 0) return [VmType.Default];
        var types = new List<VmType>();
        for (int bit = 0; bit < 32; bit++)
        {
            if ((mask & (1L << bit)) != 0) types.Add((VmType)bit);
        }
        return types;
    }
}
