// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Cli.Commands;

/// <summary>Turns raw KVM_CHECK_EXTENSION values into words (0x3 → MMAP|INIT_SHARED, 0x8 → PRIVATE).</summary>
public static class CapabilityDecoder
{
    public static string Decode(CapabilityMeaning meaning, long value) => meaning switch
    {
        CapabilityMeaning.Boolean => value != 0 ? "yes" : "no",
        CapabilityMeaning.Slots => value == 0 ? "no" : $"{value} slots",
        CapabilityMeaning.VmTypes => value == 0
            ? "absent (default only)"
            : string.Join(", ", Capabilities.VmTypes(value).Select(VmTypeNames.NameOf)),
        CapabilityMeaning.MemoryAttributes => MemoryAttributes((ulong)value),
        // KVM_CHECK_EXTENSION returns an int: each half is 32 bits, read unsigned so bit 31 cannot sign-extend.
        CapabilityMeaning.GuestMemfdFlags => Flags((GuestMemfdFlags)(uint)value),
        CapabilityMeaning.GuestMemfdFlagsHigh => Flags((GuestMemfdFlags)((ulong)(uint)value << 32)),
        CapabilityMeaning.GuestMemfdFlagsHugetlb => Flags((GuestMemfdFlags)(uint)value, GuestMemfdHugetlbEncoding.RfcV2FlagBits),
        CapabilityMeaning.GuestMemfdFlagsHighHugetlb => Flags((GuestMemfdFlags)((ulong)(uint)value << 32), GuestMemfdHugetlbEncoding.RfcV2FlagBits),
        _ => Hex(value),
    };

    /// <summary>A flag set in the kernel's spelling, "none" for the empty set.</summary>
    public static string Flags(GuestMemfdFlags flags) => flags == GuestMemfdFlags.None ? "none" : flags.ToKernelString();

    /// <summary><see cref="Flags(GuestMemfdFlags)"/> naming bit 2 HUGETLB when <paramref name="hugetlb"/> is a proposal.</summary>
    public static string Flags(GuestMemfdFlags flags, GuestMemfdHugetlbEncoding hugetlb) =>
        flags == GuestMemfdFlags.None ? "none" : flags.ToKernelString(hugetlb);

    /// <summary>The raw value as the table shows it (0x3); negative values keep their 32-bit two's complement.</summary>
    public static string Hex(long value) => value < 0 ? $"0x{(uint)value:X}" : $"0x{value:X}";

    private static string MemoryAttributes(ulong value)
    {
        if (value == 0) return "none";
        var parts = new List<string>();
        if ((value & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0) parts.Add("PRIVATE");
        ulong rest = value & ~KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE;
        if (rest != 0) parts.Add($"0x{rest:X}");
        return string.Join('|', parts);
    }
}
