// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The image at creation (and at a full Reset) is written with pwrite(2) on the guest_memfd where the file takes
/// write(2) (GUEST_MEMFD_FLAG_WRITE: the emulated kernel with <see cref="EmulatorConfig.GuestMemfdWrite"/>), and copied
/// through the mapping otherwise; <see cref="MicroVm.LastImageLoad"/> says which. Memory ends up the same either way.
/// </summary>
public sealed class ImageLoadTests
{

    private static EmulatorConfig WithWrite => EmulatorConfig.LikeThisHost() with { GuestMemfdWrite = true };

    /// <summary>All of a fresh micro-VM's memory after creation, with how the image was loaded and the pwrite calls.</summary>
    private static byte[] MemoryAfterCreate(EmulatorConfig config, GuestImage image, out ImageLoadMethod? load, out int pwrites)
    {
        using var emulated = new EmulatedKernel(config);
        var counter = new PwriteCounter(emulated);
        using var kvm = Kvm.Open(counter, proposals: config.Proposals);
        using var vm = MicroVm.Create(image, GuestRun.Quick with { Kvm = kvm, Memory = GuestMemoryBacking.GuestMemfd, MemorySize = 4 << 20 });
        load = vm.LastImageLoad;
        pwrites = counter.Calls;
        byte[] memory = new byte[vm.Memory.Size];
        vm.Memory.Read(0, memory);
        return memory;
    }

    [Fact]
    public void Where_the_guest_memfd_takes_write_the_image_is_written_and_memory_is_what_the_copy_leaves()
    {
        GuestImage image = Sum.Image();
        byte[] copied = MemoryAfterCreate(EmulatorConfig.LikeThisHost(), image, out var plainLoad, out int plainWrites);
        Assert.Equal(ImageLoadMethod.MappingCopy, plainLoad);
        Assert.Equal(0, plainWrites);
        byte[] written = MemoryAfterCreate(WithWrite, image, out var load, out int writes);
        Assert.Equal(ImageLoadMethod.GuestMemfdWrite, load);
        Assert.True(writes >= image.Segments.Count, $"{writes} pwrite calls for {image.Segments.Count} segments");
        Assert.Equal(copied, written);
    }

    /// <summary>
    /// A flat image whose length is not a page multiple (its last page goes through a zero-padded page), and an ELF
    /// whose second segment starts inside a page (its head goes through one): the same bytes as the mapping copy.
    /// </summary>
    [Fact]
    public void Partial_first_and_last_pages_are_written_zero_padded()
    {
        byte[] data = new byte[(3 * 4096) + 123];
        new Random(7).NextBytes(data);
        GuestImage flat = GuestImage.FromFlat(data);
        Assert.Equal(MemoryAfterCreate(EmulatorConfig.LikeThisHost(), flat, out _, out _), MemoryAfterCreate(WithWrite, flat, out var load, out int writes));
        Assert.Equal(ImageLoadMethod.GuestMemfdWrite, load);
        Assert.Equal(2, writes); // the three whole pages in one call, the partial one in another

        byte[] second = new byte[5000];
        new Random(8).NextBytes(second);
        var segments = new List<ImageSegment>
        {
            new(Layout.ImageBase, data, (ulong)data.Length),
            new(Layout.ImageBase + 0x8000 + 0x234, second, 0x3000), // unaligned start, .bss after the data
        };
        var elf = new GuestImage(GuestImageKind.Elf, segments, Layout.ImageBase, new Dictionary<string, ulong>());
        Assert.Equal(MemoryAfterCreate(EmulatorConfig.LikeThisHost(), elf, out _, out _), MemoryAfterCreate(WithWrite, elf, out load, out _));
        Assert.Equal(ImageLoadMethod.GuestMemfdWrite, load);
    }

    /// <summary>Two segments in one page: written whole, one would wipe the other's bytes, so the image is copied.</summary>
    [Fact]
    public void Segments_sharing_a_page_are_copied_through_the_mapping()
    {
        var segments = new List<ImageSegment>
        {
            new(Layout.ImageBase, new byte[] { 0xF4, 1, 2, 3 }, 0x10),
            new(Layout.ImageBase + 0x100, new byte[] { 9, 8, 7 }, 0x10),
        };
        var image = new GuestImage(GuestImageKind.Elf, segments, Layout.ImageBase, new Dictionary<string, ulong>());
        byte[] memory = MemoryAfterCreate(WithWrite, image, out var load, out int writes);
        Assert.Equal(ImageLoadMethod.MappingCopy, load);
        Assert.Equal(0, writes);
        Assert.Equal(new byte[] { 9, 8, 7 }, memory.AsSpan((int)Layout.ImageBase + 0x100, 3).ToArray());
    }

    /// <summary>A full Reset discards the guest_memfd and writes the image again the same way; the guest runs as before.</summary>
    [Fact]
    public void Reset_writes_the_image_again_and_the_guest_runs()
    {
        using var emulated = new EmulatedKernel(WithWrite with { GuestMemfdNoDirectMap = true });
        using var kvm = Kvm.Open(emulated, proposals: emulated.Config.Proposals);
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick with { Kvm = kvm, Memory = GuestMemoryBacking.GuestMemfd, Timeout = TimeSpan.FromSeconds(20) });
        Assert.True(vm.Memory.RemovedFromDirectMap); // fresh pages only: write(2) refuses a faulted NO_DIRECT_MAP page
        Assert.Equal(ImageLoadMethod.GuestMemfdWrite, vm.LastImageLoad);
        Assert.Equal(5UL, vm.Call("add", 2, 3).Value);
        for (int i = 0; i < 2; i++)
        {
            vm.Reset();
            Assert.Equal(ImageLoadMethod.GuestMemfdWrite, vm.LastImageLoad);
            Assert.Equal(6UL, vm.Call("sum", new byte[] { 1, 2, 3 }).Value);
        }
        // A micro-VM from a snapshot holds the image in the snapshot's pages: nothing loaded until a reset.
        using var copy = MicroVm.Create(vm.Snapshot(), vm.Options);
        Assert.Null(copy.LastImageLoad);
        copy.Reset();
        Assert.Equal(ImageLoadMethod.GuestMemfdWrite, copy.LastImageLoad);
    }

    /// <summary>Without write(2) — the real kernel here (no guest_memfd: host memory), or its guest_memfd without the flag — the copy.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Without_write_the_image_is_copied_through_the_mapping(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Sum.Image(), k.Options(null));
        Assert.False(vm.Memory.PopulatesByWrite);
        Assert.Equal(ImageLoadMethod.MappingCopy, vm.LastImageLoad);
        Assert.Equal(5UL, vm.Call("add", 2, 3).Value);
    }
}
