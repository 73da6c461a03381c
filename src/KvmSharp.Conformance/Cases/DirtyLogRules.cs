// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Dirty page logging on plain memory slots (virt/kvm/kvm_main.c kvm_get_dirty_log_protect,
/// kvm_clear_dirty_log_protect, kvm_prepare_memory_region, kvm_vm_ioctl_enable_cap_generic
/// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2). A real-mode guest writes some pages of an 8-page logging slot and reads
/// another; guest_memfd slots cannot log (check_memory_region_flags, a BindingRules case).
/// </summary>
public static class DirtyLogRules
{
    private const uint DataSlot = 1;
    private const ulong DataGpa = 0x14000;
    private const ulong DataPages = 8;
    private static readonly ulong[] Written = [1, 3, 6];
    private const ulong ReadOnlyPage = 2;

    /// <summary>The VM, the guest (writes pages 1, 3, 6 of the data slot, reads page 2, halts) and its data memory.</summary>
    private sealed class Setup : IDisposable
    {
        public Setup(CaseContext ctx, bool manualProtect = false, bool initiallySet = false, MemorySlotFlags flags = MemorySlotFlags.LogDirtyPages)
        {
            Kvm = ctx.OpenKvm();
            Vm = Kvm.CreateVm();
            if (manualProtect) Vm.EnableManualDirtyLogProtect(initiallySet);
            ulong ps = (ulong)PageSize;
            Guest = HostMemoryGuest.Create(Vm, a =>
            {
                foreach (ulong page in Written) a.mov(__byte_ptr[HostMemoryGuest.Offset(DataGpa + page * ps + 8)], (byte)(0x40 + page));
                a.mov(al, __byte_ptr[HostMemoryGuest.Offset(DataGpa + ReadOnlyPage * ps)]);
                a.hlt();
            });
            Memory = Vm.AllocateMemory(DataPages * ps);
            Slot = Vm.AddMemorySlot(DataSlot, DataGpa, Memory, flags);
        }

        public Kvm Kvm { get; }
        public Vm Vm { get; }
        public HostMemoryGuest Guest { get; }
        public AnonymousMemory Memory { get; }
        public MemorySlot Slot { get; }

        /// <summary>Runs the guest from its first instruction to its HLT.</summary>
        public void RunGuest()
        {
            Guest.Vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
            var exit = Guest.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"expected KVM_EXIT_HLT, got {exit.ToString()}");
        }

