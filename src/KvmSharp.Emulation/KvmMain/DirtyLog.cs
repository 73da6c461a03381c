// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/kvm_main.c dirty page logging with bitmaps (CONFIG_KVM_GENERIC_DIRTYLOG_READ_PROTECT, x86 and arm64):
/// KVM_GET_DIRTY_LOG (kvm_get_dirty_log_protect), KVM_CLEAR_DIRTY_LOG (kvm_clear_dirty_log_protect) and
/// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2. With a dirty ring (KvmMain/DirtyRing.cs) kvm_use_dirty_bitmap() is false: no bitmaps, ENXIO.
/// The bitmap needs no write protection: every guest write to a logging slot goes through the fault path, which marks
/// it. On arm64 the pages whose bits are cleared are write-protected all the same (<see cref="EnableLogDirtyPtMasked"/>),
/// since the stage-2 leaves' permissions decide how a later write maps (a block is split) and whether pages the vCPUs
/// cached writable before logging (with KVM_DIRTY_LOG_INITIALLY_SET) fault again.
/// VM ioctls run under the kernel lock; running vCPUs mark bits without it (atomic or).
/// </summary>
internal static class DirtyLog
{
    /// <summary>KVM_DIRTY_LOG_MANUAL_CAPS (include/linux/kvm_host.h): PROTECT_ENABLE | INITIALLY_SET.</summary>
    public const ulong ManualCaps = KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KvmConstants.KVM_DIRTY_LOG_INITIALLY_SET;

    /// <summary>kvm_alloc_dirty_bitmap, then bitmap_set when manual protect with INITIALLY_SET is on.</summary>
    public static ulong[] AllocBitmap(Kvm kvm, ulong npages)
    {
        var bitmap = new ulong[(npages + 63) / 64];
        // kvm_dirty_log_manual_protect_and_init_set().
        if ((kvm.ManualDirtyLogProtect & KvmConstants.KVM_DIRTY_LOG_INITIALLY_SET) != 0)
        {
            for (ulong i = 0; i < npages; i++) bitmap[i / 64] |= 1UL << (int)(i % 64);
        }
        return bitmap;
    }

    /// <summary>kvm_vm_ioctl_enable_cap_generic KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2.</summary>
    public static long EnableManualProtect(Kvm kvm, in kvm_enable_cap cap)
    {
        // INITIALLY_SET is only allowed together with MANUAL_PROTECT_ENABLE.
        ulong allowed = KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
        ulong args0 = cap.args[0];
        if ((args0 & KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) != 0) allowed = ManualCaps;
        if (cap.flags != 0 || (args0 & ~allowed) != 0) return Err.EINVAL;
        kvm.ManualDirtyLogProtect = args0;
        return 0;
    }

