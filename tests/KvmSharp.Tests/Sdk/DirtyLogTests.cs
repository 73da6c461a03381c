// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// What the SDK adds to dirty logging: a typed log, refusals before the kernel is asked, and errors that say what
/// is missing. (The kernel rules, with guests writing pages, are the DirtyLogRules conformance cases.)
/// </summary>
public class DirtyLogTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_fresh_log_is_empty_and_bounds_checked(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(70 * ps);
        using var slot = vm.AddMemorySlot(1, 0x100000, memory, MemorySlotFlags.LogDirtyPages);
        var log = slot.GetDirtyLog();
        Assert.Same(slot, log.Slot);
        Assert.Equal(70UL, log.PageCount);
        Assert.Equal(2, log.Words.Length);
        Assert.Equal(0UL, log.Count);
        Assert.Empty(log.DirtyPages);
        Assert.False(log.IsDirty(69));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.IsDirty(70));
        Assert.Equal(0x100000 + 69 * ps, log.GuestPhysicalAddressOf(69));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.GuestPhysicalAddressOf(70));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Initially_set_logs_count_every_page_and_clear_takes_whole_words_or_the_tail(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableManualDirtyLogProtect(initiallySet: true);
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(70 * ps);
        using var slot = vm.AddMemorySlot(1, 0x100000, memory, MemorySlotFlags.LogDirtyPages);
        Assert.Equal(70UL, slot.GetDirtyLog().Count);
        // A partial word that stops before the end: the kernel's EINVAL, with the slot's size in the message.
        var ex = AssertErrno(Errno.EINVAL, () => slot.ClearDirtyLog(0, 10));
        Assert.Contains("slot has 70 pages", ex.Message, StringComparison.Ordinal);
        slot.ClearDirtyLog(64, 6);
        Assert.Equal(Enumerable.Range(0, 64).Select(i => (ulong)i), slot.GetDirtyLog().DirtyPages);
        slot.ClearDirtyLog(slot.GetDirtyLog());
        Assert.Equal(0UL, slot.GetDirtyLog().Count);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_log_only_clears_its_own_slot_and_a_deleted_slot_has_none(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableManualDirtyLogProtect();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(2 * ps);
        using var a = vm.AddMemorySlot(1, 0x100000, memory, 0, ps, MemorySlotFlags.LogDirtyPages);
        using var b = vm.AddMemorySlot(2, 0x200000, memory, ps, ps, MemorySlotFlags.LogDirtyPages);
        var fromA = a.GetDirtyLog();
        Assert.Throws<ArgumentException>(() => b.ClearDirtyLog(fromA));
        a.Delete();
        Assert.Throws<ObjectDisposedException>(() => a.GetDirtyLog());
        Assert.Equal(0UL, b.GetDirtyLog().Count);
    }
}
