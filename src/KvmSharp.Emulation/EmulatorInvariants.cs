// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.MemoryAttributes;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Memory;

namespace KvmSharp.Emulation;

/// <summary>
/// The emulated kernel's structural invariants, checked from the outside after any call (used by the raw-byte
/// fuzzer). Each rule names what the kernel guarantees and where:
/// <list type="bullet">
/// <item>memslots: no two slots of one VM address space overlap in GFN (kvm_check_memslot_overlap, virt/kvm/kvm_main.c);
/// every slot is non-empty, keyed by its own id, and kvm->nr_memslot_pages is their sum; a slot has a dirty bitmap
/// exactly when it logs, of whole longs, with no bit past its last page (kvm_prepare_memory_region) — none with a dirty
/// ring (kvm_use_dirty_bitmap);</item>
/// <item>dirty rings: kvm->dirty_ring_size is 0 or a size KVM_ENABLE_CAP accepts; each vCPU has a ring of it exactly when
/// it is set, soft limit = size - 64 (kvm_dirty_ring_alloc); a logging slot of such a VM tracks its pages'
/// write protection, one bit per page (virt/kvm/dirty_ring.c);</item>
/// <item>guest_memfd bindings: no two memslots bound to one file overlap in file offset, every binding lies inside
/// i_size and points back at an installed slot (kvm_gmem_bind, virt/kvm/guest_memfd.c);</item>
/// <item>the attribute map of every guest_memfd inode covers exactly [0, i_size/PAGE_SIZE) with sorted, non-empty,
/// merged ranges ([PATCH v8 01/46]: the per-inode maple tree, "adjacent equal ranges are merged");</item>
/// <item>f_pos of a guest_memfd file: never negative, and 0 unless the write proposal gave the file default_llseek and
/// write(2) (fs/read_write.c default_llseek, rw_verify_area; [PATCH v7 1/2]);</item>
/// <item>page states: no allocated or prepared folio beyond i_size (the page cache never grows past i_size: the file
/// is immutable in size); the backing memfd has exactly i_size bytes; a live file still has its page cache;</item>
/// <item>ioeventfds: no two registrations of a VM collide, each holds a live eventfd context and a length KVM_IOEVENTFD
/// accepts, each fast-MMIO entry has its length-0 MMIO twin (virt/kvm/eventfd.c; KvmMain/IoBusInvariants.cs);</item>
/// <item>HugeTLB guest_memfd (proposal): pool reservations and allocations equal the sums over live files, and an
/// allocated huge page is whole iff all its pages are private (GuestMemfd/GmemHugetlbInvariants.cs);</item>
/// <item>files: the fd table holds only open (unreleased) files and its count matches its entries; mappings hold
/// unreleased files; the VM list holds only live VMs, and every open VM, vCPU and gmem file points at one of them
/// (the file pins KVM: kvm_get_kvm in kvm_gmem_create / create_vcpu_fd).</item>
/// </list>
/// </summary>
public static class EmulatorInvariants
{
    /// <summary>Every violated invariant, as one line each; empty when the kernel is consistent.</summary>
    public static IReadOnlyList<string> Check(EmulatedKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var errors = new List<string>();
        lock (kernel.SyncRoot)
        {
            var (vms, fds, mm) = kernel.InvariantView;
            var liveVms = new HashSet<Kvm>(ReferenceEqualityComparer.Instance);
            foreach (var vm in vms)
            {
                if (vm.Destroyed) errors.Add($"VM type {vm.Type} is destroyed but still in the VM list");
                if (!liveVms.Add(vm)) errors.Add($"VM type {vm.Type} is in the VM list twice");
            }

            var gmemFiles = new HashSet<GmemFile>(ReferenceEqualityComparer.Instance);
            CheckFdTable(fds, liveVms, gmemFiles, errors);
            foreach (var vma in mm.Vmas)
            {
                if (vma.File.Released) errors.Add($"mapping at 0x{vma.Start:X} holds a released file");
                if (vma.Length == 0 || vma.Length % (ulong)EmulatorConfig.PageSize != 0) errors.Add($"mapping at 0x{vma.Start:X} has length 0x{vma.Length:X}");
                if (vma.File is GmemFile g) gmemFiles.Add(g);
            }
            foreach (var vm in vms) CheckMemslots(vm, gmemFiles, errors);
            foreach (var vm in vms) CheckDirtyRings(vm, errors);
            foreach (var vm in vms) IoBusInvariants.Check(vm, errors);
            foreach (var vm in vms) X86.Irqchip.IrqchipInvariants.Check(vm, errors);
            foreach (var f in gmemFiles) CheckGmemFile(f, liveVms, errors);
            GmemHugetlbInvariants.Check(kernel, gmemFiles, errors);
        }
        return errors;
    }

