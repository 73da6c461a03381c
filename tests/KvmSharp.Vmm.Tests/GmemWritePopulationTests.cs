// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="GuestMemory.PopulatesByWrite"/>: where the VM offers GUEST_MEMFD_FLAG_WRITE (the emulated kernel with
/// "[PATCH v7 1/2] KVM: guest_memfd: add generic population via write"), a micro-VM's guest_memfd is created with it and
/// snapshot pages are restored with write(2), leaving memory exactly as the mapping copy does; elsewhere nothing changes.
/// </summary>
public sealed class GmemWritePopulationTests
{

    /// <summary>Creates a micro-VM, snapshots it after a call, dirties it, restores, and returns all of its memory.</summary>
    private static byte[] RestoredMemory(EmulatorConfig config, out PwriteCounter counter, out GuestMemfdFlags flags, out bool byWrite)
    {
        using var emulated = new EmulatedKernel(config);
        counter = new PwriteCounter(emulated);
        using var kvm = Kvm.Open(counter, proposals: config.Proposals);
        var options = GuestRun.Quick with { Kvm = kvm, Memory = GuestMemoryBacking.GuestMemfd, Timeout = TimeSpan.FromSeconds(20) };
        using var vm = MicroVm.Create(Sum.Image(), options);
        flags = vm.Memory.Memfd!.Flags;
        byWrite = vm.Memory.PopulatesByWrite;
        // Creation loads the boot state through the mapping, and the image with write(2) where the file takes it.
        Assert.Equal(byWrite ? Loader.ImageLoadMethod.GuestMemfdWrite : Loader.ImageLoadMethod.MappingCopy, vm.LastImageLoad);
        Assert.Equal(byWrite, counter.Calls > 0);
        Assert.Equal(5UL, vm.Call("add", 2, 3).Value);
        var snapshot = vm.Snapshot();
        Assert.Equal("dfmem_tseug"u8.ToArray(), vm.Call("reverse", "guest_memfd"u8).Output.ToArray());
        vm.Restore(snapshot);
        Assert.Equal(6UL, vm.Call("sum", new byte[] { 1, 2, 3 }).Value);
        vm.Restore(snapshot);
        byte[] memory = new byte[vm.Memory.Size];
        vm.Memory.Read(0, memory);
        // A second micro-VM from the snapshot is populated the same way.
        using var copy = MicroVm.Create(snapshot, options);
        Assert.Equal(flags, copy.Memory.Memfd!.Flags);
        Assert.Equal(6UL, copy.Call("sum", new byte[] { 1, 2, 3 }).Value);
        return memory;
    }

    [Fact]
    public void Where_write_is_offered_snapshot_pages_are_written_and_memory_is_what_the_copy_leaves()
    {
        byte[] copied = RestoredMemory(EmulatorConfig.LikeThisHost(), out var plain, out var plainFlags, out bool plainByWrite);
        Assert.False(plainByWrite);
        Assert.Equal(GuestMemory.RequiredFlags, plainFlags);
        Assert.Equal(0, plain.Calls);

        byte[] written = RestoredMemory(EmulatorConfig.LikeThisHost() with { GuestMemfdWrite = true }, out var counter, out var flags, out bool byWrite);
        Assert.True(byWrite);
        Assert.Equal(GuestMemory.RequiredFlags | GuestMemfdFlags.Write, flags);
        Assert.True(counter.Calls > 0 && counter.Bytes % Environment.SystemPageSize == 0, $"{counter.Calls} pwrite calls, {counter.Bytes} bytes");
        Assert.Equal(copied, written);
    }

    [Fact]
    public void With_no_direct_map_the_restored_pages_are_fresh_so_write_takes_them()
    {
        var config = EmulatorConfig.LikeThisHost() with { GuestMemfdWrite = true, GuestMemfdNoDirectMap = true };
        RestoredMemory(config, out var counter, out var flags, out bool byWrite);
        Assert.True(byWrite);
        Assert.Equal(GuestMemory.RequiredFlags | GuestMemfdFlags.NoDirectMap | GuestMemfdFlags.Write, flags);
        Assert.True(counter.Calls > 0);
    }
}
