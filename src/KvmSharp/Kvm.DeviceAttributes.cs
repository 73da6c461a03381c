// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

public sealed partial class Kvm
{
    /// <summary>
    /// KVM_HAS_DEVICE_ATTR on /dev/kvm (x86, Linux 5.17+): whether the kernel has the system attribute
    /// <paramref name="attribute"/> of <paramref name="group"/> (<see cref="KvmConstants.KVM_X86_GRP_SYSTEM"/>,
    /// <see cref="KvmConstants.KVM_X86_GRP_SEV"/>).
    /// </summary>
    /// <returns>true when the kernel answers 0, false when it answers ENXIO.</returns>
    /// <exception cref="KvmException">Any other error (EINVAL: a kernel or architecture without them).</exception>
    public bool HasDeviceAttribute(uint group, ulong attribute) =>
        DeviceAttribute.Has(Kernel, Handle, group, attribute, "/dev/kvm");

    /// <summary>
    /// The XCR0 bits (XSAVE features) KVM lets a guest use: KVM_GET_DEVICE_ATTR of KVM_X86_GRP_SYSTEM /
    /// KVM_X86_XCOMP_GUEST_SUPP on /dev/kvm (kvm_caps.supported_xcr0: 0x207 x87|SSE|AVX|PKRU on EPYC Milan, 0xe7 with
    /// AVX-512 on Genoa). A VMM offers a guest no more in CPUID leaf 0xD; KVM_SET_XSAVE refuses an image with other
    /// components.
    /// </summary>
    /// <exception cref="KvmCapabilityException">The kernel is older than 5.17 or not x86 (no such attribute).</exception>
    /// <exception cref="KvmException">Another error.</exception>
    public ulong GetSupportedXsaveFeatures()
    {
        var value = new PinnedArray<ulong>(1);
        long rc = DeviceAttribute.Transfer(Kernel, Handle, set: false, KvmConstants.KVM_X86_GRP_SYSTEM, KvmConstants.KVM_X86_XCOMP_GUEST_SUPP, value);
        if (KvmCall.IsError(rc)) DeviceAttribute.Throw(rc, set: false, "/dev/kvm KVM_X86_XCOMP_GUEST_SUPP", "KVM_X86_XCOMP_GUEST_SUPP", 0);
        return value.Span[0];
    }
}
