// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp caps --kernel emulated --gmem-write</c>: the emulator with "[PATCH v7 1/2] KVM: guest_memfd: add generic
/// population via write" applied, GUEST_MEMFD_FLAG_WRITE (1 &lt;&lt; 3) named in the caps output.
/// </summary>
public sealed class GmemWriteCapsTests
{
    [Theory]
    // v7: WRITE wherever INIT_SHARED is ("!kvm || kvm_arch_supports_gmem_init_shared(kvm)"): 6.18 x86 VMs with private memory have neither.
    [InlineData("default", 0xB, "MMAP|INIT_SHARED|WRITE")]
    [InlineData("sw-protected", 0x1, "MMAP")]
    [InlineData("tdx", 0x1, "MMAP")]
    public void The_flag_is_listed_with_init_shared(string vmType, long vmFlags, string decoded)
    {
        using var caps = new CapsJsonReader(CliRun.Of(
            "caps", "--json", "--kernel", "emulated", "--arch", "x86_64", "--gmem-write", "--vm-type", vmType));

        Assert.Equal("emulated (x86_64, all VM types, 6.18 + guest_memfd write v7)", caps.Module);
        Assert.Equal(0xB, caps.System("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(vmFlags, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(decoded, caps.Root.GetProperty("guestMemfdFlags").GetProperty("vmDecoded").GetString());
        Assert.Equal("MMAP|INIT_SHARED|WRITE", caps.Root.GetProperty("guestMemfdFlags").GetProperty("decoded").GetString());
    }

    [Fact]
    public void With_no_direct_map_both_proposals_keep_their_bits()
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--no-direct-map", "--gmem-write"));

        Assert.Equal("emulated (like this host: x86_64, 6.18 + direct map removal v12 + guest_memfd write v7)", caps.Module);
        Assert.Equal(1, caps.System("KVM_CAP_GUEST_MEMFD"));
        Assert.Equal(0xF, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal("MMAP|INIT_SHARED|NO_DIRECT_MAP|WRITE", caps.Root.GetProperty("guestMemfdFlags").GetProperty("vmDecoded").GetString());
    }

    [Fact]
    public void The_table_decodes_the_flag()
    {
        var run = CliRun.Of("caps", "--kernel", "emulated", "--gmem-write");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("MMAP|INIT_SHARED|WRITE", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void The_series_needs_a_6_18_tree()
    {
        var run = CliRun.Of("caps", "--kernel", "emulated", "--arch", "x86_64", "--gmem-write", "--kernel-version", "6.12");

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal("kvmsharp: --gmem-write needs --kernel-version 6.18 or later (the v7 series is based on 6.18+), not 6.11", Assert.Single(run.StderrLines));
    }
}
