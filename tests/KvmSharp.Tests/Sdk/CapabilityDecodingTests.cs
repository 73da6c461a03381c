// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Tests.Sdk;

/// <summary>Decoding of capability values, independent of any kernel.</summary>
public class CapabilityDecodingTests
{
    [Fact]
    public void Flags_without_a_hi_capability_come_from_the_low_32_bits_only()
    {
        var asked = new List<int>();
        var flags = Capabilities.GuestMemfdFlags(cap => { asked.Add(cap); return 0x3; }, flagsHiCap: null);
        Assert.Equal(GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared, flags);
        Assert.Equal([KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS], asked);
    }

    [Fact]
    public void Hi_capability_supplies_bits_63_to_32_and_bit_31_does_not_sign_extend()
    {
        // The kernel returns an int: bit 31 arrives as a negative value.
        var flags = Capabilities.GuestMemfdFlags(cap => cap switch
        {
            KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS => unchecked((int)0x80000001),
            300 => 0x5,
            _ => 0,
        }, flagsHiCap: 300);
        Assert.Equal(0x0000_0005_8000_0001UL, (ulong)flags);
    }

    [Fact]
    public void Unknown_flag_bits_stay_visible_in_the_kernel_string()
    {
        var flags = GuestMemfdFlags.Mmap | (GuestMemfdFlags)(1UL << 40) | (GuestMemfdFlags)0x10;
        Assert.Equal("MMAP|0x10000000010", flags.ToKernelString());
        Assert.Equal("0", GuestMemfdFlags.None.ToKernelString());
    }

    [Fact]
    public void Vm_types_mask_decodes_to_types_and_zero_means_default_only()
    {
        Assert.Equal([VmType.Default], Capabilities.VmTypes(0));
        Assert.Equal([VmType.Default, VmType.SwProtected, VmType.Tdx], Capabilities.VmTypes(0b100011));
    }
}
