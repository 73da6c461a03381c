// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>What <see cref="OpKind.DeviceAttr"/> draws: the request in E's low bits, and whether the value read is compared.</summary>
public static class DeviceAttrOps
{
    /// <summary>E: KVM_HAS_DEVICE_ATTR.</summary>
    public const int Has = 0;

    /// <summary>E: KVM_GET_DEVICE_ATTR.</summary>
    public const int Get = 1;

    /// <summary>E: KVM_SET_DEVICE_ATTR of U (written to the value pointer's page first when it is the scratch).</summary>
    public const int Set = 2;

    /// <summary>
    /// E bit: a GET on /dev/kvm — its value (kvm_caps.supported_xcr0) is compared. A vCPU's TSC offset is not:
    /// kvm_pvm keeps it at 0 (HostDeviations.KvmPvmTscOffsetFixed), upstream and the emulator start each VM's TSC at 0.
    /// </summary>
    public const int ShowValue = 4;

    /// <summary>The request of <paramref name="e"/>.</summary>
    public static int Request(int e) => e & 3;
}
