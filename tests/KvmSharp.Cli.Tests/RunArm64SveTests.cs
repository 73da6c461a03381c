// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>run … --kernel emulated --arch arm64 --sve BITS</c>: the arm64 micro-VM's vCPU gets SVE at that vector length
/// (MicroVmOptions.Arm64SveVectorBits; the emulated host is then the Neoverse V2-like one with SVE2 for 128 bits, else
/// the V1-like one, 128 and 256 bits); a length
/// it does not offer and an x86-64 micro-VM are usage errors naming what was asked. The SVE code itself runs in
/// KvmSharp.Vmm.Tests' Arm64SveMicroVmTests.
/// </summary>
public sealed class RunArm64SveTests
{
    [Theory]
    [InlineData("128")]
    [InlineData("256")]
    public void A_guest_runs_on_an_sve_vcpu_of_an_offered_length(string bits)
    {
        var run = CliRun.Of("run", "hello", "--kernel", "emulated", "--arch", "arm64", "--sve", bits);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains(Hello.Greeting, run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_length_the_kernel_does_not_offer_is_a_usage_error_naming_it()
    {
        var run = CliRun.Of("run", "hello", "--kernel", "emulated", "--arch", "arm64", "--sve", "512");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("512", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("128, 256", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Sve_on_an_x86_micro_vm_is_a_usage_error()
    {
        var run = CliRun.Of("run", "hello", "--kernel", "emulated", "--arch", "x86_64", "--sve", "256");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("SVE is an arm64 feature", run.Stderr, StringComparison.Ordinal);
    }
}