    private static void CheckFdTable(FdTable fds, HashSet<Kvm> liveVms, HashSet<GmemFile> gmemFiles, List<string> errors)
    {
        int entries = 0;
        foreach (int n in fds.Numbers)
        {
            entries++;
            var file = fds.Get(n);
            if (file is null)
            {
                errors.Add($"fd {n} is listed but has no file");
                continue;
            }
            if (n < 3) errors.Add($"fd {n} was handed out although 0-2 belong to stdio");
            if (file.Released) errors.Add($"fd {n} refers to a released file ({file.GetType().Name})");
            switch (file)
            {
                case KvmVmFile v when !liveVms.Contains(v.Kvm):
                    errors.Add($"VM fd {n} refers to a VM that is not in the VM list");
                    break;
                case KvmVcpuFile c when !liveVms.Contains(c.Vcpu.Kvm):
                    errors.Add($"vCPU fd {n} refers to a VM that is not in the VM list");
                    break;
                case GmemFile g:
                    gmemFiles.Add(g);
                    break;
                case Fs.EventFdFile e:
                    IoBusInvariants.CheckEventFd(n, e, errors);
                    break;
            }
        }
        if (entries != fds.Count) errors.Add($"fd table count {fds.Count} != {entries} entries");
    }

    /// <summary>
    /// kvm_prepare_memory_region: a slot has a dirty bitmap exactly when it logs (KVM_MEM_LOG_DIRTY_PAGES), of
    /// kvm_dirty_bitmap_bytes() (whole longs), with no bit set past its last page.
    /// </summary>
    private static void CheckDirtyBitmap(Kvm vm, KvmMemorySlot slot, string name, List<string> errors)
    {
        bool logs = (slot.Flags & Abi.KvmConstants.KVM_MEM_LOG_DIRTY_PAGES) != 0;
        ulong[]? bitmap = slot.DirtyBitmap;
        // With a dirty ring (and no KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP) a slot gets no new bitmap (kvm_use_dirty_bitmap);
        // one made before the ring was enabled stays (kvm_prepare_memory_region reuses old->dirty_bitmap).
        if (logs && !vm.UseDirtyBitmap && bitmap is null) return;
        if (logs != bitmap is not null)
        {
            errors.Add($"{name} {(logs ? "logs dirty pages without" : "has")} a dirty bitmap{(logs ? "" : " without KVM_MEM_LOG_DIRTY_PAGES")}");
            return;
        }
        if (bitmap is null) return;
        if ((ulong)bitmap.Length * 8 != slot.DirtyBitmapBytes) errors.Add($"{name} has a {bitmap.Length * 8}-byte dirty bitmap, not {slot.DirtyBitmapBytes}");
        else if (slot.NPages % 64 != 0 && (bitmap[^1] >> (int)(slot.NPages % 64)) != 0) errors.Add($"{name} has dirty bits past its last page");
    }

    /// <summary>
    /// The dirty ring's kernel-side state (virt/kvm/dirty_ring.c, KvmMain/KvmDirtyRing.cs): kvm->dirty_ring_size is 0
    /// or a power of two from a page to 1 MiB; every vCPU has a ring exactly when it is set, of that many bytes, with
    /// soft_limit = size - KVM_DIRTY_RING_RSVD_ENTRIES. (dirty_index - reset_index is not bounded: userspace may mark
    /// entries KVM never published, which a reset then consumes, as the kernel does.)
    /// </summary>
    private static void CheckDirtyRings(Kvm vm, List<string> errors)
    {
        uint size = vm.DirtyRingSize;
        if (size != 0 && ((size & (size - 1)) != 0 || size < (uint)EmulatorConfig.PageSize || size > KvmDirtyRing.MaxEntries * DirtyRing.EntryBytes))
            errors.Add($"VM type {vm.Type} has a {size}-byte dirty ring, which KVM_ENABLE_CAP refuses");
        foreach (var vcpu in vm.Vcpus)
        {
            var ring = vcpu.DirtyRing;
            if ((ring is not null) != (size != 0))
            {
                errors.Add($"vCPU {vcpu.Id} {(ring is null ? "has no" : "has a")} dirty ring while dirty_ring_size is {size}");
                continue;
            }
            if (ring is null) continue;
            if (ring.Size * DirtyRing.EntryBytes != size) errors.Add($"vCPU {vcpu.Id}'s ring has {ring.Size} entries, not {size / DirtyRing.EntryBytes}");
            if (ring.SoftLimit != ring.Size - KvmDirtyRing.RsvdEntries) errors.Add($"vCPU {vcpu.Id}'s ring has soft limit {ring.SoftLimit}");
        }
    }

