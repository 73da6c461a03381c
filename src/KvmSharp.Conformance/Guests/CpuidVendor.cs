// SPDX-License-Identifier: MIT
namespace KvmSharp.Conformance.Guests;

/// <summary>The vendor a CPUID table's leaf 0 names, as the kernel reads it.</summary>
internal static class CpuidVendor
{
    /// <summary>
    /// cpuid.h guest_cpuid_is_amd_compatible: "AuthenticAMD", "AMDisbetter!" or "HygonGenuine" (EBX, EDX, ECX). On
    /// KVM_GET_SUPPORTED_CPUID's table it is the host CPU's vendor, which KVM passes through.
    /// </summary>
    public static bool IsAmdCompatible(IReadOnlyList<CpuidEntry> table)
    {
        var l0 = table.FirstOrDefault(e => e.Function == 0);
        return (l0.Ebx, l0.Edx, l0.Ecx) is (0x6874_7541, 0x6974_6e65, 0x444d_4163) or (0x6944_4d41, 0x7465_6273, 0x2172_6574)
            or (0x6f67_7948, 0x6e65_476e, 0x656e_6975);
    }
}
