// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Dirty logging on arm64 write-protects stage 2, it does not unmap it (6.18 arch/arm64/kvm/mmu.c):
/// kvm_arch_commit_memory_region → kvm_mmu_wp_memory_region when logging is turned on ("all present PUD, PMD and PTEs
/// are write protected", blocks whole; nothing when kvm_dirty_log_manual_protect_and_init_set), KVM_GET_DIRTY_LOG and
/// KVM_CLEAR_DIRTY_LOG → kvm_arch_mmu_enable_log_dirty_pt_masked for the pages they clear. A present leaf takes no
/// abort for a load or a cache-maintenance operation (which needs read permission only), so neither marks anything; a
/// store takes a permission fault, which user_mem_abort resolves at PAGE_SIZE while logging (force_pte: a block is
/// replaced by a table holding only that page, pgtable.c stage2_map_walk_leaf) and marks. Once logging is off, a store
/// to a page left read-only maps what transparent_hugepage_adjust allows (a THP block). Emulator only: the real kernel
/// here is x86. The MMU stays off, so VA = IPA; leaf sizes are read with GuestMappingInspection.LastFault.
/// </summary>
public sealed class Arm64DirtyLogWriteProtectTests
{
    private const ulong K4 = 0x1000, M2 = 2UL << 20, Base = 0x4000_0000, Report = 0x9000_0000;

    /// <summary>Two addresses in the second 2 MiB of the slot (one THP block), on different pages.</summary>
    private const ulong A = Base + M2 + 0x3008, B = Base + M2 + 0x5008;

    /// <summary>DC CIVAC Xt (SYS #3, C7, C14, #1, Xt).</summary>
    private const uint DcCivac = 0xD50B_7E20;

    private enum Op { Load, Store, DcCivac }

    /// <summary>
    /// Each (op, address register: 0 holds <see cref="A"/>, 5 holds <see cref="B"/>), then STR of the op's number to
    /// Report (an MMIO exit per op); then a spin.
    /// </summary>
    private static Arm64TestVm Guest(params (Op Op, int Reg)[] ops) => new(a =>
    {
        a.MovImm(X(0), A);
        a.MovImm(X(5), B);
        a.MovImm(X(2), Report);
        a.MovImm(X(3), 0x5A5A);
        for (int i = 0; i < ops.Length; i++)
        {
            switch (ops[i].Op)
            {
                case Op.Load: a.Ldr(X(1), X(ops[i].Reg)); break;
                case Op.Store: a.Str(X(3), X(ops[i].Reg)); break;
                case Op.DcCivac: a.Emit(DcCivac | (uint)ops[i].Reg); break;
            }
            a.MovImm(X(9), (ulong)i + 1);
            a.Str(X(9), X(2));
        }
        var spin = a.CreateLabel();
        a.Bind(spin);
        a.B(spin);
    });

