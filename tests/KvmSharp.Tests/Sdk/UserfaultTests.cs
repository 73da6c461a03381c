// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// The typed KVM userfault API (PROPOSAL, "[PATCH v3 00/15] KVM: Introduce KVM Userfault"): <see cref="UserfaultBitmap"/>
/// owns page-aligned memory with checked bit operations, a slot keeps it mapped while KVM may read it, toggling goes
/// through KVM_SET_USER_MEMORY_REGION2, and a kernel without the series gets a typed capability error.
/// </summary>
public sealed class UserfaultTests
{
    private static readonly int Page = Environment.SystemPageSize;

    private static EmulatorConfig WithUserfault => EmulatorConfig.X86_64() with { KvmUserfault = true };

    [Fact]
    public void The_bitmap_is_page_aligned_checked_and_counts_its_bits()
    {
        using var bitmap = UserfaultBitmap.Create(130);
        Assert.Equal(0UL, bitmap.Address % (ulong)Page);
        Assert.Equal(24UL, bitmap.ByteLength); // DIV_ROUND_UP(130, 64) longs
        Assert.Equal(0UL, bitmap.CountSet());
        Assert.True(bitmap.Set(129));
        Assert.False(bitmap.Set(129));
        Assert.True(bitmap.IsSet(129));
        bitmap.SetRange(60, 10);
        Assert.Equal(11UL, bitmap.CountSet());
        Assert.True(bitmap.IsSet(60) && bitmap.IsSet(69) && !bitmap.IsSet(59) && !bitmap.IsSet(70));
        bitmap.ClearRange(62, 3);
        Assert.Equal(8UL, bitmap.CountSet());
        Assert.True(bitmap.Clear(129));
        Assert.False(bitmap.Clear(129));
        bitmap.SetAll();
        Assert.Equal(130UL, bitmap.CountSet()); // the 62 bits past the last page stay clear
        bitmap.ClearAll();
        Assert.Equal(0UL, bitmap.CountSet());
        Assert.Throws<ArgumentOutOfRangeException>(() => bitmap.Set(130));
        Assert.Throws<ArgumentOutOfRangeException>(() => bitmap.IsSet(ulong.MaxValue));
        Assert.Throws<ArgumentOutOfRangeException>(() => bitmap.SetRange(129, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => bitmap.ClearRange(ulong.MaxValue, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => UserfaultBitmap.Create(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => UserfaultBitmap.ForSlotSize((ulong)Page + 1));
        using var all = UserfaultBitmap.ForSlotSize(3 * (ulong)Page, allSet: true);
        Assert.Equal(3UL, all.PageCount);
        Assert.Equal(3UL, all.CountSet());
    }

    [Fact]
    public void A_disposed_bitmap_refuses_every_access()
    {
        var bitmap = UserfaultBitmap.Create(8);
        bitmap.Dispose();
        Assert.True(bitmap.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => bitmap.Set(0));
        Assert.Throws<ObjectDisposedException>(() => bitmap.Address);
        bitmap.Dispose();
    }

    [Fact]
    public void A_slot_keeps_its_bitmap_mapped_until_the_flag_goes_off_and_toggles_through_region2()
    {
        using var kernel = new EmulatedKernel(WithUserfault);
        using var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals);
        using var vm = kvm.CreateVm();
        Assert.True(vm.SupportsUserfault);
        using var memory = vm.AllocateMemory(4 * (ulong)Page);
        using var slot = vm.AddMemorySlot(1, 0x100000, memory);
        var bitmap = UserfaultBitmap.Create(4, allSet: true);
        slot.EnableUserfault(bitmap);
        Assert.True(slot.HasUserfault);
        Assert.Same(bitmap, slot.Userfault);
        Assert.Equal(MemorySlotFlags.None, slot.Flags);
        // Disposed by its owner while the slot uses it: the memory stays mapped (the kernel may still read it).
        bitmap.Dispose();
        Assert.True(bitmap.IsDisposed);
        slot.DisableUserfault();
        Assert.False(slot.HasUserfault);
        Assert.Null(slot.Userfault);
        // Too small a bitmap is refused before the kernel sees it.
        using var small = UserfaultBitmap.Create(3);
        Assert.Throws<ArgumentException>(() => slot.EnableUserfault(small));
        Assert.False(slot.HasUserfault);
        // Switching bitmaps turns the flag off first (v3 ignores a change of userfault_bitmap alone).
        using var first = UserfaultBitmap.Create(4);
        using var second = UserfaultBitmap.Create(4);
        slot.EnableUserfault(first);
        slot.EnableUserfault(second);
        Assert.Same(second, slot.Userfault);
    }

    [Fact]
    public void A_guest_memfd_slot_can_be_created_with_a_bitmap()
    {
        using var kernel = new EmulatedKernel(WithUserfault);
        using var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals);
        using var vm = kvm.CreateVm();
        using var memfd = vm.CreateGuestMemfd(4 * (ulong)Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var bitmap = UserfaultBitmap.Create(4);
        using var slot = vm.AddGuestMemfdSlot(0, 0, 4 * (ulong)Page, memfd, userfault: bitmap);
        Assert.True(slot.HasUserfault);
        Assert.True(slot.HasGuestMemfd);
        slot.DisableUserfault();
        slot.EnableUserfault(bitmap);
        Assert.True(slot.HasUserfault);
        // Too small: refused by the SDK, nothing created.
        using var small = UserfaultBitmap.Create(1);
        Assert.Throws<ArgumentException>(() => vm.AddGuestMemfdSlot(1, 0x100000, 4 * (ulong)Page, memfd, userfault: small));
    }

    [Fact]
    public void Without_the_series_the_flag_is_a_capability_error_naming_KVM_CAP_USERFAULT()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals);
        using var vm = kvm.CreateVm();
        Assert.False(vm.SupportsUserfault);
        using var memfd = vm.CreateGuestMemfd(4 * (ulong)Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var bitmap = UserfaultBitmap.Create(4);
        var e = Assert.Throws<KvmCapabilityException>(() => vm.AddGuestMemfdSlot(0, 0, 4 * (ulong)Page, memfd, userfault: bitmap));
        Assert.Equal(nameof(KvmCaps.KVM_CAP_USERFAULT), e.Capability);
        Assert.Equal(0, e.Reported);
        Assert.Contains("userfault_bitmap=0x", e.Message, StringComparison.Ordinal);
        // The failed creation let go of the bitmap: disposing it now really unmaps it.
        bitmap.Dispose();
        Assert.True(bitmap.IsDisposed);
    }

    [Fact]
    public void A_patched_kernel_may_number_the_capability_otherwise()
    {
        var config = WithUserfault with { UserfaultCap = 260 };
        using var kernel = new EmulatedKernel(config);
        using var kvm = Kvm.Open(kernel, proposals: config.Proposals);
        using var vm = kvm.CreateVm();
        Assert.Equal(260, kvm.Proposals.UserfaultCap);
        Assert.True(vm.SupportsUserfault);
        Assert.Equal(0, vm.CheckExtension(KvmCaps.KVM_CAP_USERFAULT));
        // An SDK told the series' number (243) asks there and reads 0.
        using var wrong = Kvm.Open(kernel, proposals: UapiProposals.Default);
        using var vm2 = wrong.CreateVm();
        Assert.False(vm2.SupportsUserfault);
    }

    [Fact]
    public void The_emulator_refuses_the_switch_where_it_does_not_model_it()
    {
        Assert.Throws<ArgumentException>(() => new EmulatedKernel(EmulatorConfig.X86_64(KernelGeneration.Linux611) with { KvmUserfault = true }));
    }

    [Fact]
    public void Arm64_answers_the_capability_and_accepts_the_flag()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64() with { KvmUserfault = true });
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        Assert.True(vm.SupportsUserfault);
        using var memory = vm.AllocateMemory(4 * 4096);
        using var slot = vm.AddMemorySlot(0, 0x10_0000, memory);
        using var bitmap = UserfaultBitmap.ForSlotSize(slot.Size);
        slot.EnableUserfault(bitmap);
        Assert.True(slot.HasUserfault);
    }
}