    /// <summary>
    /// A slot has ring write-protection state exactly when it logs and the VM has a ring, one bit per page, none past
    /// its last page.
    /// </summary>
    private static void CheckRingWritable(Kvm vm, KvmMemorySlot slot, string name, List<string> errors)
    {
        bool expected = slot.DirtyTrackEnabled && vm.DirtyRingSize != 0;
        ulong[]? bits = slot.RingWritable;
        if (expected != bits is not null)
        {
            errors.Add($"{name} {(expected ? "logs into a dirty ring without" : "has")} ring write-protection state");
            return;
        }
        if (bits is null) return;
        if ((ulong)bits.Length != (slot.NPages + 63) / 64) errors.Add($"{name} has {bits.Length} words of ring state for {slot.NPages} pages");
        else if (slot.NPages % 64 != 0 && (bits[^1] >> (int)(slot.NPages % 64)) != 0) errors.Add($"{name} has ring state past its last page");
    }

    private static void CheckMemslots(Kvm vm, HashSet<GmemFile> gmemFiles, List<string> errors)
    {
        ulong pages = 0;
        for (int asId = 0; asId < vm.Arch.MaxNrAddressSpaces; asId++)
        {
            var slots = vm.Memslots(asId);
            var sorted = new List<KvmMemorySlot>(slots.Count);
            foreach (var (id, slot) in slots)
            {
                string name = Name(slot);
                if (slot.Id != id || slot.AsId != asId) errors.Add($"{name} is stored under as {asId} id {id}");
                if (slot.NPages == 0) errors.Add($"{name} is empty");
                if (slot.BaseGfn + slot.NPages < slot.BaseGfn) errors.Add($"{name} wraps the GFN space");
                CheckDirtyBitmap(vm, slot, name, errors);
                CheckRingWritable(vm, slot, name, errors);
                pages += slot.NPages;
                sorted.Add(slot);
                if (slot.GmemFile is GmemFile f)
                {
                    gmemFiles.Add(f);
                    if (!slot.HasGmem) errors.Add($"{name} has no KVM_MEM_GUEST_MEMFD but is bound to a guest_memfd");
                    if (f.Kvm != vm) errors.Add($"{name} is bound to another VM's guest_memfd");
                    if (!f.Bindings.Contains(slot)) errors.Add($"{name} points at a guest_memfd that does not list it");
                    if (f.Released) errors.Add($"{name} is bound to a released guest_memfd (kvm_gmem_release clears slot->gmem.file)");
                }
            }
            sorted.Sort((a, b) => a.BaseGfn.CompareTo(b.BaseGfn));
            for (int i = 1; i < sorted.Count; i++)
            {
                if (sorted[i].BaseGfn < sorted[i - 1].EndGfn)
                    errors.Add($"{Name(sorted[i - 1])} [0x{sorted[i - 1].BaseGfn:X}, 0x{sorted[i - 1].EndGfn:X}) overlaps {Name(sorted[i])} [0x{sorted[i].BaseGfn:X}, 0x{sorted[i].EndGfn:X}) in GFN");
            }
        }
        if (!vm.Destroyed && pages != vm.NrMemslotPages) errors.Add($"VM nr_memslot_pages {vm.NrMemslotPages} != {pages} pages in its slots");
    }

