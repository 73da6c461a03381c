// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// <c>struct kvm_dirty_ring</c> of one vCPU (virt/kvm/dirty_ring.c, 6.16+): the array of struct kvm_dirty_gfn lives
/// in the vCPU's memfd at page KVM_DIRTY_LOG_PAGE_OFFSET, so a userspace mapping of the vCPU fd there sees the same
/// bytes. dirty_index and reset_index are kernel-private. Pushes come from the vCPU's own thread; reset from a VM
/// ioctl; both run under the kernel lock (slots_lock / mmu_lock in the kernel).
/// </summary>
internal sealed class KvmDirtyRing : IDisposable
{
    /// <summary>KVM_DIRTY_RING_RSVD_ENTRIES (include/linux/kvm_dirty_ring.h).</summary>
    public const uint RsvdEntries = 64;

    /// <summary>KVM_DIRTY_RING_MAX_ENTRIES (include/linux/kvm_dirty_ring.h).</summary>
    public const uint MaxEntries = 65536;

    private readonly HostMapping _map;

    private KvmDirtyRing(HostMapping map, uint size)
    {
        _map = map;
        Size = size;
        // kvm_dirty_ring_alloc: soft_limit = size - kvm_dirty_ring_get_rsvd_entries(kvm); x86 without PML adds 0
        // (kvm->arch.cpu_dirty_log_size: SVM and this host take 4096-byte rings, so the reserve is 64 entries).
        SoftLimit = size - RsvdEntries;
    }

    /// <summary>ring->size: entries (a power of two).</summary>
    public uint Size { get; }

    /// <summary>ring->soft_limit.</summary>
    public uint SoftLimit { get; }

    /// <summary>ring->dirty_index: free-running, the next entry KVM fills.</summary>
    public uint DirtyIndex { get; private set; }

    /// <summary>ring->reset_index: free-running, the next entry KVM_RESET_DIRTY_RINGS looks at.</summary>
    public uint ResetIndex { get; private set; }

    /// <summary>KVM_REQ_DIRTY_RING_SOFT_FULL is pending on the vCPU.</summary>
    public bool SoftFullRequested { get; private set; }

    /// <summary>kvm_dirty_ring_used (u32 arithmetic: a reset past dirty_index wraps, as in the kernel).</summary>
    public uint Used => DirtyIndex - ResetIndex;

    /// <summary>kvm_dirty_ring_soft_full.</summary>
    public bool SoftFull => Used >= SoftLimit;

    /// <summary>kvm_dirty_ring_alloc (vzalloc: every entry starts with flags 0) over the vCPU memfd's ring pages.</summary>
    public static long Create(int memfd, uint bytes, out KvmDirtyRing? ring)
    {
        ring = null;
        long offset = (long)KvmConstants.KVM_DIRTY_LOG_PAGE_OFFSET * EmulatorConfig.PageSize;
        long rc = HostMapping.MapShared(memfd, offset, bytes, out var map);
        if (rc < 0) return Vfs.Err.ENOMEM;
        map!.GetSpan(0, (int)bytes).Clear();
        ring = new KvmDirtyRing(map, bytes / (uint)Marshal.SizeOf<kvm_dirty_gfn>());
        return 0;
    }

    private ref kvm_dirty_gfn Entry(uint index) =>
        ref MemoryMarshal.AsRef<kvm_dirty_gfn>(_map.GetSpan((ulong)(index & (Size - 1)) * 16, 16));

    /// <summary>
    /// kvm_dirty_ring_push: fill slot and offset, then publish flags = KVM_DIRTY_GFN_F_DIRTY (smp_wmb before it);
    /// soft full → KVM_REQ_DIRTY_RING_SOFT_FULL. A full ring is a WARN_ON_ONCE in the kernel and the entry is
    /// written anyway (over the oldest one): the same here, without the warning.
    /// </summary>
    public void Push(uint slot, ulong offset)
    {
        ref var e = ref Entry(DirtyIndex);
        e.slot = slot;
        e.offset = offset;
        Volatile.Write(ref e.flags, KvmConstants.KVM_DIRTY_GFN_F_DIRTY);
        DirtyIndex++;
        if (SoftFull) SoftFullRequested = true;
    }

