// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

public sealed class LayoutTests
{
    [Fact]
    public void Gdt_descriptors_are_the_classic_flat_long_mode_ones()
    {
        Assert.Equal(0x00AF_9B00_0000_FFFFUL, Gdt.Encode(Gdt.Code));
        Assert.Equal(0x00CF_9300_0000_FFFFUL, Gdt.Encode(Gdt.Data));
        Assert.Equal(39, Gdt.Limit);
    }

    [Fact]
    public void The_tss_descriptor_is_a_busy_64_bit_tss_at_the_tss_with_its_104_byte_limit()
    {
        // SDM Vol. 3A 8.2.3 Figure 8-4: limit 0x67, base 0xFD200 (bits 23:0 at 16, 31:24 at 56), type 0xB, P, S=0.
        Assert.Equal(0x0000_8B0F_D200_0067UL, Gdt.Encode(Gdt.TaskState));
        Assert.Equal([0UL, Gdt.Encode(Gdt.Code), Gdt.Encode(Gdt.Data), Gdt.Encode(Gdt.TaskState), 0UL], Gdt.Entries);
        Assert.Equal(Gdt.TssSelector, (ushort)(3 * sizeof(ulong)));
    }

    [Fact]
    public void Regions_are_page_aligned_ordered_and_disjoint()
    {
        ulong[] starts = [Layout.Gdt, Layout.Pml4, Layout.Pdpt, Layout.Pd, Layout.Pt, Layout.Trampoline, Layout.StackGuard,
            Layout.StackBottom, Layout.CallRegion, Layout.CallData, Layout.ExceptionHandlers, Layout.Idt, Layout.ExceptionBlock,
            Layout.ExceptionStack, Layout.ImageBase];
        Assert.All(starts, s => Assert.Equal(0UL, s % Layout.PageSize));
        Assert.Equal(starts.Order(), starts);
        Assert.Equal(starts.Length, starts.Distinct().Count());
        Assert.True(Layout.StackTop <= Layout.CallRegion);
        Assert.Equal(Layout.ExceptionHandlers, Layout.CallDataEnd);
        Assert.Equal(Layout.ImageBase, Layout.ExceptionStackTop);
        // The IDT and the TSS share a page without overlapping.
        Assert.True(Layout.Idt + Idt.Limit < Layout.Tss && Layout.Tss + Tss.Limit < Layout.Idt + Layout.PageSize);
    }

    [Theory]
    [InlineData(0x20_0000UL, true)]
    [InlineData(0x4000_0000UL, true)]
    [InlineData(0x10_0000UL, false)]
    [InlineData(0x30_0000UL, false)]
    [InlineData(0x4020_0000UL, false)]
    public void Memory_sizes_must_be_2_MiB_multiples_up_to_1_GiB(ulong size, bool ok) =>
        Assert.Equal(ok, Layout.CheckMemorySize(size) is null);

    [KvmFact]
    public void Page_tables_leave_out_the_guard_pages_and_map_everything_else_identically()
    {
        using var vm = MicroVm.Create(Hello.Image(), GuestRun.Default with { MemorySize = 4 * 1024 * 1024 });
        var m = vm.Memory;
        Assert.Equal(Layout.Pdpt | 3, m.Read<ulong>(Layout.Pml4));
        Assert.Equal(0UL, m.Read<ulong>(Layout.Pt + 8 * (Layout.NullGuard / Layout.PageSize)));
        Assert.Equal(0UL, m.Read<ulong>(Layout.Pt + 8 * (Layout.StackGuard / Layout.PageSize)));
        Assert.Equal(Layout.ImageBase | 3, m.Read<ulong>(Layout.Pt + 8 * (Layout.ImageBase / Layout.PageSize)));
        Assert.Equal(Layout.LargePageSize | 0x83, m.Read<ulong>(Layout.Pd + 8));
        Assert.Equal(0UL, m.Read<ulong>(Layout.Pd + 16)); // 4 MiB and up: no memory, no mapping
    }
}
