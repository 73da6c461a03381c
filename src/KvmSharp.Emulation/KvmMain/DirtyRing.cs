// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/kvm_main.c, the VM side of the dirty ring: kvm_vm_ioctl_enable_cap_generic's KVM_CAP_DIRTY_LOG_RING,
/// _ACQ_REL and _WITH_BITMAP, kvm_vm_ioctl_enable_dirty_log_ring and kvm_vm_ioctl_reset_dirty_pages
/// (KVM_RESET_DIRTY_RINGS). The per-vCPU ring is <see cref="KvmDirtyRing"/>; its mmap rules are on the vCPU fd
/// (Vcpu/KvmVcpuFile.cs), the soft-full exit in Vcpu/VcpuRun.cs.
/// </summary>
internal static class DirtyRing
{
    /// <summary>sizeof(struct kvm_dirty_gfn).</summary>
    public const uint EntryBytes = 16;

    /// <summary>
    /// KVM_CAP_DIRTY_LOG_RING / _ACQ_REL: "if (!kvm_vm_ioctl_check_extension_generic(kvm, cap->cap)) return -EINVAL;"
    /// then kvm_vm_ioctl_enable_dirty_log_ring(kvm, cap->args[0]) — a u32 parameter, so args[0]'s high half is
    /// dropped (probed: 1 &lt;&lt; 32 | 4096 is accepted as 4096, 1 &lt;&lt; 32 alone is EINVAL). cap->flags is
    /// not looked at (probed: flags = 1 accepted).
    /// </summary>
    public static long Enable(Kvm kvm, in kvm_enable_cap cap)
    {
        if (CheckExtension.Check(kvm.Kernel, kvm, cap.cap) == 0) return Err.EINVAL;
        uint size = (uint)cap.args[0];
        // "the size should be power of 2" (probed: 0, 1000 EINVAL).
        if (size == 0 || (size & (size - 1)) != 0) return Err.EINVAL;
        // "Should be bigger to keep the reserved entries, or a page" (probed: 1024, 2048 EINVAL; 4096 accepted).
        if (size < KvmDirtyRing.RsvdEntries * EntryBytes || size < (uint)EmulatorConfig.PageSize) return Err.EINVAL;
        // KVM_DIRTY_RING_MAX_ENTRIES * sizeof(struct kvm_dirty_gfn) (probed: 2 MiB, 4 MiB, 2 GiB → E2BIG).
        if (size > KvmDirtyRing.MaxEntries * EntryBytes) return Err.E2BIG;
        // "We only allow it to set once" (probed: a second enable of either cap, any size that passed the checks
        // above, EINVAL; a too-large one is still E2BIG first).
        if (kvm.DirtyRingSize != 0) return Err.EINVAL;
        // "We don't allow to change this value after vcpu created" — kvm->created_vcpus, which a closed vCPU fd does
        // not lower (probed), and a KVM_CREATE_VCPU refused by its id check never raised (probed).
        if (kvm.Vcpus.Count != 0) return Err.EINVAL;
        kvm.DirtyRingSize = size;
        // Memslots may exist already (probed: a LOG_DIRTY_PAGES slot, then the ring, is accepted; its GET_DIRTY_LOG is
        // then ENXIO and guest writes are pushed). Such a slot keeps its bitmap, unused. No vCPU has run, so no page
        // was mapped writable: each page's first write is pushed (found by the raw fuzzer: the ring's write-protection
        // state was missing for slots older than the ring).
        for (int asId = 0; asId < kvm.Arch.MaxNrAddressSpaces; asId++)
        {
            foreach (var slot in kvm.Memslots(asId).Values)
            {
                if (slot.DirtyTrackEnabled) slot.RingWritable = new ulong[(slot.NPages + 63) / 64];
            }
        }
        return 0;
    }

    /// <summary>
    /// KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP: "if (!IS_ENABLED(CONFIG_NEED_KVM_DIRTY_RING_WITH_BITMAP) ||
    /// !kvm->dirty_ring_size || cap->flags) return -EINVAL;" then, under slots_lock, only while every memslot is
    /// empty (else EINVAL). x86 does not need it (its check_extension is 0: probed EINVAL with and without a ring).
    /// </summary>
    public static long EnableWithBitmap(Kvm kvm, in kvm_enable_cap cap)
    {
        if (CheckExtension.Check(kvm.Kernel, kvm, cap.cap) == 0 || kvm.DirtyRingSize == 0 || cap.flags != 0) return Err.EINVAL;
        for (int asId = 0; asId < kvm.Arch.MaxNrAddressSpaces; asId++)
        {
            if (kvm.Memslots(asId).Count != 0) return Err.EINVAL;
        }
        kvm.DirtyRingWithBitmap = true;
        return 0;
    }

    /// <summary>
    /// kvm_vm_ioctl_reset_dirty_pages (KVM_RESET_DIRTY_RINGS, an _IO: the argument is ignored): EINVAL without a ring
    /// (probed); then every vCPU's ring in kvm_for_each_vcpu order with one shared count, which is the result.
    /// </summary>
    public static long ResetIoctl(Kvm kvm)
    {
        if (kvm.DirtyRingSize == 0) return Err.EINVAL;
        int cleared = 0;
        foreach (var vcpu in kvm.Vcpus)
        {
            vcpu.DirtyRing?.Reset(kvm, ref cleared);
        }
        return cleared;
    }
}
