// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>virt/kvm/kvm_main.c: KVM_SET_USER_MEMORY_REGION[2] down to kvm_set_memslot().</summary>
internal static class SetMemoryRegion
{
    /// <summary>KVM_SET_USER_MEMORY_REGION_V1_FLAGS (kvm_main.c).</summary>
    private const uint V1Flags = KvmConstants.KVM_MEM_LOG_DIRTY_PAGES | KvmConstants.KVM_MEM_READONLY;

    /// <summary>KVM_MEM_MAX_NR_PAGES ((1UL &lt;&lt; 31) - 1): dirty bitmaps are indexed by unsigned int.</summary>
    private const ulong KVM_MEM_MAX_NR_PAGES = (1UL << 31) - 1;

    /// <summary>
    /// kvm_vm_ioctl KVM_SET_USER_MEMORY_REGION / KVM_SET_USER_MEMORY_REGION2: copy the struct (v1 into a zeroed v2),
    /// reject v2-only flags on v1, then kvm_vm_ioctl_set_memory_region.
    /// </summary>
    public static long Ioctl(Kvm kvm, IoctlArg arg, bool v2)
    {
        kvm_userspace_memory_region2 mem;
        if (v2)
        {
            if (!arg.CopyFromUser(out mem)) return Err.EFAULT;
        }
        else
        {
            if (!arg.CopyFromUserPrefix(System.Runtime.CompilerServices.Unsafe.SizeOf<kvm_userspace_memory_region>(), out mem)) return Err.EFAULT;
            // KVM_SET_USER_MEMORY_REGION accepts only LOG_DIRTY_PAGES|READONLY (so no GUEST_MEMFD) → EINVAL.
            if ((mem.flags & ~V1Flags) != 0) return Err.EINVAL;
        }
        // kvm_vm_ioctl_set_memory_region: (u16)slot >= KVM_USER_MEM_SLOTS → EINVAL.
        if ((ushort)mem.slot >= kvm.Arch.UserMemSlots) return Err.EINVAL;
        return Set(kvm, mem);
    }

    /// <summary>check_memory_region_flags().</summary>
    private static long CheckMemoryRegionFlags(Kvm kvm, in kvm_userspace_memory_region2 mem)
    {
        uint valid = KvmConstants.KVM_MEM_LOG_DIRTY_PAGES;
        bool gmem = (mem.flags & KvmConstants.KVM_MEM_GUEST_MEMFD) != 0;
        // 6.18: IS_ENABLED(CONFIG_KVM_GUEST_MEMFD); 6.8–6.17: kvm_arch_has_private_mem(kvm).
        var config = kvm.Kernel.Config;
        if (config.Kconfig.KVM_GUEST_MEMFD && (config.Generation.HasGmemMmap() || kvm.Arch.HasPrivateMem(kvm)))
            valid |= KvmConstants.KVM_MEM_GUEST_MEMFD;
        // Dirty logging private memory is not currently supported.
        if (gmem) valid &= ~KvmConstants.KVM_MEM_LOG_DIRTY_PAGES;
        // GUEST_MEMFD is incompatible with read-only memslots (writes to RO slots are emulated MMIO).
        if (kvm.Arch.HasReadonlyMem(kvm) && !gmem) valid |= KvmConstants.KVM_MEM_READONLY;
        // [PATCH v3 07/15]: "if (IS_ENABLED(CONFIG_KVM_GENERIC_PAGE_FAULT)) valid_flags |= KVM_MEM_USERFAULT" — on
        // every slot kind (plain, READONLY, LOG_DIRTY_PAGES, GUEST_MEMFD).
        if (config.KvmUserfault) valid |= KvmConstants.KVM_MEM_USERFAULT;
        return (mem.flags & ~valid) != 0 ? Err.EINVAL : 0;
    }

