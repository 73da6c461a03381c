// SPDX-License-Identifier: MIT
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;

namespace KvmSharp.Emulation.Tests;

/// <summary>The tests' bounded KVM_RUN: a guest without an exit path fails its test instead of hanging the run.</summary>
public sealed class BoundedRunTests
{
    [Fact]
    public void A_guest_that_never_exits_fails_the_test_after_the_limit_and_leaves_the_vcpu_runnable()
    {
        // An endless loop ("b ."), then a "done" ucall it never reaches.
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseN1, 0x1400_0000);
        var v = s.AddVcpu();
        var failure = Assert.Throws<Xunit.Sdk.FailException>(() => v.RunBounded(TimeSpan.FromMilliseconds(200)));
        Assert.Contains("did not return within 0.2 s", failure.Message, StringComparison.Ordinal);
        Assert.False(v.ImmediateExit);
        Assert.Equal(Arm64Guest.CodeGpa, v.GetPc());
    }

    [Fact]
    public void A_guest_that_exits_in_time_returns_its_exit()
    {
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseN1, 0xD503_201F); // NOP, then "done"
        var v = s.AddVcpu();
        Assert.Equal(Abi.KvmExitReason.KVM_EXIT_MMIO, v.RunBounded(TimeSpan.FromSeconds(60)).Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmSharp.Abi.Arm64.KvmArm64Regs.X(9)));
    }
}
