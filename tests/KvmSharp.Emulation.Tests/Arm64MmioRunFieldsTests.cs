// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// arch/arm64/kvm/mmio.c io_mem_abort writes kvm_run.mmio for every access with a valid syndrome, also one an
/// in-kernel device takes: after kvm_io_bus_write/kvm_io_bus_read, "run->mmio.is_write = is_write; run->mmio.phys_addr
/// = fault_ipa; run->mmio.len = len;" and, for a read the kernel answered, "memcpy(run->mmio.data, data_buf, len)" — a
/// write's data is copied only on the way to userspace. The vGIC's distributor frame is the in-kernel device here; the
/// run ends with KVM_EXIT_INTR (a signal while the guest sleeps in WFI), which writes nothing into the exit union.
/// </summary>
public sealed class Arm64MmioRunFieldsTests
{
    private const ulong UserMmio = 0x2_0000;

    /// <summary>Runs until the vCPU sleeps in WFI, then signals it: KVM_EXIT_INTR.</summary>
    private static VcpuExit RunToWfiAndKick(KvmSharp.Vcpu v)
    {
        using var stats = v.OpenStatistics();
        var kicker = new Thread(() =>
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (stats.ReadValue("blocking") == 0 && DateTime.UtcNow < deadline) Thread.Sleep(1);
            v.Kick();
        });
        kicker.Start();
        VcpuExit exit = v.RunBounded();
        kicker.Join();
        Assert.True(exit.Interrupted);
        return exit;
    }

    [Fact]
    public void A_read_the_vgic_answers_leaves_its_address_length_and_data_in_kvm_run_mmio()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            a.MovImm(X(2), Arm64VgicGuestVm.Dist);
            a.Ldr(W(3), X(2), 8); // GICD_IIDR, answered in the kernel
            a.Wfi();
        });
        var v = s.Vcpus[0];
        VcpuExit exit = RunToWfiAndKick(v);
        uint iidr = (uint)v.GetX(3);
        Assert.NotEqual(0u, iidr); // a real answer, not the zeroed page
        Assert.Equal(Arm64VgicGuestVm.Dist + 8, exit.MmioAddress);
        Assert.False(exit.MmioIsWrite);
        Assert.Equal(4, exit.MmioData.Length); // run->mmio.len = 4
        Assert.Equal(iidr, BitConverter.ToUInt32(exit.MmioData));
    }

    [Fact]
    public void A_userspace_read_after_an_in_kernel_read_finds_that_reads_bytes_in_kvm_run_mmio_data()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            a.MovImm(X(2), Arm64VgicGuestVm.Dist);
            a.Ldr(W(3), X(2), 8);  // GICD_IIDR, in the kernel: memcpy(run->mmio.data, data_buf, 4)
            a.MovImm(X(9), UserMmio);
            a.Ldr(W(4), X(9), 0);  // a userspace read: io_mem_abort does not touch run->mmio.data
        });
        var v = s.Vcpus[0];
        VcpuExit exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(UserMmio, exit.MmioAddress);
        Assert.False(exit.MmioIsWrite);
        uint iidr = (uint)v.GetX(3);
        Assert.NotEqual(0u, iidr);
        Assert.Equal(iidr, BitConverter.ToUInt32(exit.MmioData));
    }

    [Fact]
    public void A_write_the_vgic_takes_leaves_its_address_and_length_but_not_its_data()
    {
        using var s = new Arm64VgicGuestVm(a =>
        {
            a.MovImm(X(9), UserMmio);
            a.Ldr(X(4), X(9), 0);   // a userspace read: the test answers 0xAAAA…
            Arm64VgicGuestVm.EnableDistributor(a); // str w3 (= 2), [x2 = GICD_CTLR]: the vGIC takes it
            a.Wfi();
        });
        var v = s.Vcpus[0];
        VcpuExit read = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, read.Reason);
        Assert.Equal(UserMmio, read.MmioAddress);
        read.MmioData.Fill(0xAA);
        VcpuExit exit = RunToWfiAndKick(v);
        Assert.Equal(0xAAAA_AAAA_AAAA_AAAAUL, v.GetX(4));
        Assert.Equal(Arm64VgicGuestVm.Dist, exit.MmioAddress);
        Assert.True(exit.MmioIsWrite);
        Assert.Equal(4, exit.MmioData.Length);
        // "if (is_write) memcpy(run->mmio.data, data_buf, len)" runs only for a userspace exit: the bytes the test
        // wrote for the read are still there, not the 2 the guest stored.
        Assert.Equal(0xAAAA_AAAAu, BitConverter.ToUInt32(exit.MmioData));
    }
}
