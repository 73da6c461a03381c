// SPDX-License-Identifier: MIT
using KvmSharp.Cli.Commands;
using KvmSharp.Kernel;

namespace KvmSharp.Cli.Tests;

/// <summary>The decoding and messages the caps table is made of, checked against values this host cannot show.</summary>
public sealed class HelperTests
{
    [Theory]
    [InlineData(CapabilityMeaning.GuestMemfdFlags, 0x3L, "MMAP|INIT_SHARED")]
    [InlineData(CapabilityMeaning.GuestMemfdFlags, 0x1L, "MMAP")]
    [InlineData(CapabilityMeaning.GuestMemfdFlags, 0x0L, "none")]
    [InlineData(CapabilityMeaning.GuestMemfdFlags, 0x11L, "MMAP|0x10")]
    [InlineData(CapabilityMeaning.GuestMemfdFlagsHigh, 0x1L, "0x100000000")]
    [InlineData(CapabilityMeaning.MemoryAttributes, 0x8L, "PRIVATE")]
    [InlineData(CapabilityMeaning.MemoryAttributes, 0x0L, "none")]
    [InlineData(CapabilityMeaning.VmTypes, 0x33L, "default, sw-protected, snp, tdx")]
    [InlineData(CapabilityMeaning.VmTypes, 0x0L, "absent (default only)")]
    [InlineData(CapabilityMeaning.Boolean, 0x1L, "yes")]
    [InlineData(CapabilityMeaning.Boolean, 0x0L, "no")]
    [InlineData(CapabilityMeaning.Slots, 0x7FFCL, "32764 slots")]
    public void Capability_values_decode_to_kernel_names(CapabilityMeaning meaning, long value, string expected) =>
        Assert.Equal(expected, CapabilityDecoder.Decode(meaning, value));

    [Fact]
    public void Bit_31_of_the_flags_does_not_sign_extend()
    {
        // KVM_CHECK_EXTENSION returns an int; 0x80000000 comes back negative.
        Assert.Equal("0x80000000", CapabilityDecoder.Decode(CapabilityMeaning.GuestMemfdFlags, int.MinValue));
        Assert.Equal("0x80000000", CapabilityDecoder.Hex(int.MinValue));
    }

    [Fact]
    public void A_refused_open_is_one_line_with_the_errno_name_and_a_hint()
    {
        var error = new KvmException("open", (int)Errno.EACCES, "path=/dev/kvm flags=O_RDWR|O_CLOEXEC");

        Assert.Equal("cannot open /dev/kvm: EACCES (Permission denied) — are you in the kvm group?", KvmErrors.OneLine(error));
    }

    [Fact]
    public void The_module_is_the_vendor_module_when_one_is_loaded()
    {
        string sys = Directory.CreateTempSubdirectory("kvmsharp-sysmodule").FullName;
        try
        {
            Assert.Equal("none", KvmModule.Detect(sys));
            Directory.CreateDirectory(Path.Combine(sys, "kvm"));
            Assert.Equal("kvm", KvmModule.Detect(sys));
            Directory.CreateDirectory(Path.Combine(sys, "kvm_amd"));
            Assert.Equal("kvm_amd", KvmModule.Detect(sys));
        }
        finally
        {
            Directory.Delete(sys, recursive: true);
        }
    }

    [Fact]
    public void Vm_type_names_round_trip()
    {
        foreach (string name in VmTypeNames.All)
            Assert.Equal(name, VmTypeNames.NameOf(VmTypeNames.Parse(name)));
        Assert.Equal("type 9", VmTypeNames.NameOf((VmType)9));
    }
}
