// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp caps --kernel emulated --hugetlb rfc-v2|page-order</c>: the emulator with a guest_memfd HugeTLB
/// proposal, KVM_CAP_GUEST_MEMFD_FLAGS_HI listed (at 251 unless --flags-hi-cap says otherwise) and bit 2 named HUGETLB.
/// </summary>
public sealed class HugetlbCapsTests
{
    [Theory]
    // [RFC PATCH v2]: HUGETLB (bit 2) in FLAGS, the size field 63:58 through FLAGS_HI; the branch: HUGETLB only.
    [InlineData("rfc-v2", 0xFC000000L, "MMAP|INIT_SHARED|HUGETLB|HUGETLB_SIZE(63:58)")]
    [InlineData("page-order", 0L, "MMAP|INIT_SHARED|HUGETLB")]
    public void Flags_and_flags_hi_show_the_encoding(string hugetlb, long hi, string decoded)
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--hugetlb", hugetlb));

        Assert.Equal(0x7, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(hi, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS_HI") & 0xFFFFFFFFL);
        Assert.Equal(251, caps.Capability("KVM_CAP_GUEST_MEMFD_FLAGS_HI").GetProperty("number").GetInt32());
        Assert.Equal(decoded, caps.Root.GetProperty("guestMemfdFlags").GetProperty("vmDecoded").GetString());
    }

    [Fact]
    public void The_flags_hi_number_can_be_chosen()
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--hugetlb", "rfc-v2", "--flags-hi-cap", "300"));

        Assert.Equal(300, caps.Capability("KVM_CAP_GUEST_MEMFD_FLAGS_HI").GetProperty("number").GetInt32());
        Assert.Equal(0xFC000000L, caps.System("KVM_CAP_GUEST_MEMFD_FLAGS_HI") & 0xFFFFFFFFL);
    }

    [Fact]
    public void The_real_kernel_and_no_direct_map_are_refused()
    {
        var run = CliRun.Of("caps", "--kernel", "linux", "--hugetlb", "rfc-v2");
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        run = CliRun.Of("caps", "--kernel", "emulated", "--hugetlb", "rfc-v2", "--no-direct-map");
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("bit 2", Assert.Single(run.StderrLines), StringComparison.Ordinal);
    }
}
