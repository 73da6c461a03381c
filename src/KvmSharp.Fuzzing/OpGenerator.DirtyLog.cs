// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// Dirty page logging (virt/kvm/kvm_main.c kvm_get_dirty_log_protect, kvm_clear_dirty_log_protect,
/// kvm_vm_ioctl_enable_cap_generic KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, kvm_prepare_memory_region): KVM_GET_DIRTY_LOG and
/// KVM_CLEAR_DIRTY_LOG on the session's plain slots (with and without KVM_MEM_LOG_DIRTY_PAGES, ids out of range, other
/// address spaces, NULL and unwritable bitmaps), manual protect with random options, LOG_DIRTY_PAGES toggled on
/// existing slots, and tiny guests writing into a logging slot (<see cref="FuzzOp.GuestRunDirtyLog"/>). Drawn only on
/// a kernel without guest_memfd (<see cref="NextWithoutGuestMemfd"/>), so a seed's sequence on a kernel with
/// guest_memfd is the one it always was.
/// </summary>
public sealed partial class OpGenerator
{
    private FuzzOp? NextDirtyLog()
    {
        int roll = _rng.Next(100);
        if (roll < 28) return _vms.Count > 0 ? GetDirtyLog() : null;
        if (roll < 46) return _vms.Count > 0 ? ClearDirtyLog() : null;
        if (roll < 58) return _vms.Count > 0 ? EnableManualDirtyLogProtect() : null;
        if (roll < 70)
        {
            // KVM_MR_FLAGS_ONLY: logging on (a new bitmap, all set with INITIALLY_SET) or off (the bitmap is freed).
            if (_plainSlots.Count == 0) return null;
            var old = _plainSlots.Values.ElementAt(_rng.Next(_plainSlots.Count));
            return old with { D = old.D ^ KvmConstants.KVM_MEM_LOG_DIRTY_PAGES };
        }
        if (_systems.Count == 0) return null;
        int realMode = _rng.Next(2);
        int e = realMode | FuzzOp.GuestRunInHostMemory | FuzzOp.GuestRunDirtyLog | (realMode == 0 && _rng.Next(3) == 0 ? FuzzOp.GuestRunFarTransfers : 0)
            | (_includeReported ? FuzzOp.GuestRunWithReported : 0);
        return new FuzzOp(OpKind.GuestRun, Target: Pick(_systems), A: (ulong)_rng.Next(), E: e);
    }

    /// <summary>A slot argument: mostly a slot the VM has, sometimes an id out of range or in another address space.</summary>
    private (uint Slot, ulong Pages) DirtyLogSlot(int vm)
    {
        var slots = _plainSlots.Where(p => p.Key.Vm == vm).Select(p => p.Value).ToList();
        int roll = _rng.Next(20);
        if (roll < 13 && slots.Count > 0)
        {
            // Mostly one that logs (the rest answer ENOENT like a slot that does not exist).
            var logging = slots.Where(s => (s.D & KvmConstants.KVM_MEM_LOG_DIRTY_PAGES) != 0).ToList();
            var slot = logging.Count > 0 && _rng.Next(4) != 0 ? logging[_rng.Next(logging.Count)] : slots[_rng.Next(slots.Count)];
            return ((uint)slot.E, slot.B / Ps);
        }
        uint id = roll switch
        {
            < 15 => (uint)_rng.Next(4),                                          // maybe a slot, maybe none (ENOENT)
            15 => (uint)(_rng.Next(1, 4) << 16) | (uint)_rng.Next(4),            // as_id 1..3: no SMM address space here
            16 => 32764 + (uint)_rng.Next(4),                                    // KVM_USER_MEM_SLOTS and the private ids
            17 => 0xFFFF,
            18 => (uint)_rng.Next(4) | 0x8000_0000,                              // as_id 0x8000
            _ => (uint)_rng.NextInt64(0, 1L << 32),
        };
        return (id, 8);
    }

    private (DirtyBitmapAt At, ulong Offset) DirtyBitmapPointer()
    {
        var at = _rng.Next(16) switch
        {
            0 => DirtyBitmapAt.Null,
            1 => DirtyBitmapAt.KernelHalf,
            2 => DirtyBitmapAt.ReadOnly,
            3 => DirtyBitmapAt.Guard,
            4 => DirtyBitmapAt.StraddleReadOnly,
            5 => DirtyBitmapAt.StraddleGuard,
            _ => DirtyBitmapAt.Scratch,
        };
        // Mostly long-aligned; the kernel does not care about the bitmap's alignment.
        ulong offset = _rng.Next(4) == 0 ? (ulong)_rng.Next(0, 64) : 8 * (ulong)_rng.Next(0, 8);
        return (at, offset);
    }

    private FuzzOp GetDirtyLog()
    {
        int vm = _rng.Next(20) == 0 ? PickMaybeClosed(_vms) : Pick(_vms);
        var (slot, _) = DirtyLogSlot(vm);
        var (at, offset) = DirtyBitmapPointer();
        return new FuzzOp(OpKind.GetDirtyLog, Target: vm, A: slot, C: offset, D: (ulong)at);
    }

    private FuzzOp ClearDirtyLog()
    {
        int vm = _rng.Next(20) == 0 ? PickMaybeClosed(_vms) : Pick(_vms);
        var (slot, pages) = DirtyLogSlot(vm);
        ulong first = _rng.Next(16) switch
        {
            < 12 => 0,
            12 => 64,                                          // beyond every session slot (at most 8 pages)
            13 => (ulong)_rng.Next(1, 64),                     // not a multiple of 64
            14 => pages,                                       // at the end: only num_pages = 0 fits
            _ => _rng.Next(2) == 0 ? (ulong)_rng.NextInt64() | 1UL << 63 : 64UL << _rng.Next(6, 40),
        };
        ulong num = _rng.Next(16) switch
        {
            < 9 => pages,
            9 => 0,                                            // nothing to clear: fine anywhere up to the end
            10 => pages + 1,
            11 or 12 => (ulong)_rng.NextInt64(1, (long)pages + 1),   // a partial word before the end: EINVAL unless all
            13 => 64,
            14 => uint.MaxValue,
            _ => (ulong)_rng.NextInt64(0, 1L << 32),
        };
        ulong mask = _rng.Next(8) switch
        {
            < 3 => ulong.MaxValue,
            3 or 4 => (ulong)_rng.NextInt64(),
            5 or 6 => 1UL << _rng.Next(8),
            _ => 0,
        };
        var (at, offset) = DirtyBitmapPointer();
        return new FuzzOp(OpKind.ClearDirtyLog, Target: vm, A: slot, B: first, C: mask, D: (ulong)at, E: unchecked((int)(uint)num), U: offset);
    }

    private FuzzOp EnableManualDirtyLogProtect()
    {
        ulong args = _rng.Next(16) switch
        {
            < 5 => KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
            < 10 => KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KvmConstants.KVM_DIRTY_LOG_INITIALLY_SET,
            < 12 => 0,                                           // back to get-and-clear
            12 => KvmConstants.KVM_DIRTY_LOG_INITIALLY_SET,      // INITIALLY_SET alone: EINVAL
            13 => 1UL << _rng.Next(64),
            _ => (ulong)_rng.NextInt64(),
        };
        ulong flags = _rng.Next(10) == 0 ? (ulong)_rng.Next(1, 4) : 0;
        return new FuzzOp(OpKind.EnableCap, Target: _rng.Next(20) == 0 ? PickMaybeClosed(_vms) : Pick(_vms), A: KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, B: flags, C: args);
    }
}
