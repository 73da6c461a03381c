// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="WarmVcpuHold"/> holds exactly one VM and one vCPU and gives them back on dispose; micro-VMs come and go
/// beside it as without it. (What it saves is timed by the benchmarks' lifecycle probe, not here.) In the descriptor
/// tests' collection: the real kernel's /proc/self/fd counts are exact only while no other test opens KVM objects.
/// </summary>
[Collection(nameof(FdLeakTests))]
public sealed class WarmVcpuHoldTests
{
    [KvmFact]
    public void Holds_one_vm_and_one_vcpu_on_the_real_kernel_until_disposed()
    {
        using var kvm = Kvm.Open();
        var fdsBefore = KvmFds.Kvm();
        int mapsBefore = KvmFds.KvmMappings();
        using (WarmVcpuHold.Acquire(kvm))
        {
            var held = KvmFds.Kvm().Except(fdsBefore).ToList();
            Assert.Equal(2, held.Count);
            Assert.Single(held, fd => fd.EndsWith("anon_inode:kvm-vm", StringComparison.Ordinal));
            Assert.Single(held, fd => fd.Contains("anon_inode:kvm-vcpu", StringComparison.Ordinal));
            Assert.Equal(mapsBefore + 1, KvmFds.KvmMappings()); // the vCPU's kvm_run
        }
        Assert.Empty(KvmFds.Kvm().Except(fdsBefore));
        Assert.Equal(mapsBefore, KvmFds.KvmMappings());
    }

    [Fact]
    public void Holds_one_vm_and_one_vcpu_on_the_emulated_kernel_until_disposed()
    {
        using var k = TestKernel.Emulated();
        int fdsBefore = k.Emulator!.OpenFdCount;
        using (WarmVcpuHold.Acquire(k.Kvm))
        {
            Assert.Equal(fdsBefore + 2, k.Emulator.OpenFdCount);
            Assert.Equal(1, k.Emulator.LiveVmCount);
            Assert.Equal(1, k.Emulator.MappingCount);
        }
        Assert.Equal(fdsBefore, k.Emulator.OpenFdCount);
        Assert.Equal(0, k.Emulator.LiveVmCount);
        Assert.Equal(0, k.Emulator.MappingCount);
    }

    [KvmFact]
    public void Micro_vms_created_and_torn_down_beside_a_hold_run_and_release_everything()
    {
        var fdsBefore = KvmFds.Kvm();
        using (var kvm = Kvm.Open())
        using (WarmVcpuHold.Acquire(kvm))
        {
            var holding = KvmFds.Kvm();
            for (ulong i = 0; i < 3; i++)
            {
                using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick with { Kvm = kvm });
                Assert.Equal(i + 2, vm.Call("add", i, 2).Value);
            }
            Assert.Empty(KvmFds.Kvm().Except(holding));
        }
        Assert.Empty(KvmFds.Kvm().Except(fdsBefore));
    }

    [KvmFact]
    public void The_hold_outlives_the_kvm_it_was_acquired_from()
    {
        var fdsBefore = KvmFds.Kvm();
        WarmVcpuHold hold;
        using (var kvm = Kvm.Open()) hold = WarmVcpuHold.Acquire(kvm);
        using (hold)
        {
            Assert.Equal(2, KvmFds.Kvm().Except(fdsBefore).Count()); // /dev/kvm closed, the VM and vCPU still open
            Assert.True(GuestRun.Run(Hello.Image()).IsSuccess);
        }
        Assert.Empty(KvmFds.Kvm().Except(fdsBefore));
    }

    [Fact]
    public void Acquire_refuses_a_null_kvm() => Assert.Throws<ArgumentNullException>(() => WarmVcpuHold.Acquire(null!));
}