    /// <summary>
    /// kvm_dirty_ring_check_request (vcpu_enter_guest, right after KVM_REQ_VM_DEAD): the request is consumed, and
    /// made again with KVM_EXIT_DIRTY_RING_FULL while the ring is still soft full, so the vCPU cannot run until
    /// userspace resets the ring.
    /// </summary>
    public bool CheckRequest()
    {
        if (!SoftFullRequested) return false;
        SoftFullRequested = false;
        if (!SoftFull) return false;
        SoftFullRequested = true;
        return true;
    }

    /// <summary>
    /// kvm_dirty_ring_reset: from reset_index, every entry whose flags have KVM_DIRTY_GFN_F_RESET (whatever else they
    /// hold, published by KVM or not) is freed (flags = 0, store-release) and counted; runs of entries of one slot
    /// within 64 pages of each other are re-protected together (kvm_reset_dirty_gfn with a mask). Stops at the first
    /// entry without RESET, or when the shared count reaches INT_MAX.
    /// </summary>
    public void Reset(Kvm kvm, ref int nrEntriesReset)
    {
        uint curSlot = 0;
        ulong curOffset = 0;
        ulong mask = 0;
        while (nrEntriesReset < int.MaxValue)
        {
            ref var entry = ref Entry(ResetIndex);
            // kvm_dirty_gfn_harvested: smp_load_acquire(&gfn->flags) & KVM_DIRTY_GFN_F_RESET.
            if ((Volatile.Read(ref entry.flags) & KvmConstants.KVM_DIRTY_GFN_F_RESET) == 0) break;
            uint nextSlot = entry.slot;
            ulong nextOffset = entry.offset;
            Volatile.Write(ref entry.flags, 0u);
            ResetIndex++;
            nrEntriesReset++;
            if (mask != 0)
            {
                // "Try to coalesce the reset operations when the guest is scanning pages in the same slot."
                if (nextSlot == curSlot)
                {
                    long delta = (long)(nextOffset - curOffset);
                    if (delta >= 0 && delta < 64)
                    {
                        mask |= 1UL << (int)delta;
                        continue;
                    }
                    // "Backwards visit, careful about overflows!"
                    if (delta > -64 && delta < 0 && (mask << (int)-delta >> (int)-delta) == mask)
                    {
                        curOffset = nextOffset;
                        mask = (mask << (int)-delta) | 1;
                        continue;
                    }
                }
                ResetDirtyGfn(kvm, curSlot, curOffset, mask);
            }
            curSlot = nextSlot;
            curOffset = nextOffset;
            mask = 1;
        }
        if (mask != 0) ResetDirtyGfn(kvm, curSlot, curOffset, mask);
    }

    /// <summary>
    /// kvm_reset_dirty_gfn: as_id and id in range, the slot exists and offset + __fls(mask) lies inside it — else the
    /// whole batch is skipped (so a batch holding one out-of-range offset re-protects none of its pages) —, then
    /// kvm_arch_mmu_enable_log_dirty_pt_masked write-protects the pages again: x86 as <see cref="KvmMemorySlot.RingWritable"/>;
    /// arm64 (mmu.c) with kvm_stage2_wp_range over the span from the first to the last page of the mask, blocks whole,
    /// whether the slot has a dirty bitmap or not (DirtyLog.EnableLogDirtyPtMasked). A slot that does not log is
    /// skipped ("[PATCH v3 1/3] KVM: Do not reset dirty GFNs in a memslot not enabling dirty tracking", Yan Zhao,
    /// 2025-08-22: "!kvm_slot_dirty_track_enabled(memslot)" joins the range check).
    /// </summary>
    private static void ResetDirtyGfn(Kvm kvm, uint slot, ulong offset, ulong mask)
    {
        int asId = (int)(slot >> 16);
        int id = (ushort)slot;
        if (asId >= kvm.Arch.NrMemslotAsIds(kvm) || id >= kvm.Arch.UserMemSlots) return;
        var memslot = kvm.IdToMemslot(asId, id);
        ulong fls = (ulong)(63 - System.Numerics.BitOperations.LeadingZeroCount(mask));
        if (memslot is null || offset + fls >= memslot.NPages || !memslot.DirtyTrackEnabled) return;
        memslot.ReprotectForRing(offset, mask);
        DirtyLog.EnableLogDirtyPtMasked(kvm, memslot, offset, mask);
    }

    public void Dispose() => _map.Dispose();
}