    /// <summary>kvm_set_memory_region(), checks in the kernel's order.</summary>
    public static long Set(Kvm kvm, in kvm_userspace_memory_region2 mem)
    {
        long r = CheckMemoryRegionFlags(kvm, mem);
        if (r != 0) return r;

        ulong page = (ulong)EmulatorConfig.PageSize;
        int shift = EmulatorConfig.PageShift;
        int asId = (int)(mem.slot >> 16);
        int id = (ushort)mem.slot;
        bool gmem = (mem.flags & KvmConstants.KVM_MEM_GUEST_MEMFD) != 0;

        // General sanity checks.
        if ((mem.memory_size & (page - 1)) != 0) return Err.EINVAL;
        if ((mem.guest_phys_addr & (page - 1)) != 0) return Err.EINVAL;
        // userspace_addr unaligned, or !access_ok(userspace_addr, memory_size) (also for guest_memfd slots).
        if ((mem.userspace_addr & (page - 1)) != 0 || !AccessOk(kvm, mem.userspace_addr, mem.memory_size)) return Err.EINVAL;
        if (gmem && ((mem.guest_memfd_offset & (page - 1)) != 0 ||
                     mem.guest_memfd_offset + mem.memory_size < mem.guest_memfd_offset))
            return Err.EINVAL;
        if (asId >= kvm.Arch.NrMemslotAsIds(kvm) || id >= short.MaxValue) return Err.EINVAL;
        if (mem.guest_phys_addr + mem.memory_size < mem.guest_phys_addr) return Err.EINVAL;
        if (id < kvm.Arch.UserMemSlots && (mem.memory_size >> shift) > KVM_MEM_MAX_NR_PAGES) return Err.EINVAL;
        if (!Userfault.BitmapOk(kvm, mem)) return Err.EINVAL;

        KvmMemorySlot? old = kvm.IdToMemslot(asId, id);
        if (mem.memory_size == 0)
        {
            if (old is null) return Err.EINVAL;
            DeleteMemslot(kvm, old);
            return 0;
        }

        ulong baseGfn = mem.guest_phys_addr >> shift;
        ulong npages = mem.memory_size >> shift;
        MemslotChange change;
        if (old is null)
        {
            change = MemslotChange.Create;
            // The total number of pages across all memslots must fit in an unsigned long.
            if (kvm.NrMemslotPages + npages < kvm.NrMemslotPages) return Err.EINVAL;
        }
        else
        {
            // Private memslots are immutable, they can only be deleted — until [PATCH v3 04/15] (Sean's rework in his
            // review of v2 03/13) drops that rule for "guest_memfd slots can't be MOVED", checked below.
            bool userfaultTree = kvm.Kernel.Config.KvmUserfault;
            if (gmem && !userfaultTree) return Err.EINVAL;
            // "KVM: Disallow toggling KVM_MEM_GUEST_MEMFD on an existing memslot" (in 6.18, observed on this
            // host): userspace_addr, size, READONLY and GUEST_MEMFD cannot change.
            if (mem.userspace_addr != old.UserspaceAddr || npages != old.NPages ||
                ((mem.flags ^ old.Flags) & (KvmConstants.KVM_MEM_READONLY | KvmConstants.KVM_MEM_GUEST_MEMFD)) != 0)
                return Err.EINVAL;
            // [PATCH v3 04/15] kvm_set_memory_region: "Moving a guest_memfd memslot isn't supported."
            if (userfaultTree && gmem && baseGfn != old.BaseGfn) return Err.EINVAL;
            if (baseGfn != old.BaseGfn) change = MemslotChange.Move;
            else if (mem.flags != old.Flags) change = MemslotChange.FlagsOnly;
            // Nothing to change — also when only userfault_bitmap differs: the slot keeps reading the old bitmap
            // ([PATCH v3 04/15] compares flags only; userspace turns the flag off and on to switch bitmaps).
            else return 0;
        }

        if (change is MemslotChange.Create or MemslotChange.Move && Overlaps(kvm, asId, id, baseGfn, baseGfn + npages))
            return Err.EEXIST;

        var newSlot = new KvmMemorySlot(asId, id, baseGfn, npages, mem.flags, mem.userspace_addr);
        // [PATCH v3 04/15]: "if (mem->flags & KVM_MEM_GUEST_MEMFD && change == KVM_MR_CREATE)" — a flags-only change
        // of a guest_memfd slot keeps its binding (guest_memfd and guest_memfd_offset of the request are not read).
        bool bind = gmem && change == MemslotChange.Create;
        if (bind)
        {
            r = GmemBind.Bind(kvm, newSlot, mem.guest_memfd, (long)mem.guest_memfd_offset);
            if (r != 0) return r;
        }

        // kvm_set_memslot → kvm_prepare_memory_region → kvm_arch_prepare_memory_region; failure → out_unbind.
        r = kvm.Arch.PrepareMemoryRegion(kvm, newSlot, change);
        if (r != 0)
        {
            if (bind) GmemBind.Unbind(newSlot);
            return r;
        }

        // kvm_prepare_memory_region: no LOG_DIRTY_PAGES → no bitmap; an existing bitmap is kept (move, flags-only
        // with logging on before and after); otherwise a new one, all set with KVM_DIRTY_LOG_INITIALLY_SET.
        // "else if (kvm_use_dirty_bitmap(kvm))": a VM with a dirty ring gets no bitmap (KvmMain/DirtyRing.cs).
        bool logging = (mem.flags & KvmConstants.KVM_MEM_LOG_DIRTY_PAGES) != 0;
        ulong[]? bitmap = !logging ? null
            : old?.DirtyBitmap ?? (kvm.UseDirtyBitmap ? DirtyLog.AllocBitmap(kvm, npages) : null);
        // With a ring, a logging slot starts write-protected (created, moved — the old mappings are zapped — or
        // logging just turned on: kvm_mmu_slot_apply_flags), so every page's first write is pushed.
        ulong[]? ringWritable = logging && kvm.DirtyRingSize != 0 ? new ulong[(npages + 63) / 64] : null;

        switch (change)
        {
            case MemslotChange.Create:
                newSlot.DirtyBitmap = bitmap;
                newSlot.RingWritable = ringWritable;
                newSlot.UserfaultBitmap = Userfault.BitmapOf(mem);
                kvm.InstallMemslot(newSlot);
                kvm.NrMemslotPages += npages;
                kvm.MmuPagesAvailable = true;
                break;
            case MemslotChange.Move:
                // kvm_move_memslot: the old GFN range is zapped.
                old!.BaseGfn = baseGfn;
                old.Flags = mem.flags;
                old.DirtyBitmap = bitmap;
                old.RingWritable = ringWritable;
                old.UserfaultBitmap = Userfault.BitmapOf(mem);
                kvm.InvalidateGuestMappings();
                break;
            case MemslotChange.FlagsOnly:
                // x86.c kvm_mmu_slot_apply_flags: turning dirty logging on write-protects the slot, so the next write
                // to every page faults and is logged; the vCPUs' cached writable pages go the same way. x86 models
                // that by zapping: the bitmap and ring come out the same, but the kernel keeps the leaves
                // (kvm_mmu_slot_remove_write_access; with eager_page_split huge ones are split to 4K, and nothing at all
                // with KVM_DIRTY_LOG_INITIALLY_SET), so pages_4k/2m differ. kvm_pvm never moves those statistics
                // (HostDeviations KvmPvmPageStatsStayZero), so no both-kernel case can check a change: x86 stays as is.
                // arm64 write-protects instead (CommitArm64Logging).
                bool startsLogging = (mem.flags & ~old!.Flags & KvmConstants.KVM_MEM_LOG_DIRTY_PAGES) != 0;
                // [PATCH v3 04/15] kvm_commit_memory_region: turning KVM_MEM_USERFAULT on calls
                // kvm_arch_userfault_enabled (kvm_arch_flush_shadow_memslot: every translation of the slot is
                // dropped), so pages the guest already mapped fault again and see the bitmap.
                bool startsUserfault = (mem.flags & ~old.Flags & KvmConstants.KVM_MEM_USERFAULT) != 0;
                old.Flags = mem.flags;
                old.DirtyBitmap = bitmap;
                old.RingWritable = ringWritable;
                old.UserfaultBitmap = Userfault.BitmapOf(mem);
                bool arm64 = kvm.Arch is Arch.Arm64Kvm;
                if (startsUserfault || (startsLogging && !arm64)) kvm.InvalidateGuestMappings();
                else if (arm64 && logging) CommitArm64Logging(kvm, old);
                break;
        }
        return 0;
    }