    /// <summary>kvm_vm_ioctl KVM_GET_DIRTY_LOG → kvm_vm_ioctl_get_dirty_log → kvm_get_dirty_log_protect.</summary>
    public static long GetIoctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_dirty_log log)) return Err.EFAULT;
        // "Dirty ring tracking may be exclusive to dirty log tracking": !kvm_use_dirty_bitmap → -ENXIO, before the
        // slot checks (probed: slot 9999 with a ring is ENXIO; a bad struct pointer is still EFAULT first).
        if (!kvm.UseDirtyBitmap) return Err.ENXIO;
        if (!ValidSlotId(kvm, log.slot)) return Err.EINVAL;
        if (LoggingSlot(kvm, log.slot) is not { DirtyBitmap: ulong[] bitmap } slot) return Err.ENOENT;
        ulong[] buffer;
        if (kvm.ManualDirtyLogProtect != 0)
        {
            // The bitmap itself goes out; nothing is cleared until KVM_CLEAR_DIRTY_LOG.
            buffer = bitmap;
        }
        else
        {
            // Get-and-clear, word by word (xchg), then write-protect again: cleared even if the copy below fails.
            buffer = new ulong[bitmap.Length];
            for (int i = 0; i < bitmap.Length; i++)
            {
                // kvm_get_dirty_log_protect: "if (!dirty_bitmap[i]) continue; … mask = xchg(&dirty_bitmap[i], 0);
                // dirty_bitmap_buffer[i] = mask; offset = i * BITS_PER_LONG;
                // kvm_arch_mmu_enable_log_dirty_pt_masked(kvm, memslot, offset, mask);"
                if (Volatile.Read(ref bitmap[i]) == 0) continue;
                buffer[i] = Interlocked.Exchange(ref bitmap[i], 0);
                EnableLogDirtyPtMasked(kvm, slot, (ulong)i * 64, buffer[i]);
            }
        }
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(buffer.AsSpan())[..(int)slot.DirtyBitmapBytes];
        return UserMemory.CopyToUser(kvm.Kernel.Config, log.dirty_bitmap, bytes) ? 0 : Err.EFAULT;
    }

    /// <summary>kvm_vm_ioctl KVM_CLEAR_DIRTY_LOG → kvm_clear_dirty_log_protect.</summary>
    public static long ClearIoctl(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_clear_dirty_log log)) return Err.EFAULT;
        // kvm_clear_dirty_log_protect: the same -ENXIO with a ring, before first_page's alignment (probed: first_page 3).
        if (!kvm.UseDirtyBitmap) return Err.ENXIO;
        if (!ValidSlotId(kvm, log.slot)) return Err.EINVAL;
        if ((log.first_page & 63) != 0) return Err.EINVAL;
        if (LoggingSlot(kvm, log.slot) is not { DirtyBitmap: ulong[] bitmap } slot) return Err.ENOENT;
        ulong npages = slot.NPages;
        ulong num = log.num_pages;
        // A partial range must be whole longs, unless it runs to the end of the slot.
        if (log.first_page > npages || num > npages - log.first_page ||
            (num < npages - log.first_page && (num & 63) != 0))
            return Err.EINVAL;
        var mask = new ulong[(num + 63) / 64];
        if (!UserMemory.CopyFromUser(kvm.Kernel.Config, log.dirty_bitmap, MemoryMarshal.AsBytes(mask.AsSpan()))) return Err.EFAULT;
        ulong first = log.first_page / 64;
        for (int i = 0; i < mask.Length; i++)
        {
            // Bits past the slot's last page do not exist in the bitmap's meaning; clearing them is harmless.
            if (mask[i] == 0) continue;
            // kvm_clear_dirty_log_protect: "mask &= atomic_long_fetch_andnot(mask, p); /* mask contains the bits that
            // really have been cleared. */ if (mask) { …; kvm_arch_mmu_enable_log_dirty_pt_masked(kvm, memslot,
            // offset, mask); }".
            ulong cleared = mask[i] & Interlocked.And(ref bitmap[first + (ulong)i], ~mask[i]);
            EnableLogDirtyPtMasked(kvm, slot, log.first_page + (ulong)i * 64, cleared);
        }
        return 0;
    }

    /// <summary>
    /// arm64 mmu.c kvm_arch_mmu_enable_log_dirty_pt_masked for the pages <paramref name="mask"/> names from
    /// <paramref name="offset"/> (relative to the slot): "start = (base_gfn + __ffs(mask)) &lt;&lt; PAGE_SHIFT; end =
    /// (base_gfn + __fls(mask) + 1) &lt;&lt; PAGE_SHIFT; kvm_stage2_wp_range(&amp;kvm-&gt;arch.mmu, start, end);" — the
    /// whole span from the first to the last set bit, a block reaching into it whole (Arm64/Stage2Access.cs
    /// Stage2Permissions.WriteProtect). Then "if (kvm_dirty_log_manual_protect_and_init_set(kvm))
    /// kvm_mmu_split_huge_pages(kvm, start, end)", a no-op while split_page_chunk_size is 0 (the emulator refuses
    /// KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE). x86 models its write protection by marking every write (class summary).
    /// Also the dirty ring's reset (KvmDirtyRing.ResetDirtyGfn), with or without a bitmap.
    /// </summary>
    internal static void EnableLogDirtyPtMasked(Kvm kvm, KvmMemorySlot slot, ulong offset, ulong mask)
    {
        if (mask == 0 || kvm.Arch is not Arch.Arm64Kvm) return;
        ulong start = slot.BaseGfn + offset + (ulong)System.Numerics.BitOperations.TrailingZeroCount(mask);
        ulong end = slot.BaseGfn + offset + (ulong)(63 - System.Numerics.BitOperations.LeadingZeroCount(mask)) + 1;
        kvm.WriteProtectGuestMappings(start, end);
    }

    /// <summary>as_id &lt; kvm_arch_nr_memslot_as_ids and id &lt; KVM_USER_MEM_SLOTS (else EINVAL, before the lookup).</summary>
    private static bool ValidSlotId(Kvm kvm, uint slot) =>
        (int)(slot >> 16) < kvm.Arch.NrMemslotAsIds(kvm) && (ushort)slot < kvm.Arch.UserMemSlots;

    /// <summary>id_to_memslot, when the slot exists and has a dirty bitmap (else ENOENT).</summary>
    private static KvmMemorySlot? LoggingSlot(Kvm kvm, uint slot) =>
        kvm.IdToMemslot((int)(slot >> 16), (ushort)slot) is { DirtyBitmap: not null } s ? s : null;
}