    /// <summary>Runs the next op; it must end with its report (op number <paramref name="n"/>).</summary>
    private static void Step(KvmSharp.Vcpu vcpu, ulong n)
    {
        var exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioAddress == Report, exit.ToString());
        Assert.Equal(n, BitConverter.ToUInt64(exit.MmioData));
    }

    /// <summary>
    /// A slot of 2 × 2 MiB at <see cref="Base"/> over host memory madvised MADV_HUGEPAGE, aligned like its GPA (the
    /// emulated host gives it PMD-mapped THPs: user_mem_abort maps 2 MiB blocks when not logging).
    /// </summary>
    private static MemorySlot ThpSlot(Arm64TestVm s, out AnonymousMemory memory, MemorySlotFlags flags = MemorySlotFlags.None)
    {
        memory = s.Vm.AllocateMemory(6 * M2);
        ulong address = (ulong)memory.Address;
        ulong offset = ((address + M2 - 1) & ~(M2 - 1)) - address;
        Assert.Equal(0, s.Kernel.Madvise((nint)(address + offset), 2 * M2, LinuxConstants.MADV_HUGEPAGE));
        return s.Vm.AddMemorySlot(1, Base, memory, offset, 2 * M2, flags);
    }

    /// <summary>The shift of the leaf mapping <paramref name="gpa"/>, or 0 when nothing maps it.</summary>
    private static int LeafShift(Arm64TestVm s, ulong gpa)
    {
        long r = GuestMappingInspection.LastFault(s.Kernel, s.Vm.Handle, gpa, out var m);
        if (r == -(long)Errno.ENOENT) return 0;
        Assert.Equal(0, r);
        return m.PageShift;
    }

    private static ulong PageOf(ulong gpa) => (gpa - Base) / K4;

    [Fact]
    public void Dc_civac_on_a_page_mapped_before_logging_was_turned_on_marks_nothing()
    {
        using var s = Guest((Op.Load, 0), (Op.DcCivac, 0), (Op.Store, 0));
        using var memory = s.Vm.AllocateMemory(2 * M2);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory);
        var vcpu = s.AddVcpu();
        Step(vcpu, 1);
        Assert.Equal(12, LeafShift(s, A));
        // kvm_mmu_wp_memory_region: the leaf stays, read-only.
        slot.SetDirtyLogging(true);
        Assert.Equal(12, LeafShift(s, A));
        Step(vcpu, 2);
        Assert.False(slot.GetDirtyLog().IsDirty(PageOf(A)), "DC CIVAC on a write-protected but present page takes no abort");
        // The store takes the permission fault and is logged.
        Step(vcpu, 3);
        Assert.True(slot.GetDirtyLog().IsDirty(PageOf(A)));
    }

    [Fact]
    public void A_store_to_a_page_stored_to_before_logging_was_turned_on_is_logged()
    {
        using var s = Guest((Op.Store, 0), (Op.Store, 0), (Op.Store, 0));
        using var memory = s.Vm.AllocateMemory(2 * M2);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory);
        var vcpu = s.AddVcpu();
        // The page is mapped writable (and the vCPU keeps it writable).
        Step(vcpu, 1);
        slot.SetDirtyLogging(true);
        // Write-protected: the store faults and mark_page_dirty_in_slot logs it.
        Step(vcpu, 2);
        var log = slot.GetDirtyLog();
        Assert.True(log.IsDirty(PageOf(A)), "the first store after logging was turned on is logged");
        Assert.Equal(1UL, log.Count);
        // kvm_get_dirty_log_protect write-protected it again: the next store is logged again.
        Step(vcpu, 3);
        Assert.True(slot.GetDirtyLog().IsDirty(PageOf(A)));
    }

    [Fact]
    public void A_load_after_logging_was_turned_on_keeps_the_write_protected_block_and_marks_nothing()
    {
        using var s = Guest((Op.Load, 0), (Op.Load, 5));
        using var slot = ThpSlot(s, out var memory);
        using var _ = memory;
        var vcpu = s.AddVcpu();
        Step(vcpu, 1);
        Assert.Equal(21, LeafShift(s, A));
        slot.SetDirtyLogging(true);
        // kvm_stage2_wp_range leaves the block whole (no eager split: split_page_chunk_size is 0).
        Assert.Equal(21, LeafShift(s, A));
        // A load elsewhere in the block is no fault: it is not refaulted at PAGE_SIZE (force_pte), nothing is logged.
        Step(vcpu, 2);
        Assert.Equal(21, LeafShift(s, B));
        Assert.Equal(0UL, slot.GetDirtyLog().Count);
    }

    [Fact]
    public void A_store_into_a_write_protected_block_maps_its_page_alone_and_a_cm_op_elsewhere_in_it_is_logged()
    {
        using var s = Guest((Op.Load, 0), (Op.Store, 0), (Op.DcCivac, 5));
        using var slot = ThpSlot(s, out var memory);
        using var _ = memory;
        var vcpu = s.AddVcpu();
        Step(vcpu, 1);
        Assert.Equal(21, LeafShift(s, A));
        slot.SetDirtyLogging(true);
        Step(vcpu, 2);
        // user_mem_abort(fault_is_perm) with logging_active: vma_pagesize PAGE_SIZE ≠ fault_granule PMD_SIZE →
        // kvm_pgtable_stage2_map(PAGE_SIZE): the block becomes a table holding only this page.
        Assert.Equal(12, LeafShift(s, A));
        Assert.Equal(0, LeafShift(s, B));
        var log = slot.GetDirtyLog();
        Assert.True(log.IsDirty(PageOf(A)));
        Assert.Equal(1UL, log.Count);
        // "Accesses beyond 'end' that fall within the new table will be mapped lazily": B's page is unmapped, so the CM
        // op faults, as a write (WnR), and is logged.
        Step(vcpu, 3);
        Assert.True(slot.GetDirtyLog().IsDirty(PageOf(B)));
        Assert.Equal(12, LeafShift(s, B));
    }

    [Fact]
    public void With_initially_set_logging_leaves_a_block_writable_until_clear_dirty_log_protects_it()
    {
        using var s = Guest((Op.Store, 0), (Op.Store, 5), (Op.Store, 0));
        s.Vm.EnableManualDirtyLogProtect(initiallySet: true);
        using var slot = ThpSlot(s, out var memory);
        using var _ = memory;
        var vcpu = s.AddVcpu();
        Step(vcpu, 1);
        Assert.Equal(21, LeafShift(s, A));
        // "1. with initial-all-set: gradually with CLEAR ioctls": nothing is write-protected now.
        slot.SetDirtyLogging(true);
        Step(vcpu, 2);
        Assert.Equal(21, LeafShift(s, B));
        // Every page reads dirty (KVM_DIRTY_LOG_INITIALLY_SET). Clearing them all write-protects the block
        // (kvm_arch_mmu_enable_log_dirty_pt_masked → kvm_stage2_wp_range).
        slot.ClearDirtyLog(0, 2 * M2 / K4);
        Assert.Equal(0UL, slot.GetDirtyLog().Count);
        // The store faults on the read-only block: its page is mapped alone and logged.
        Step(vcpu, 3);
        Assert.Equal(12, LeafShift(s, A));
        Assert.Equal(0, LeafShift(s, B));
        var log = slot.GetDirtyLog();
        Assert.True(log.IsDirty(PageOf(A)));
        Assert.Equal(1UL, log.Count);
    }

    [Fact]
    public void With_initially_set_a_page_stored_to_before_logging_is_logged_after_clear_dirty_log()
    {
        using var s = Guest((Op.Store, 0), (Op.Store, 0), (Op.Store, 0));
        s.Vm.EnableManualDirtyLogProtect(initiallySet: true);
        using var memory = s.Vm.AllocateMemory(2 * M2);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory);
        var vcpu = s.AddVcpu();
        Step(vcpu, 1);
        slot.SetDirtyLogging(true);
        // Still writable: the store takes no fault (its bit was set from the start anyway).
        Step(vcpu, 2);
        slot.ClearDirtyLog(0, 2 * M2 / K4);
        Assert.Equal(0UL, slot.GetDirtyLog().Count);
        // Cleared → write-protected: the store faults and is logged.
        Step(vcpu, 3);
        var log = slot.GetDirtyLog();
        Assert.True(log.IsDirty(PageOf(A)), "a store after CLEAR_DIRTY_LOG write-protected the page is logged");
        Assert.Equal(1UL, log.Count);
    }

    [Fact]
    public void After_logging_is_turned_off_a_store_to_a_page_only_loaded_while_logging_maps_the_thp_block()
    {
        using var s = Guest((Op.Load, 0), (Op.Store, 5), (Op.Store, 5), (Op.Store, 0));
        using var slot = ThpSlot(s, out var memory, MemorySlotFlags.LogDirtyPages);
        using var _ = memory;
        var vcpu = s.AddVcpu();
        // Logging: the load maps A's page alone, read-only ("logging_active && !write_fault": writable = false); the
        // store maps B's page alone, writable.
        Step(vcpu, 1);
        Step(vcpu, 2);
        Assert.Equal(12, LeafShift(s, A));
        Assert.Equal(12, LeafShift(s, B));
        // kvm_arch_commit_memory_region without logging only frees the split cache: the leaves stay as they are.
        slot.SetDirtyLogging(false);
        // B's page is writable: no fault, nothing changes.
        Step(vcpu, 3);
        Assert.Equal(12, LeafShift(s, B));
        Assert.Equal(12, LeafShift(s, A));
        // A's page is read-only: a permission fault at PAGE_SIZE, and transparent_hugepage_adjust gives PMD_SIZE ≠
        // fault_granule → kvm_pgtable_stage2_map maps the block over the table.
        Step(vcpu, 4);
        Assert.Equal(21, LeafShift(s, A));
        Assert.Equal(21, LeafShift(s, B));
        Assert.Equal(0x5A5AUL, memory.Read<ulong>(SlotOffset(memory) + (A - Base)));
    }

    [Fact]
    public void After_logging_is_turned_off_another_vcpus_load_of_a_read_only_page_does_not_let_its_store_skip_the_fault()
    {
        using var s = Guest((Op.Load, 0), (Op.Store, 0));
        using var slot = ThpSlot(s, out var memory, MemorySlotFlags.LogDirtyPages);
        using var _ = memory;
        var first = s.AddVcpu();
        // Logging: the load maps A's page alone, read-only.
        Step(first, 1);
        slot.SetDirtyLogging(false);
        // Another vCPU's load hits the present read-only leaf (no fault); its store then takes the permission fault,
        // which maps the THP block (vma_pagesize PMD_SIZE ≠ fault_granule).
        var second = s.AddVcpu();
        Step(second, 1);
        Assert.Equal(12, LeafShift(s, A));
        Step(second, 2);
        Assert.Equal(21, LeafShift(s, A));
    }

    /// <summary>The offset into the host memory where <see cref="ThpSlot"/> starts the slot.</summary>
    private static ulong SlotOffset(AnonymousMemory memory)
    {
        ulong address = (ulong)memory.Address;
        return ((address + M2 - 1) & ~(M2 - 1)) - address;
    }
}
