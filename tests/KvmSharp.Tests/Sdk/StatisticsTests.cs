// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// Vm.OpenStatistics / Vcpu.OpenStatistics (KVM_GET_STATS_FD) on every kernel: what the SDK reads once, what it reads
/// on demand, lookups, and its typed errors. The file's own rules are conformance cases
/// (KvmSharp.Conformance/Cases/BinaryStatsRules.cs).
/// </summary>
public class StatisticsTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Vm_and_vcpu_statistics_name_their_owner_and_decode_their_descriptors(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(2);
        int tid = kvm.Kernel.GetTid();
        using var vmStats = vm.OpenStatistics();
        using var vcpuStats = vcpu.OpenStatistics();
        Assert.Equal($"kvm-{tid}", vmStats.Id);
        Assert.Equal($"kvm-{tid}/vcpu-2", vcpuStats.Id);
        Assert.Equal(vmStats.Descriptors.Count, (int)vmStats.Header.num_desc);
        var flush = vmStats.GetDescriptor("remote_tlb_flush");
        Assert.Equal((KvmStatisticKind.Cumulative, KvmStatisticUnit.None, KvmStatisticBase.Pow10, (short)0, 1), (flush.Kind, flush.Unit, flush.Base, flush.Exponent, flush.Size));
        var waitNs = vcpuStats.GetDescriptor("halt_wait_ns");
        Assert.Equal((KvmStatisticKind.Cumulative, KvmStatisticUnit.Seconds, (short)-9), (waitNs.Kind, waitNs.Unit, waitNs.Exponent));
        var hist = vcpuStats.GetDescriptor("halt_wait_hist");
        Assert.True(hist.IsHistogram);
        Assert.Equal((KvmStatisticKind.LogHistogram, 32, 0u), (hist.Kind, hist.Size, hist.BucketSize));
        var snapshot = vcpuStats.Read();
        Assert.Equal(vcpuStats.ValueCount, snapshot.Values.Length);
        Assert.Equal(32, snapshot.GetValues("halt_wait_hist").Length);
        Assert.Equal(snapshot.Values[(int)(hist.Offset / 8)], snapshot[hist]);
        Assert.Throws<KeyNotFoundException>(() => snapshot["no_such_statistic"]);
        Assert.False(snapshot.TryGetValue("no_such_statistic", out _));
        Assert.False(vcpuStats.TryGetDescriptor("no_such_statistic", out _));
        Assert.Throws<ArgumentException>(() => vmStats.ReadInto(snapshot));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Values_are_read_on_demand_and_a_reused_snapshot_allocates_nothing(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var memory = vm.AllocateMemory(0x10000);
        memory.Write(0x1000, RealMode.Assemble(0x1000, a =>
        {
            a.hlt();
            a.hlt();
        }));
        using var slot = vm.AddMemorySlot(0, 0, memory);
        using var vcpu = vm.CreateVcpu();
        RealMode.StartAt(vcpu, 0x1000);
        using var stats = vcpu.OpenStatistics();
        var snapshot = stats.Read();
        Assert.Equal(0UL, snapshot["halt_exits"]);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);
        // The snapshot holds the values of its read; a new read sees the HLT.
        Assert.Equal(0UL, snapshot["halt_exits"]);
        Assert.Equal(1UL, stats.ReadValue("halt_exits"));
        stats.ReadInto(snapshot);
        Assert.Equal(1UL, snapshot["halt_exits"]);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++) stats.ReadInto(snapshot);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(2UL, snapshot["halt_exits"]);
        Assert.True(allocated == 0, $"100 reads into a snapshot allocated {allocated} bytes");
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Dispose_closes_the_stats_descriptor(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        var stats = vm.OpenStatistics();
        stats.Dispose();
        Assert.True(stats.Handle.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => stats.ReadValue("remote_tlb_flush"));
    }

    /// <summary>A kernel whose KVM_GET_STATS_FD answers <paramref name="errno"/> and KVM_CHECK_EXTENSION(203) <paramref name="cap"/>.</summary>
    private sealed class RefusingKernel(IKernel inner, Errno errno, long cap) : DelegatingKernel(inner)
    {
        public override long Ioctl(KernelFd fd, uint request, ulong arg)
        {
            if (request == KvmIoctls.KVM_GET_STATS_FD) return -(long)errno;
            if (request == KvmIoctls.KVM_CHECK_EXTENSION && arg == KvmCaps.KVM_CAP_BINARY_STATS_FD) return cap;
            return base.Ioctl(fd, request, arg);
        }
    }

    [Fact]
    public void A_kernel_without_binary_stats_names_the_capability()
    {
        using var inner = Kvm.Open(Kernels.Create("emulated"));
        using var kvm = Kvm.Open(new RefusingKernel(inner.Kernel, Errno.ENOTTY, 0));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var ex = Assert.Throws<KvmCapabilityException>(() => vcpu.OpenStatistics());
        Assert.Equal(("KVM_GET_STATS_FD", Errno.ENOTTY, nameof(KvmCaps.KVM_CAP_BINARY_STATS_FD), 0L, "vcpu 0"), (ex.Operation, ex.Errno, ex.Capability, ex.Reported, ex.Request));
    }

    [Fact]
    public void Other_refusals_are_kvm_exceptions_with_the_errno()
    {
        using var inner = Kvm.Open(Kernels.Create("emulated"));
        using var kvm = Kvm.Open(new RefusingKernel(inner.Kernel, Errno.EMFILE, 1));
        using var vm = kvm.CreateVm();
        var ex = AssertErrno(Errno.EMFILE, () => vm.OpenStatistics());
        Assert.IsNotType<KvmCapabilityException>(ex);
        Assert.Equal(("KVM_GET_STATS_FD", "VM"), (ex.Operation, ex.Request));
    }

    /// <summary>A kernel whose stats files show a header with name_size 0 (or end after the header).</summary>
    private sealed class CorruptStatsKernel(IKernel inner, bool truncate) : DelegatingKernel(inner)
    {
        public override long Pread(KernelFd fd, Span<byte> buffer, long offset)
        {
            long rc = base.Pread(fd, buffer, offset);
            if (truncate && offset >= 24) return 0;
            if (!truncate && offset == 0 && rc >= 8) buffer[4..8].Clear();
            return rc;
        }
    }

    [Theory]
    [InlineData(false, "malformed stats header")]
    [InlineData(true, "end of file")]
    public void A_corrupt_file_is_an_eio_kvm_exception_and_its_descriptor_is_closed(bool truncate, string says)
    {
        using var emulated = new Emulation.EmulatedKernel(Emulation.EmulatorConfig.LikeThisHost());
        using var kvm = Kvm.Open(new CorruptStatsKernel(emulated, truncate));
        using var vm = kvm.CreateVm();
        int open = emulated.OpenFdCount;
        var ex = AssertErrno(Errno.EIO, () => vm.OpenStatistics());
        Assert.Contains(says, ex.Message, StringComparison.Ordinal);
        Assert.Equal(open, emulated.OpenFdCount);
    }
}
