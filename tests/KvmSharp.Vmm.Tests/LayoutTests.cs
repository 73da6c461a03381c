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
        Assert.Equal(23, Gdt.Limit);
    }

    [Fact]
    public void Regions_are_page_aligned_ordered_and_disjoint()
    {
        ulong[] starts = [Layout.Gdt, Layout.Pml4, Layout.Pdpt, Layout.Pd, Layout.Pt, Layout.Trampoline, Layout.StackGuard,
            Layout.StackBottom, Layout.CallRegion, Layout.CallData, Layout.ImageBase];
        Assert.All(starts, s => Assert.Equal(0UL, s % Layout.PageSize));
        Assert.Equal(starts.Order(), starts);
        Assert.Equal(starts.Length, starts.Distinct().Count());
        Assert.True(Layout.StackTop <= Layout.CallRegion);
        Assert.True(Layout.CallDataEnd <= Layout.ImageBase);
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
