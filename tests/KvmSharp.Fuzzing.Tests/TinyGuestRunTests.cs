// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
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
    [InlineData(0 | FuzzOp.GuestRunInHostMemory)]
    [InlineData(1 | FuzzOp.GuestRunInHostMemory)]
    public void Tiny_guests_reach_hlt_through_mmio_and_port_io_and_agree_on_both_kernels(int mode)
    {
        bool hostMemory = (mode & FuzzOp.GuestRunInHostMemory) != 0;
        Skip.If(!hostMemory && HostMatching.HostHasGuestMemfd == false,
            "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0): the same guests run in host memory instead");
        const int Count = 40;
        string[] linux = RunAll(FuzzKernels.Real(), mode, Count);
        string[] emulated = RunAll(FuzzKernels.EmulatorLikeThisMachine(), mode, Count);
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

    [KvmFact]
    public void Guests_that_change_rings_and_run_ins_agree_on_both_kernels()
    {
        // 64-bit seeds whose ring stream draws ring changes (TinyGuestProgram.RingStream): IRETQ/SYSRETQ to ring 3, back
        // through #GP or #PF, REP INS batches; every run ends in HLT with the last exception frame compared.
        ulong[] seeds = Enumerable.Range(1, 200).Select(s => (ulong)s).Where(s => TinyGuestProgram.RingStream(s) is not null).Take(30).ToArray();
        string[] Run(IKernel kernel)
        {
            using var session = new KernelSession(kernel);
            Assert.Equal("ok fd", session.Apply(new FuzzOp(OpKind.OpenKvm, Result: 0)));
            return seeds.Select(seed => session.Apply(new FuzzOp(OpKind.GuestRun, Target: 0, A: seed, E: FuzzOp.GuestRunInHostMemory))).ToArray();
        }
        string[] linux = Run(FuzzKernels.Real());
        string[] emulated = Run(FuzzKernels.EmulatorLikeThisMachine());
        for (int i = 0; i < seeds.Length; i++)
        {
            output.WriteLine($"seed {seeds[i]}: {linux[i]}");
            Assert.True(linux[i] == emulated[i], $"seed {seeds[i]}\nlinux:    {linux[i]}\nemulated: {emulated[i]}");
        }
        Assert.All(linux, r => Assert.Contains("hlt |", r, StringComparison.Ordinal));
        Assert.All(linux, r => Assert.Contains(" rsp0=", r, StringComparison.Ordinal));
        Assert.Contains(linux, r => System.Text.RegularExpressions.Regex.IsMatch(r, "in port=0x[0-9A-F]+ size=\\d count=([2-9]|\\d\\d)"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void A_guest_gives_the_same_result_in_host_memory_as_in_a_guest_memfd(int mode)
    {
        // The emulator with guest_memfd runs both: the backing must not change what the program does (so a host
        // without guest_memfd fuzzes the same CPU model).
        const int Count = 20;
        string[] gmem = RunAll(new EmulatedKernel(EmulatorConfig.LikeThisHost()), mode, Count);
        string[] host = RunAll(new EmulatedKernel(EmulatorConfig.LikeThisHost()), mode | FuzzOp.GuestRunInHostMemory, Count);
        for (int i = 0; i < Count; i++) Assert.True(gmem[i] == host[i], $"seed {i + 1}\nguest_memfd: {gmem[i]}\nhost memory: {host[i]}");
        Assert.All(host, r => Assert.Contains("hlt |", r, StringComparison.Ordinal));
    }
}