        public void Dispose()
        {
            Slot.Dispose();
            Memory.Dispose();
            Guest.Dispose();
            Vm.Dispose();
            Kvm.Dispose();
        }
    }

    private static void AssertDirty(DirtyPageLog log, params ulong[] pages)
    {
        Assert.Equal(DataPages, log.PageCount);
        Assert.Equal(pages, log.DirtyPages.ToArray());
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_get_dirty_log_protect: guest writes set bits; without manual protect GET clears and re-protects")]
    public static void guest_writes_are_logged_and_reading_the_log_clears_it(CaseContext ctx)
    {
        using var s = new Setup(ctx);
        // A fresh log is empty (no KVM_DIRTY_LOG_INITIALLY_SET).
        AssertDirty(s.Slot.GetDirtyLog());
        s.RunGuest();
        var log = s.Slot.GetDirtyLog();
        AssertDirty(log, Written);
        Assert.Equal(DataGpa + 3 * (ulong)PageSize, log.GuestPhysicalAddressOf(3));
        Assert.Equal(0x43, s.Memory.Read<byte>(3 * (ulong)PageSize + 8));
        // Cleared by the read; the host's own writes through userspace_addr are not logged.
        AssertDirty(s.Slot.GetDirtyLog());
        s.Memory.Write<byte>(4 * (ulong)PageSize, 0x99);
        AssertDirty(s.Slot.GetDirtyLog());
        // Pages are write-protected again: the same writes are logged a second time.
        s.RunGuest();
        AssertDirty(s.Slot.GetDirtyLog(), Written);
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_get_dirty_log_protect: slot id checks (EINVAL) before the slot lookup (ENOENT)")]
    public static void get_dirty_log_slot_checks(CaseContext ctx)
    {
        using var s = new Setup(ctx, flags: MemorySlotFlags.None);
        var k = ctx.Kernel;
        var bitmap = new KvmSharp.Memory.PinnedArray<ulong>(1);
        long Get(uint slot)
        {
            var log = new kvm_dirty_log { slot = slot, dirty_bitmap = bitmap.Address };
            return k.Ioctl(s.Vm.Handle, KvmIoctls.KVM_GET_DIRTY_LOG, Raw(ref log));
        }
        // A slot without LOG_DIRTY_PAGES has no bitmap; neither has a slot that does not exist.
        var ex = AssertErrno(Errno.ENOENT, () => s.Slot.GetDirtyLog());
        Assert.Contains("LogDirtyPages", ex.Message, StringComparison.Ordinal);
        AssertErrno(Errno.ENOENT, Get(7), "GET_DIRTY_LOG of a slot that does not exist");
        long userSlots = s.Vm.CheckExtension(KvmCaps.KVM_CAP_NR_MEMSLOTS);
        AssertErrno(Errno.EINVAL, Get((uint)userSlots), "GET_DIRTY_LOG slot id = KVM_USER_MEM_SLOTS");
        AssertErrno(Errno.EINVAL, Get(0xffff), "GET_DIRTY_LOG slot id 0xffff");
        // One address space without SMM (KVM_CAP_MULTI_ADDRESS_SPACE absent): as_id 1 is out of range.
        if (s.Vm.CheckExtension(KvmCaps.KVM_CAP_MULTI_ADDRESS_SPACE) <= 1)
            AssertErrno(Errno.EINVAL, Get((1u << 16) | DataSlot), "GET_DIRTY_LOG as_id 1");
        GC.KeepAlive(bitmap);
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_get_dirty_log_protect: the bitmap is exchanged for zeros before copy_to_user, so EFAULT loses it")]
    public static void a_bad_bitmap_address_is_efault_and_the_log_is_gone(CaseContext ctx)
    {
        using var s = new Setup(ctx);
        s.RunGuest();
        var log = new kvm_dirty_log { slot = DataSlot, dirty_bitmap = 0 };
        AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(s.Vm.Handle, KvmIoctls.KVM_GET_DIRTY_LOG, Raw(ref log)), "GET_DIRTY_LOG to NULL");
        AssertDirty(s.Slot.GetDirtyLog());
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_prepare_memory_region: a flags-only change frees or allocates the bitmap; a move keeps it")]
    public static void toggling_logging_drops_the_log_and_a_move_keeps_it(CaseContext ctx)
    {
        using var s = new Setup(ctx);
        s.RunGuest();
        // Moving keeps the bitmap (old->dirty_bitmap is reused), bits included.
        s.Slot.Move(DataGpa + 0x10000);
        AssertDirty(s.Slot.GetDirtyLog(), Written);
        s.Slot.Move(DataGpa);
        s.RunGuest();
        s.Slot.SetDirtyLogging(false);
        Assert.Equal(MemorySlotFlags.None, s.Slot.Flags);
        AssertErrno(Errno.ENOENT, () => s.Slot.GetDirtyLog());
        s.Slot.SetDirtyLogging(true);
        AssertDirty(s.Slot.GetDirtyLog());
        s.RunGuest();
        AssertDirty(s.Slot.GetDirtyLog(), Written);
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_mmu_slot_apply_flags: turning logging on write-protects pages the guest already wrote")]
    public static void turning_logging_on_logs_the_next_writes_to_pages_already_written(CaseContext ctx)
    {
        using var s = new Setup(ctx, flags: MemorySlotFlags.None);
        s.RunGuest();
        s.Slot.SetDirtyLogging(true);
        AssertDirty(s.Slot.GetDirtyLog());
        s.RunGuest();
        AssertDirty(s.Slot.GetDirtyLog(), Written);
    }

    [ConformanceCase("virt/kvm/kvm_main.c KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: GET leaves the bits, KVM_CLEAR_DIRTY_LOG clears them")]
    public static void manual_protect_keeps_bits_until_cleared(CaseContext ctx)
    {
        using var s = new Setup(ctx, manualProtect: true);
        s.RunGuest();
        var log = s.Slot.GetDirtyLog();
        AssertDirty(log, Written);
        AssertDirty(s.Slot.GetDirtyLog(), Written);
        s.Slot.ClearDirtyLog(log);
        AssertDirty(s.Slot.GetDirtyLog());
        s.RunGuest();
        AssertDirty(s.Slot.GetDirtyLog(), Written);
        s.Slot.ClearDirtyLog(0, DataPages);
        AssertDirty(s.Slot.GetDirtyLog());
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_prepare_memory_region: KVM_DIRTY_LOG_INITIALLY_SET starts every page dirty")]
    public static void initially_set_reports_every_page_until_cleared(CaseContext ctx)
    {
        using var s = new Setup(ctx, manualProtect: true, initiallySet: true);
        AssertDirty(s.Slot.GetDirtyLog(), [0, 1, 2, 3, 4, 5, 6, 7]);
        s.Slot.ClearDirtyLog(0, DataPages);
        AssertDirty(s.Slot.GetDirtyLog());
        s.RunGuest();
        AssertDirty(s.Slot.GetDirtyLog(), Written);
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_clear_dirty_log_protect: first_page & 63, range and partial-word checks, then copy_from_user")]
    public static void clear_dirty_log_argument_checks(CaseContext ctx)
    {
        using var s = new Setup(ctx, manualProtect: true);
        s.RunGuest();
        var k = ctx.Kernel;
        var ones = new KvmSharp.Memory.PinnedArray<ulong>(2);
        Array.Fill(ones.Items, ulong.MaxValue);
        long Clear(uint slot, ulong first, uint num, ulong bitmap)
        {
            var log = new kvm_clear_dirty_log { slot = slot, first_page = first, num_pages = num, dirty_bitmap = bitmap };
            return k.Ioctl(s.Vm.Handle, KvmIoctls.KVM_CLEAR_DIRTY_LOG, Raw(ref log));
        }
        AssertErrno(Errno.EINVAL, Clear(DataSlot, 1, 7, ones.Address), "first_page not a multiple of 64");
        AssertErrno(Errno.EINVAL, Clear(DataSlot, 64, 0, ones.Address), "first_page beyond the slot");
        AssertErrno(Errno.EINVAL, Clear(DataSlot, 0, 9, ones.Address), "num_pages beyond the slot");
        AssertErrno(Errno.EINVAL, Clear(DataSlot, 0, 4, ones.Address), "a partial word that stops before the slot's end");
        AssertErrno(Errno.ENOENT, Clear(7, 0, 1, ones.Address), "a slot that does not exist");
        AssertErrno(Errno.EFAULT, Clear(DataSlot, 0, (uint)DataPages, 0), "bitmap at NULL");
        // None of those cleared anything; an empty range at the end is fine and clears nothing either.
        Assert.Equal(0, Clear(DataSlot, 0, 0, ones.Address));
        AssertDirty(s.Slot.GetDirtyLog(), Written);
        // Only the bits given are cleared.
        var page3 = new KvmSharp.Memory.PinnedArray<ulong>(1);
        page3.Items[0] = 1UL << 3;
        Assert.Equal(0, Clear(DataSlot, 0, (uint)DataPages, page3.Address));
        AssertDirty(s.Slot.GetDirtyLog(), 1, 6);
        GC.KeepAlive(ones);
        GC.KeepAlive(page3);
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl_enable_cap_generic KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: INITIALLY_SET only with PROTECT_ENABLE")]
    public static void manual_protect_options_are_checked(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(3, vm.CheckExtension(KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2));
        Assert.Equal(3, kvm.CheckExtension(KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2));
        AssertErrno(Errno.EINVAL, () => vm.EnableCapability(KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KvmConstants.KVM_DIRTY_LOG_INITIALLY_SET));
        AssertErrno(Errno.EINVAL, () => vm.EnableCapability(KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 4));
        AssertErrno(Errno.EINVAL, () => vm.EnableCapability(new kvm_enable_cap { cap = KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, flags = 1 }));
        vm.EnableCapability(KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 3);
        vm.EnableCapability(KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 0);
    }
}
