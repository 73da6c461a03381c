// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Kernel.Tracing;

namespace KvmSharp.Tests.Sdk;

/// <summary>Opening and reading binary statistics through <see cref="TracingKernel"/>: the same lines on both kernels.</summary>
public class StatisticsTracingTests : Infrastructure.KernelTest
{
    private static List<string> TraceStats(IKernel kernel)
    {
        var lines = new List<string>();
        using (var tracing = new TracingKernel(kernel, call => lines.Add(call.ToString()), comparable: true))
        using (var kvm = Kvm.Open(tracing))
        using (var vm = kvm.CreateVm())
        using (var vcpu = vm.CreateVcpu())
        using (var stats = vcpu.OpenStatistics())
        {
            _ = stats.ReadValue("exits");
        }
        return lines;
    }

    [KvmFact]
    public void The_stats_descriptor_is_named_and_traced_alike_on_both_kernels()
    {
        var real = TraceStats(LinuxKernel.Instance);
        using var emulated = new EmulatedKernel(HostMatching.LikeThisHostAsItIs());
        var emulator = TraceStats(emulated);
        Assert.Contains(real, l => l.Contains("KVM_GET_STATS_FD", StringComparison.Ordinal) && l.Contains("stats#1", StringComparison.Ordinal));
        Assert.Equal(real, emulator);
    }
}
