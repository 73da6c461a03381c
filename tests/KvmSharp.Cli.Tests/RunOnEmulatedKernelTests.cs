// SPDX-License-Identifier: MIT
using System.Text.Json;
using KvmSharp.Cli.Commands;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Cli.Tests;

/// <summary><c>run --kernel emulated …</c>: the same sandbox on the emulated kernel, including what this host lacks.</summary>
public sealed class RunOnEmulatedKernelTests
{
    [Fact]
    public void Run_sum_on_the_emulated_kernel_gives_the_same_json_as_on_the_real_one()
    {
        var run = CliRun.Of("run", "sum", "--json", "--kernel", "emulated");
        Assert.Equal(0, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        Assert.Equal("exit", doc.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(5050UL, doc.RootElement.GetProperty("result").GetUInt64());
    }

    [Fact]
    public void A_cpu_exception_on_the_emulated_kernel_has_the_same_json_fields()
    {
        var run = CliRun.Of("run", "pagefault", "--json", "--kernel", "emulated");
        Assert.Equal(RunCommand.GuestDidNotExit, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        JsonElement root = doc.RootElement;
        Assert.Equal("exception", root.GetProperty("outcome").GetString());
        Assert.Equal((14, 0x2UL, Misbehaving.UnmappedAddress, Misbehaving.PageFaultImage().Resolve(Misbehaving.FaultSymbol)),
            (root.GetProperty("vector").GetInt32(), root.GetProperty("error_code").GetUInt64(), root.GetProperty("cr2").GetUInt64(), root.GetProperty("rip").GetUInt64()));
    }

    [Fact]
    public void Run_vault_on_sw_protected_with_in_place_conversion_keeps_the_secret_from_the_host()
    {
        var run = CliRun.Of("run", "vault", "--kernel", "emulated", "--arch", "x86_64", "--vm-type", "sw-protected", "--in-place-conversion");
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("refused, the page is private", run.Stdout, StringComparison.Ordinal);
        Assert.Contains($"read \"{Vault.Secret}\"", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("exit status 0", run.Stdout, StringComparison.Ordinal);

        var json = CliRun.Of("run", "vault", "--json", "--kernel", "emulated", "--arch", "x86_64", "--vm-type", "sw-protected", "--in-place-conversion");
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.Equal(2, doc.RootElement.GetProperty("conversions").GetInt32());
        Assert.Equal(2, doc.RootElement.GetProperty("host_calls").GetInt32());
    }

    [Fact]
    public void Run_vault_without_private_memory_exits_with_its_status_and_says_why()
    {
        var run = CliRun.Of("run", "vault", "--kernel", "emulated");
        Assert.Equal(Vault.NoPrivateMemory, run.ExitCode);
        Assert.Contains("no private memory", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_vm_type_the_emulated_host_lacks_is_one_clear_line()
    {
        var run = CliRun.Of("run", "vault", "--kernel", "emulated", "--vm-type", "tdx");
        Assert.NotEqual(0, run.ExitCode);
        Assert.NotEqual(RunCommand.GuestDidNotExit, run.ExitCode);
        Assert.Single(run.StderrLines);
        Assert.Contains("KVM_CAP_VM_TYPES", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("--arch x86_64", run.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("6.1")]
    [InlineData("6.8")]
    [InlineData("6.12")]
    public void On_a_release_before_6_18_the_sandbox_runs_in_host_memory_and_says_why(string release)
    {
        // Before 6.18 guest_memfd cannot be mapped (and before 6.8 there is none, nor KVM_SET_USER_MEMORY_REGION2:
        // the SDK binds host memory with the legacy ioctl), so auto falls back and names what is missing.
        var run = CliRun.Of("run", "sum", "--json", "--kernel", "emulated", "--arch", "x86_64", "--kernel-version", release);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        using var doc = JsonDocument.Parse(run.Stdout);
        Assert.Equal(5050UL, doc.RootElement.GetProperty("result").GetUInt64());
        Assert.Equal("host", doc.RootElement.GetProperty("memory").GetString());
        string note = Assert.Single(run.StderrLines);
        Assert.EndsWith("(--memory guest-memfd refuses; a guest_memfd-only micro-VM needs Linux 6.18 or later (GUEST_MEMFD_FLAG_MMAP))", note, StringComparison.Ordinal);

        var refused = CliRun.Of("run", "sum", "--kernel", "emulated", "--arch", "x86_64", "--kernel-version", release, "--memory", "guest-memfd");
        Assert.Equal(ExitCodes.KernelError, refused.ExitCode);
        Assert.Empty(refused.Stdout);
    }
}