    /// <summary>
    /// arm64 mmu.c kvm_arch_commit_memory_region for a slot that logs after a flags-only change (logging turned on, or
    /// kept on while another flag changed). CREATE and MOVE need nothing here: a new slot's range has no leaves, and a
    /// move zapped them all. Nothing is zapped, so a page mapped before stays mapped: a read or a cache-maintenance
    /// operation on it takes no abort and marks nothing; a write takes a permission fault and is logged.
    /// </summary>
    private static void CommitArm64Logging(Kvm kvm, KvmMemorySlot slot)
    {
        // "Huge and normal pages are write-protected and split on either of these two cases: 1. with initial-all-set:
        // gradually with CLEAR ioctls," — "if (kvm_dirty_log_manual_protect_and_init_set(kvm)) return;" (the leaves
        // keep their write permission; every page is reported dirty until cleared).
        if ((kvm.ManualDirtyLogProtect & KvmConstants.KVM_DIRTY_LOG_INITIALLY_SET) != 0) return;
        // "2. without initial-all-set: all in one shot when enabling dirty logging." — kvm_mmu_wp_memory_region (every
        // present PUD, PMD and PTE of the slot write-protected, blocks left whole), then kvm_mmu_split_memory_region,
        // which splits nothing while split_page_chunk_size is 0 (Arm64/Stage2MappingSize.cs).
        kvm.WriteProtectGuestMappings(slot.BaseGfn, slot.EndGfn);
    }

