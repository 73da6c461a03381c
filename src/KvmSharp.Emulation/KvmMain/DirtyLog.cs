// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/kvm_main.c dirty page logging with bitmaps (CONFIG_KVM_GENERIC_DIRTYLOG_READ_PROTECT, x86 and arm64):
/// KVM_GET_DIRTY_LOG (kvm_get_dirty_log_protect), KVM_CLEAR_DIRTY_LOG (kvm_clear_dirty_log_protect) and
/// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2. With a dirty ring (KvmMain/DirtyRing.cs) kvm_use_dirty_bitmap() is false: no bitmaps, ENXIO.
/// Write protection is implicit: every guest write to a logging slot goes through the fault path, which marks it.
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
            for (int i = 0; i < bitmap.Length; i++) buffer[i] = Interlocked.Exchange(ref bitmap[i], 0);
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
            if (mask[i] != 0) Interlocked.And(ref bitmap[first + (ulong)i], ~mask[i]);
        }
        return 0;
    }

    /// <summary>as_id &lt; kvm_arch_nr_memslot_as_ids and id &lt; KVM_USER_MEM_SLOTS (else EINVAL, before the lookup).</summary>
    private static bool ValidSlotId(Kvm kvm, uint slot) =>
        (int)(slot >> 16) < kvm.Arch.NrMemslotAsIds(kvm) && (ushort)slot < kvm.Arch.UserMemSlots;

    /// <summary>id_to_memslot, when the slot exists and has a dirty bitmap (else ENOENT).</summary>
    private static KvmMemorySlot? LoggingSlot(Kvm kvm, uint slot) =>
        kvm.IdToMemslot((int)(slot >> 16), (ushort)slot) is { DirtyBitmap: not null } s ? s : null;
}
