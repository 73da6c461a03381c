// SPDX-License-Identifier: MIT
using KvmSharp.Conformance;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

public class TinyGuestRunTests(ITestOutputHelper output)
{
    private static string[] RunAll(IKernel kernel, int mode, int count)
    {
        using var session = new KernelSession(kernel);
        Assert.Equal("ok fd", session.Apply(new FuzzOp(OpKind.OpenKvm, Result: 0)));
        return Enumerable.Range(1, count).Select(seed => session.Apply(new FuzzOp(OpKind.GuestRun, Target: 0, A: (ulong)seed, E: mode))).ToArray();
    }

    [KvmTheory]
    [InlineData(0)]
    [InlineData(1)]
    public void Tiny_guests_reach_hlt_through_mmio_and_port_io_and_agree_on_both_kernels(int mode)
    {
        const int Count = 40;
        string[] linux = RunAll(LinuxKernel.Instance, mode, Count);
        string[] emulated = RunAll(KernelTarget.Emulated.CreateKernel(EmulatedProfile.LikeThisHost), mode, Count);
        for (int i = 0; i < Count; i++)
        {
            output.WriteLine($"seed {i + 1}: {linux[i]}");
            Assert.True(linux[i] == emulated[i], $"seed {i + 1}\nlinux:    {linux[i]}\nemulated: {emulated[i]}");
        }
        // A generator whose guests all failed at setup would agree and test nothing: the programs must run, exit for
        // MMIO and port I/O, and end in HLT.
        Assert.All(linux, r => Assert.Contains("hlt |", r, StringComparison.Ordinal));
        Assert.Contains(linux, r => r.Contains("mmio read", StringComparison.Ordinal));
        Assert.Contains(linux, r => r.Contains("mmio write", StringComparison.Ordinal));
        Assert.Contains(linux, r => r.Contains("out port=", StringComparison.Ordinal));
        Assert.Contains(linux, r => r.Contains("in port=", StringComparison.Ordinal));
    }
}