    /// <summary>kvm_set_memslot(KVM_MR_DELETE): zap, unbind guest_memfd (its pages stay: lifetime = inode), free.</summary>
    public static void DeleteMemslot(Kvm kvm, KvmMemorySlot slot)
    {
        kvm.InvalidateGuestMappings();
        Arch.TdxSept.Zap(kvm, slot.BaseGfn, slot.BaseGfn + slot.NPages); // kvm_arch_flush_shadow_memslot: a TD's private leaves
        if (slot.HasGmem) GmemBind.Unbind(slot);
        kvm.RemoveMemslot(slot);
        kvm.NrMemslotPages -= slot.NPages;
    }

    /// <summary>kvm_check_memslot_overlap(): another slot of the address space intersects [start, end).</summary>
    private static bool Overlaps(Kvm kvm, int asId, int id, ulong start, ulong end)
    {
        foreach (var slot in kvm.Memslots(asId).Values)
        {
            if (slot.Id != id && slot.BaseGfn < end && start < slot.EndGfn) return true;
        }
        return false;
    }

    /// <summary>
    /// access_ok(addr, size): the range ends at or below TASK_SIZE_MAX without wrapping (x86_64 valid_user_address
    /// on addr + size; observed: 0x7fff_ffff_e000 + 4 KiB passes, 0x7fff_ffff_f000 + 4 KiB fails).
    /// </summary>
    private static bool AccessOk(Kvm kvm, ulong address, ulong size)
    {
        ulong sum = address + size;
        return sum >= address && sum <= kvm.Kernel.Config.TaskSizeMax;
    }
}