    private static void CheckGmemFile(GmemFile f, HashSet<Kvm> liveVms, List<string> errors)
    {
        var inode = f.GmemInode;
        string name = string.Create(CultureInfo.InvariantCulture, $"guest_memfd ino {inode.Ino}");
        if (f.Released) return; // checked where it is referenced
        if (!liveVms.Contains(f.Kvm)) errors.Add($"{name} pins a VM that is not in the VM list");
        if (inode.MemfdFd < 0)
        {
            errors.Add($"{name} is open but its page cache was freed");
            return;
        }

        // f_pos: only default_llseek and write(2) move it ([PATCH v7 1/2]); neither ever stores a negative position
        // (default_llseek's "offset >= 0" check, rw_verify_area's overflow check), and without the proposal nothing moves it.
        if (f.Position < 0 || (!GmemWrite.Applied(f.Kvm.Kernel) && f.Position != 0))
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"{name} has f_pos {f.Position}"));

        // Bindings: inside i_size, pointing back at installed slots, pairwise disjoint in file offset.
        var bindings = f.Bindings.OrderBy(s => s.GmemPgoff).ToList();
        for (int i = 0; i < bindings.Count; i++)
        {
            var slot = bindings[i];
            if (slot.GmemFile != f) errors.Add($"{name} lists {Name(slot)}, which is not bound to it");
            if (slot.GmemPgoff + slot.NPages > inode.NrPages || slot.GmemPgoff + slot.NPages < slot.GmemPgoff)
                errors.Add($"{name} binding of {Name(slot)} at page 0x{slot.GmemPgoff:X} (+0x{slot.NPages:X}) passes i_size ({inode.NrPages} pages)");
            if (f.Kvm.IdToMemslot(slot.AsId, slot.Id) != slot) errors.Add($"{name} lists {Name(slot)}, which is not installed in its VM");
            if (i > 0 && slot.GmemPgoff < bindings[i - 1].GmemPgoff + bindings[i - 1].NPages)
                errors.Add($"{name}: bindings of {Name(bindings[i - 1])} and {Name(slot)} overlap at file page 0x{slot.GmemPgoff:X}");
        }

        CheckRangeMap(name + " attributes", inode.Attributes, inode.NrPages, errors);

        // Page states: nothing allocated or prepared at or beyond i_size, and the page cache is exactly i_size.
        if (inode.GetPageState(inode.NrPages) != PageState.Absent)
            errors.Add($"{name}: page {inode.NrPages} (i_size) is {inode.GetPageState(inode.NrPages)}");
        long end = HostMemory.Lseek(inode.MemfdFd, 0, 2 /* SEEK_END */);
        if (end != inode.Size) errors.Add($"{name}: page cache is 0x{end:X} bytes, i_size 0x{inode.Size:X}");
    }

    /// <summary>
    /// Through the map's public shape: its segments over the whole index space must be contiguous and non-empty,
    /// two neighbours never hold the same value (merged), the stored ranges are exactly the non-default segments,
    /// and no stored range reaches beyond <paramref name="nrPages"/>.
    /// </summary>
    private static void CheckRangeMap(string name, RangeMap<ulong> map, ulong nrPages, List<string> errors)
    {
        ulong expectStart = 0;
        int stored = 0;
        (ulong Start, ulong End, ulong Value)? previous = null;
        foreach (var seg in map.Segments(0, ulong.MaxValue))
        {
            if (seg.Start != expectStart) errors.Add($"{name}: gap or overlap at 0x{expectStart:X} (next range starts at 0x{seg.Start:X})");
            if (seg.Start >= seg.End) errors.Add($"{name}: empty or reversed range [0x{seg.Start:X}, 0x{seg.End:X})");
            if (previous is { } p && p.Value == seg.Value) errors.Add($"{name}: ranges [0x{p.Start:X}, 0x{p.End:X}) and [0x{seg.Start:X}, 0x{seg.End:X}) both hold 0x{seg.Value:X} (not merged)");
            if (seg.Value != map.Default)
            {
                stored++;
                if (seg.End > nrPages) errors.Add($"{name}: range [0x{seg.Start:X}, 0x{seg.End:X}) = 0x{seg.Value:X} reaches beyond i_size ({nrPages} pages)");
            }
            previous = seg;
            expectStart = seg.End;
            if (errors.Count > 64) return;
        }
        if (expectStart != ulong.MaxValue) errors.Add($"{name}: ranges end at 0x{expectStart:X}");
        if (stored != map.RangeCount) errors.Add($"{name}: {map.RangeCount} stored ranges, {stored} non-default segments (a stored default or unmerged range)");
    }

    private static string Name(KvmMemorySlot slot) =>
        string.Create(CultureInfo.InvariantCulture, $"memslot {slot.AsId}:{slot.Id}");
}
