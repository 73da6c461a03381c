// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp caps --kernel emulated --no-direct-map</c>: the emulator with "[PATCH v12 00/16] Direct Map Removal
/// Support for guest_memfd" applied, its flag named in the caps output.
/// </summary>
public sealed class NoDirectMapCapsTests
{
    [Theory]
    // [PATCH v12 08/16]: x86 supports NO_DIRECT_MAP except for TDX and SNP VMs; /dev/kvm always lists it (v12 10/16).
    [InlineData("default", 0x7, "MMAP|INIT_SHARED|NO_DIRECT_MAP")]
    [InlineData("sw-protected", 0x5, "MMAP|NO_DIRECT_MAP")]
    [InlineData("snp", 0x1, "MMAP")]
    [InlineData("tdx", 0x1, "MMAP")]
    public void The_flag_is_listed_per_vm_type(string vmType, long vmFlags, string decoded)
    {
        using var caps = new CapsJsonReader(CliRun.Of(
            "caps", "--json", "--kernel", "emulated", "--arch", "x86_64", "--no-direct-map", "--vm-type", vmType));

        Assert.Equal("emulated (x86_64, all VM types, 6.18 + direct map removal v12)", caps.Module);
        Assert.Equal(0x7, caps.System("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(vmFlags, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(decoded, caps.Root.GetProperty("guestMemfdFlags").GetProperty("vmDecoded").GetString());
    }

    [Fact]
    public void Like_this_host_with_the_series_has_guest_memfd_and_the_flag()
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--no-direct-map"));

        Assert.Equal("emulated (like this host: x86_64, 6.18 + direct map removal v12)", caps.Module);
        Assert.Equal(1, caps.System("KVM_CAP_GUEST_MEMFD"));
        Assert.Equal(0x7, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
    }

    [Fact]
    public void Without_the_option_the_emulator_does_not_list_it()
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "x86_64"));

        Assert.Equal(0x3, caps.System("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(0x3, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
    }

    [Fact]
    public void The_series_needs_a_6_18_tree()
    {
        var run = CliRun.Of("caps", "--kernel", "emulated", "--arch", "x86_64", "--no-direct-map", "--kernel-version", "6.12");

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal("kvmsharp: --no-direct-map needs --kernel-version 6.18 or later (the v12 series is based on 6.18+), not 6.11", Assert.Single(run.StderrLines));
    }
}

/// <summary><c>kvmsharp run … --kernel emulated --no-direct-map</c>: the micro-VM's guest_memfd leaves the direct map
/// (MicroVmOptions.DirectMap defaults to RemoveIfOffered) and the JSON says so.</summary>
public sealed class NoDirectMapRunTests
{
    [Theory]
    [InlineData(true, "removed")]
    [InlineData(false, "kept")]
    public void Run_json_says_whether_guest_memory_left_the_direct_map(bool proposal, string expected)
    {
        string[] args = proposal
            ? ["run", "sum", "--json", "--kernel", "emulated", "--arch", "x86_64", "--no-direct-map"]
            : ["run", "sum", "--json", "--kernel", "emulated", "--arch", "x86_64"];
        var run = CliRun.Of(args);
        Assert.True(run.ExitCode == 0, run.Stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(run.Stdout);
        Assert.Equal(5050UL, doc.RootElement.GetProperty("result").GetUInt64());
        Assert.Equal("guest_memfd", doc.RootElement.GetProperty("memory").GetString());
        Assert.Equal(expected, doc.RootElement.GetProperty("direct_map").GetString());
    }
}
