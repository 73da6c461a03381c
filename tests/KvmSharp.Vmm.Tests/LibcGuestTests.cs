// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// kvmsharp_guest.h's C library pieces: the mem* functions (KVMSHARP_GUEST_MEMFUNCS) and the heap
/// (KVMSHARP_GUEST_MALLOC). CGuest/libc_guest.c checks memcpy/memmove/memset/memcmp against byte loops and drives malloc,
/// free, calloc and realloc, checking every live block's bytes itself, on both kernels and both compilers for x86-64 and
/// on the emulated arm64 kernel; the host checks where the heap lies (above the image, inside guest memory, up to
/// memory_size).
/// </summary>
public sealed class LibcGuestTests
{
    private static readonly CompiledGuest Guest = new("libc_guest.c");

    public static TheoryData<string, string> KernelsAndCompilers => CompiledGuest.KernelsAndCompilers;

    private static GuestImage Image(string compiler) => Guest.Image(compiler);

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Memcpy_memmove_memset_and_memcmp_match_byte_loops_for_every_length_offset_and_overlap(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Image(compiler), k.Options(null) with { Timeout = TimeSpan.FromSeconds(60) });
        Assert.Equal(0UL, GuestRun.Value(vm, "memfuncs_check"));
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void Random_malloc_free_calloc_and_realloc_keep_every_live_blocks_bytes(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Image(compiler), k.Options(null) with { Timeout = TimeSpan.FromSeconds(60) });
        Assert.Equal(0UL, GuestRun.Value(vm, "heap_stress", 1, 400));
        Assert.Equal(0UL, GuestRun.Value(vm, "heap_stress", 2, 400));   // on the heap the first call left behind
        Assert.Equal(0UL, GuestRun.Value(vm, "heap_refusals"));
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void The_heap_fills_guest_memory_above_the_image_and_freed_space_merges_back(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        var image = Image(compiler);
        using var vm = MicroVm.Create(image, k.Options(null) with { MemorySize = 4 << 20, Timeout = TimeSpan.FromSeconds(60) });
        ulong first = GuestRun.Value(vm, "first_block");
        ulong imageEnd = image.End;
        Assert.InRange(first, imageEnd, imageEnd + 16 + 16 + 15);   // _end rounded up to 16, then a 16-byte header
        Assert.Equal(0UL, first % 16);
        ulong blocks = GuestRun.Value(vm, "heap_exhaust", 64 * 1024);
        // Blocks of 64 KiB + a 16-byte header each, from the first block to the end of guest memory.
        Assert.Equal((vm.Memory.Size - (first - 16)) / (64 * 1024 + 16), blocks);
        Assert.Equal(vm.Memory.Size, vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.MemorySize)));
    }

    [SkippableTheory]
    [MemberData(nameof(KernelsAndCompilers))]
    public void A_block_outlives_its_call_and_a_reset_takes_the_heap_back_with_the_rest_of_memory(string kernel, string compiler)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Image(compiler), k.Options(null));
        ulong block = GuestRun.Value(vm, "keep", 1000);
        Assert.InRange(block, Layout.ImageBase, vm.Memory.Size - 1000);
        Assert.Equal(1000UL * 0x5A, GuestRun.Value(vm, "kept_sum"));
        Assert.Equal(0x5A, vm.Memory.Read<byte>(block + 999));
        vm.Reset();
        Assert.Equal(0UL, GuestRun.Value(vm, "kept_sum"));       // the heap's state is guest memory: back to the image's
        Assert.Equal(block, GuestRun.Value(vm, "keep", 1000));   // and the same first block is handed out again
    }

    [SkippableFact]
    public void The_heap_and_the_mem_functions_work_the_same_in_an_arm64_micro_vm() => Arm64Kernel.Run(kvm =>
    {
        using var vm = MicroVm.Create(Image("arm64"), new MicroVmOptions { Kvm = kvm, MemorySize = 4 << 20, Timeout = TimeSpan.FromSeconds(120) });
        Assert.Equal(GuestArchitecture.Arm64, vm.Architecture);
        Assert.Equal(0UL, GuestRun.Value(vm, "heap_stress", 3, 400));
        Assert.Equal(0UL, GuestRun.Value(vm, "heap_refusals"));
        Assert.Equal(0UL, GuestRun.Value(vm, "memfuncs_check"));
        ulong first = GuestRun.Value(vm, "first_block");
        Assert.Equal((vm.Memory.Size - (first - 16)) / (64 * 1024 + 16), GuestRun.Value(vm, "heap_exhaust", 64 * 1024));
    });
}
