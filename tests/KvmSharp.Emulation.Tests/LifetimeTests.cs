// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.Mmu;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>File pins VM, mappings pin files, release clears bindings; guest path sees the host's bytes.</summary>
public sealed class LifetimeTests
{
    private static readonly ulong Ps = (ulong)Raw.Page;

    [Fact]
    public void Gmem_file_keeps_the_vm_alive_after_the_vm_fd_closes()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        var vm = Raw.CreateVm(k, sys);
        var g = Raw.CreateGmem(k, vm, 2 * Ps, 3);
        vm.Dispose();
        Assert.Equal(1, k.LiveVmCount);
        Assert.Equal(0, k.Fallocate(g, FALLOC_FL_KEEP_SIZE, 0, (long)Ps));
        Assert.Equal(0, k.Mmap(0, Ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint a));
        g.Dispose();
        Assert.Equal(1, k.LiveVmCount); // the mapping holds the file, the file holds the VM
        Marshal.WriteByte(a, 0, 1);
        Assert.Equal(0, k.Munmap(a, Ps));
        Assert.Equal(0, k.LiveVmCount);
        Assert.Equal(0, k.MappingCount);
        Assert.Equal(1, k.OpenFdCount);
    }

    [Fact]
    public void Closing_a_bound_gmem_releases_the_binding_and_guest_access_gets_EFAULT()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        var g = Raw.CreateGmem(k, vm, 4 * Ps, 3);
        Assert.Equal(0, Raw.Region2(k, vm, 1, KvmConstants.KVM_MEM_GUEST_MEMFD, 1UL << 32, 4 * Ps, 0, 0, g.Number));
        var kvm = GuestMemoryPath.VmOf(k, vm)!;
        var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, (1UL << 32) / Ps + 3)!;
        Assert.True(slot.GmemOnly);
        Assert.Equal(0, GuestMemoryPath.GmemGetPfn(slot, slot.BaseGfn, out _));
        long seq = kvm.MmuInvalidateSeq;
        g.Dispose();
        Assert.Null(slot.GmemFile);
        Assert.True(kvm.MmuInvalidateSeq > seq);
        Assert.Equal(Raw.EFAULT, GuestMemoryPath.GmemGetPfn(slot, slot.BaseGfn, out _));
        Assert.Equal(0, Raw.Region2(k, vm, 1, 0, 0, 0)); // the slot can still be deleted
    }

    [Fact]
    public void Guest_path_zeroes_once_and_shares_bytes_with_host_mappings()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        using var g = Raw.CreateGmem(k, vm, 2 * Ps, 3);
        Assert.Equal(0, Raw.Region2(k, vm, 0, KvmConstants.KVM_MEM_GUEST_MEMFD, 0, 2 * Ps, 0, 0, g.Number));
        var slot = GuestMemoryPath.GfnToMemslot(GuestMemoryPath.VmOf(k, vm)!, 0, 1)!;
        Assert.Equal(0, k.Fallocate(g, FALLOC_FL_KEEP_SIZE, (long)Ps, (long)Ps));
        Assert.Equal(0, GuestMemoryPath.GmemGetPfn(slot, 1, out var page));
        Assert.Equal(PageState.Uptodate, page.State);
        Assert.Equal(0, k.Mmap(0, 2 * Ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint a));
        Marshal.WriteByte(a, (int)Ps + 9, 0xaa);
        var buf = new byte[1];
        Assert.Equal(1, page.Read(9, buf));
        Assert.Equal(0xaa, buf[0]);
        Assert.Equal(0, GuestMemoryPath.GmemGetPfn(slot, 1, out page)); // already up to date: not zeroed again
        Assert.Equal(1, page.Write(10, new byte[] { 0xff }));
        Assert.Equal(0xaa, Marshal.ReadByte(a, (int)Ps + 9));
        Assert.Equal(0xff, Marshal.ReadByte(a, (int)Ps + 10));
        Assert.Equal(0, k.Fallocate(g, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, (long)Ps, (long)Ps));
        Assert.Equal(PageState.Absent, page.State);
        Assert.Equal(0, Marshal.ReadByte(a, (int)Ps + 9));
        Assert.Equal(0, k.Munmap(a, 2 * Ps));
    }

    [Fact]
    public void Partial_munmap_splits_and_keeps_the_file_referenced()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        var g = Raw.CreateGmem(k, vm, 3 * Ps, 3);
        Assert.Equal(0, k.Mmap(0, 3 * Ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint a));
        g.Dispose();
        Assert.Equal(0, k.Munmap(a + (nint)Ps, Ps));
        Assert.Equal(2, k.MappingCount);
        Assert.Null(k.CheckHostAccess(a + 2 * (nint)Ps, 1));
        Assert.Equal(HostAccessFault.NotMapped, k.CheckHostAccess(a + (nint)Ps, 1));
        Assert.Equal(Raw.EINVAL, k.Munmap(a + 1, Ps));
        // The pieces still ours, one by one: the hole may hold another test thread's mapping by now (munmap passes to
        // the host, and a range over the hole would unmap it).
        Assert.Equal(0, k.Munmap(a, Ps));
        Assert.Equal(0, k.Munmap(a + 2 * (nint)Ps, Ps));
        Assert.Equal(0, k.MappingCount);
        Assert.Equal(2, k.OpenFdCount);
    }

    [Fact]
    public void Descriptors_are_the_lowest_free_numbers_and_closed_ones_are_EBADF()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(3, sys.Number);
        var vm = Raw.CreateVm(k, sys);
        Assert.Equal(4, vm.Number);
        vm.Dispose();
        Assert.Equal(Raw.EBADF, k.Close(4));
        Assert.Equal(Raw.EBADF, k.Ioctl(vm, KvmIoctls.KVM_CHECK_EXTENSION, 1UL));
        using var vm2 = Raw.CreateVm(k, sys);
        Assert.Equal(4, vm2.Number);
        using var other = new EmulatedKernel();
        Assert.Equal(Raw.EBADF, other.Ioctl(vm2, KvmIoctls.KVM_CHECK_EXTENSION, 1UL));
    }

    [Fact]
    public void Typed_api_round_trip_leaves_no_descriptor_or_mapping_behind()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using (var kvm = Kvm.Open(k))
        {
            Assert.Equal(12, kvm.ApiVersion);
            Assert.Equal(GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared, kvm.SupportedGuestMemfdFlags);
            using var vm = kvm.CreateVm();
            using var memfd = vm.CreateGuestMemfd(4 * Ps, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
            using var slot = vm.AddGuestMemfdSlot(1, 1UL << 32, 4 * Ps, memfd);
            using var map = memfd.Map(8 * Ps);
            map.Fill(0, 4 * Ps, 0xaa);
            Assert.Equal(0xaa, slot.Mapping!.Read<byte>(Ps + 1));
            memfd.PunchHole(0, (long)Ps);
            Assert.Equal(0, map.Read<byte>(100));
            Assert.Equal(4 * (long)Ps, memfd.Stat().Size);
            Assert.Equal(Kernel.Errno.EINVAL, Assert.Throws<Kernel.KvmException>(() => vm.CreateGuestMemfd(Ps + 1)).Errno);
            Assert.Throws<GuestMemoryFaultException>(() => map.Read<byte>(4 * Ps));
        }
        Assert.Equal(0, k.OpenFdCount);
        Assert.Equal(0, k.MappingCount);
        Assert.Equal(0, k.LiveVmCount);
    }

    [Fact]
    public void Dispose_releases_everything_a_careless_user_left_open()
    {
        var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        var sys = Raw.OpenKvm(k);
        var vm = Raw.CreateVm(k, sys);
        var g = Raw.CreateGmem(k, vm, Ps, 3);
        Assert.Equal(0, k.Mmap(0, Ps, PROT_READ, MAP_SHARED, g, 0, out _));
        k.Dispose();
        Assert.Equal(0, k.OpenFdCount);
        Assert.Equal(0, k.LiveVmCount);
        Assert.Equal(0, k.MappingCount);
        Assert.Equal(Raw.EBADF, k.Fallocate(g, FALLOC_FL_KEEP_SIZE, 0, (long)Ps));
        g.Dispose();
        vm.Dispose();
        sys.Dispose();
    }
}
