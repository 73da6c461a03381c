// SPDX-License-Identifier: MIT
using System.Text.RegularExpressions;
using KvmSharp.Abi;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp caps</c> on this machine's real /dev/kvm: kvm_pvm on Linux 6.18 with no memory attributes and only the
/// default VM type, built with guest_memfd (MMAP|INIT_SHARED) or, on the machines since Dec 2026, without it.
/// </summary>
public sealed class CapsCommandTests
{
    // Which of the two builds this machine is (KVM_CAP_GUEST_MEMFD); everything else is the same on both.
    private static readonly bool HostHasGuestMemfd = KvmSharp.Emulation.HostMatching.HostHasGuestMemfd == true;

    [KvmFact]
    public void Json_reports_the_hosts_guest_memfd_capabilities()
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json"));

        Assert.Equal("linux", caps.Root.GetProperty("kernel").GetString());
        Assert.Equal("kvm_pvm", caps.Module);
        Assert.Equal("default", caps.Root.GetProperty("vmType").GetString());
        Assert.Equal(["default"], caps.VmTypes);

        Assert.Equal(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS, caps.Capability("KVM_CAP_GUEST_MEMFD_FLAGS").GetProperty("number").GetInt32());
        int expectedFlags = HostHasGuestMemfd ? 3 : 0;
        Assert.Equal(expectedFlags, caps.System("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(expectedFlags, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(0, caps.System("KVM_CAP_MEMORY_ATTRIBUTES"));
        Assert.Equal(0, caps.Vm("KVM_CAP_MEMORY_ATTRIBUTES"));
        Assert.Equal(HostHasGuestMemfd ? 1 : 0, caps.Vm("KVM_CAP_GUEST_MEMFD"));

        var flags = caps.Root.GetProperty("guestMemfdFlags");
        Assert.Equal((ulong)expectedFlags, flags.GetProperty("system").GetUInt64());
        Assert.Equal((ulong)expectedFlags, flags.GetProperty("vm").GetUInt64());
        Assert.Equal(HostHasGuestMemfd ? "MMAP|INIT_SHARED" : "none", flags.GetProperty("decoded").GetString());
    }

    [KvmFact]
    public void Json_lists_every_guest_memfd_capability_once_with_its_number()
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json"));

        var numbers = caps.Root.GetProperty("capabilities").EnumerateArray()
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("number").GetInt32());
        Assert.Equal(3, numbers["KVM_CAP_USER_MEMORY"]);
        Assert.Equal(10, numbers["KVM_CAP_NR_MEMSLOTS"]);
        Assert.Equal(81, numbers["KVM_CAP_READONLY_MEM"]);
        Assert.Equal(136, numbers["KVM_CAP_IMMEDIATE_EXIT"]);
        Assert.Equal(231, numbers["KVM_CAP_USER_MEMORY2"]);
        Assert.Equal(232, numbers["KVM_CAP_MEMORY_FAULT_INFO"]);
        Assert.Equal(233, numbers["KVM_CAP_MEMORY_ATTRIBUTES"]);
        Assert.Equal(234, numbers["KVM_CAP_GUEST_MEMFD"]);
        Assert.Equal(235, numbers["KVM_CAP_VM_TYPES"]);
        Assert.Equal(236, numbers["KVM_CAP_PRE_FAULT_MEMORY"]);
        Assert.Equal(244, numbers["KVM_CAP_GUEST_MEMFD_FLAGS"]);
        Assert.Equal(KvmCaps.KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, numbers["KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES"]);
        // FLAGS_HI has no number unless someone configures one, and then there is nothing to ask.
        Assert.DoesNotContain("KVM_CAP_GUEST_MEMFD_FLAGS_HI", numbers.Keys);
    }

    [KvmFact]
    public void Table_decodes_the_guest_memfd_flags_row()
    {
        var run = CliRun.Of("caps");

        Assert.Equal(ExitCodes.Ok, run.ExitCode);
        Assert.Equal("", run.Stderr);
        var row = Assert.Single(run.Stdout.Split('\n'), l => Regex.IsMatch(l, @"\bKVM_CAP_GUEST_MEMFD_FLAGS\s"));
        if (HostHasGuestMemfd)
        {
            Assert.Matches(@"KVM_CAP_GUEST_MEMFD_FLAGS\W+244\W+0x3\W+0x3\W+MMAP\|INIT_SHARED\b", row);
            Assert.DoesNotContain("guest_memfd:       absent", run.Stdout, StringComparison.Ordinal);
        }
        else
        {
            Assert.Matches(@"KVM_CAP_GUEST_MEMFD_FLAGS\W+244\W+0x0\W+0x0\W+none\b", row);
            Assert.Contains("guest_memfd:       absent (KVM_CAP_GUEST_MEMFD = 0", run.Stdout, StringComparison.Ordinal);
        }
        Assert.Contains("KVM module: kvm_pvm", run.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"KVM_CAP_MEMORY_ATTRIBUTES\W+233\W+0x0\W+0x0\W+none\b", run.Stdout);
        Assert.Matches(@"KVM_CAP_VM_TYPES\W+235\W+0x1\W+0x1\W+default\b", run.Stdout);
    }

    [Fact]
    public void Missing_device_is_one_stderr_line_and_exit_code_1()
    {
        var run = CliRun.Of("caps", "--json", "--device", "/nonexistent");

        Assert.Equal(ExitCodes.KernelError, run.ExitCode);
        Assert.Equal("", run.Stdout);
        string line = Assert.Single(run.StderrLines);
        Assert.StartsWith("kvmsharp: cannot open /nonexistent: ENOENT (No such file or directory)", line, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_that_is_not_kvm_is_a_kernel_error_naming_the_ioctl()
    {
        var run = CliRun.Of("caps", "--device", "/dev/null");

        Assert.Equal(ExitCodes.KernelError, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.Equal("kvmsharp: KVM_GET_API_VERSION failed with ENOTTY (Inappropriate ioctl for device)", Assert.Single(run.StderrLines));
    }

    [KvmFact]
    public void A_vm_type_the_host_does_not_list_is_unavailable()
    {
        var run = CliRun.Of("caps", "--vm-type", "snp");

        Assert.Equal(ExitCodes.KernelError, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.Equal("kvmsharp: VM type 'snp' is not supported by this kernel (KVM_CAP_VM_TYPES lists: default)", Assert.Single(run.StderrLines));
    }

    [Theory]
    [InlineData("caps", "--bogus")]
    [InlineData("caps", "--kernel", "xen")]
    [InlineData("caps", "--vm-type", "pkvm")]
    [InlineData("caps", "--arch", "riscv64", "--kernel", "emulated")]
    [InlineData("frobnicate")]
    [InlineData]
    public void Parse_errors_exit_with_2(params string[] args)
    {
        var run = CliRun.Of(args);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.StartsWith("kvmsharp: ", run.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--arch", "x86_64")]
    [InlineData("--in-place-conversion")]
    [InlineData("--no-direct-map")]
    [InlineData("--gmem-write")]
    [InlineData("--kernel-version", "6.8")]
    public void Emulator_only_options_are_usage_errors_on_linux(params string[] options)
    {
        var run = CliRun.Of(["caps", .. options]);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.Equal($"kvmsharp: {options[0]} applies only to --kernel emulated", Assert.Single(run.StderrLines));
    }
}
