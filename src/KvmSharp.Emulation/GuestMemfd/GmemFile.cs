// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mm;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>
/// A guest_memfd file: <c>struct gmem_file</c> (its VM and memslot bindings) with <c>kvm_gmem_fops</c>
/// = { mmap, open, release, fallocate } (+ unlocked_ioctl in the v8 series; + llseek and write_iter with the write
/// proposal, <see cref="GmemWrite"/>). virt/kvm/guest_memfd.c.
/// </summary>
internal sealed class GmemFile : KernelFile
{
    /// <summary>st_dev observed for guest_memfd files on this host (the guest_memfd pseudo fs).</summary>
    private const ulong PseudoFsDevice = 16;

    private readonly List<KvmMemorySlot> _bindings = [];

    public GmemFile(Kvm kvm, GmemInode inode)
    {
        Kvm = kvm;
        GmemInode = inode;
    }

    /// <summary>f->kvm: the VM this file was created on (one reference held until release).</summary>
    public Kvm Kvm { get; }

    public GmemInode GmemInode { get; }

    /// <summary>f->bindings: the memslots bound to ranges of this file.</summary>
    public IReadOnlyList<KvmMemorySlot> Bindings => _bindings;

    // alloc_file_pseudo(..., O_RDWR): S_IFREG (inode->i_mode |= S_IFREG) with the anon inode's 0600.
    public override uint Mode => LinuxConstants.S_IFREG | 0x180;

    public override ulong Device => PseudoFsDevice;

    public override ulong Inode => GmemInode.Ino;

    public override long Size => GmemInode.Size;

    // kvm_gmem_init_fs_context / kvm_gmem_init_mount: SB_I_NOEXEC and MNT_NOEXEC.
    public override bool NoExec => true;

    public override int HostBackingFd => GmemInode.MemfdFd;

    // [PATCH v7 1/2] kvm_gmem_fops gains ".llseek = default_llseek, .write_iter = generic_perform_write" and
    // __kvm_gmem_create sets "FMODE_LSEEK | FMODE_PWRITE" on every guest_memfd file, WRITE flag or not (the flag is
    // checked per write in kvm_gmem_write_begin). pread stays ESPIPE (no FMODE_PREAD), read EINVAL (no read op).
    public override bool HasDefaultLlseek => GmemWrite.Applied(Kvm.Kernel);

    public override bool CanPositionalWrite => GmemWrite.Applied(Kvm.Kernel);

    public override bool HasWriteIter => GmemWrite.Applied(Kvm.Kernel);

    public override long WriteIter(ReadOnlySpan<byte> buffer, ref long position) =>
        GmemWrite.PerformWrite(this, buffer, ref position);

    /// <summary>The memslot bound at file page <paramref name="index"/> (xa_load(&amp;f->bindings, index)).</summary>
    public KvmMemorySlot? BindingAt(ulong index)
    {
        foreach (var slot in _bindings)
        {
            if (index >= slot.GmemPgoff && index < slot.GmemPgoff + slot.NPages) return slot;
        }
        return null;
    }

    public void AddBinding(KvmMemorySlot slot) => _bindings.Add(slot);

    public void RemoveBinding(KvmMemorySlot slot) => _bindings.Remove(slot);

    /// <summary>kvm_gmem_invalidate_begin/end: zap the guest mappings of every memslot bound in [start, end).</summary>
    public void InvalidateGuestRange(ulong start, ulong end)
    {
        foreach (var slot in _bindings)
        {
            if (slot.GmemPgoff < end && start < slot.GmemPgoff + slot.NPages)
            {
                // kvm_gmem_invalidate_begin → kvm_mmu_unmap_gfn_range over each bound slot's GFNs (Mmu/MmuMappings.cs).
                var gfnRanges = new List<(ulong, ulong)>();
                foreach (var s in _bindings)
                {
                    ulong from = Math.Max(start, s.GmemPgoff), to = Math.Min(end, s.GmemPgoff + s.NPages);
                    if (from < to) gfnRanges.Add((s.BaseGfn + (from - s.GmemPgoff), s.BaseGfn + (to - s.GmemPgoff)));
                }
                Mmu.MmuMappings.InvalidateRanges(Kvm, gfnRanges);
                // A TD's private leaves in the range go too (kvm_gmem_invalidate_begin → kvm_mmu_unmap_gfn_range →
                // tdx_sept_remove_private_spte): Arch/X86/TdxSept.cs.
                foreach (var s in _bindings)
                {
                    ulong from = Math.Max(start, s.GmemPgoff), to = Math.Min(end, s.GmemPgoff + s.NPages);
                    if (from < to) Arch.TdxSept.Zap(Kvm, s.BaseGfn + (from - s.GmemPgoff), s.BaseGfn + (to - s.GmemPgoff));
                }
                return;
            }
        }
    }

    public override long Ioctl(uint request, IoctlArg arg)
    {
        // Mainline has no unlocked_ioctl → ENOTTY for everything. [PATCH v8 13/46] kvm_gmem_ioctl: only
        // KVM_SET_MEMORY_ATTRIBUTES2, and ENOTTY while the VM-level attributes are in charge
        // (vm_memory_attributes, i.e. gmem_in_place_conversion off).
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2 && Kvm.Kernel.InPlaceConversion)
            return GmemSetAttributes.Ioctl(this, arg);
        return Err.ENOTTY;
    }

    /// <summary>kvm_gmem_fallocate (after vfs_fallocate's generic checks).</summary>
    public override long Fallocate(int mode, long offset, long length)
    {
        const int KEEP_SIZE = LinuxConstants.FALLOC_FL_KEEP_SIZE;
        const int PUNCH_HOLE = LinuxConstants.FALLOC_FL_PUNCH_HOLE;
        if ((mode & KEEP_SIZE) == 0) return Err.EOPNOTSUPP;
        if ((mode & ~(KEEP_SIZE | PUNCH_HOLE)) != 0) return Err.EOPNOTSUPP;
        // [BRANCH] kvm_gmem_fallocate: "page_size = PAGE_SIZE << GMEM_I(inode)->page_order; if (!IS_ALIGNED(offset,
        // page_size) || !IS_ALIGNED(len, page_size)) return -EINVAL;" (mainline: PAGE_SIZE). ASSUMPTION: RFC v2's
        // hugetlb allocator is held to the same alignment.
        long pageMask = GmemInode.BlockSize - 1;
        if ((offset & pageMask) != 0 || (length & pageMask) != 0) return Err.EINVAL;
        int shift = EmulatorConfig.PageShift;
        ulong start = (ulong)offset >> shift;
        ulong end = (ulong)(offset + length) >> shift;
        if ((mode & PUNCH_HOLE) != 0)
        {
            // kvm_gmem_punch_hole: invalidate KVM mappings, truncate the page cache; never fails, and a range
            // beyond i_size is simply empty. v8: attributes are untouched (the truncate selftest).
            InvalidateGuestRange(start, end);
            GmemInode.Truncate(start, end);
            return 0;
        }
        // kvm_gmem_allocate: "Dedicated guest is immutable by default." offset + len > i_size → EINVAL.
        if (offset + length > GmemInode.Size) return Err.EINVAL;
        return GmemInode.Allocate(start, end);
    }

    /// <summary>kvm_gmem_mmap.</summary>
    public override long Mmap(int prot, int flags)
    {
        if (!GmemInode.SupportsMmap) return Err.ENODEV;
        // (vm_flags & (VM_SHARED | VM_MAYSHARE)) != both → EINVAL: MAP_PRIVATE (CoW) is refused.
        if (!DoMmap.IsShared(flags)) return Err.EINVAL;
        return 0;
    }

    /// <summary>
    /// kvm_gmem_mmap with the mapping's offset and length. HugeTLB files under the RFC v2 encoding: offset and length
    /// must be huge-page aligned, else EINVAL — ASSUMPTION taken from hugetlbfs (hugetlbfs_file_mmap: vm_pgoff not
    /// aligned → -EINVAL; hugetlb_get_unmapped_area: len not aligned → -EINVAL); the RFC v2 mmap hunk was not found.
    /// The 6.18 branch's kvm_gmem_mmap has no such check (shared pages are split to order 0 and fault per 4 KiB).
    /// </summary>
    public override long Mmap(int prot, int flags, ulong pgoff, ulong pages)
    {
        long r = Mmap(prot, flags);
        if (r != 0 || GmemInode.Hugetlb is not { } huge) return r;
        if (Kvm.Kernel.Config.GuestMemfdHugetlb != GuestMemfdHugetlbEncoding.RfcV2FlagBits) return 0;
        ulong mask = huge.PagesPerHuge - 1;
        return (pgoff & mask) != 0 || (pages & mask) != 0 ? Err.EINVAL : 0;
    }

    /// <summary>
    /// kvm_gmem_release: runs when the last reference (fd and every mapping) goes. Clears slot->gmem.file of every
    /// binding (later guest access gets EFAULT), zaps the guest mappings, drops the VM reference. The inode's
    /// memory goes with it (one file per inode here).
    /// </summary>
    protected override void OnRelease()
    {
        foreach (var slot in _bindings) slot.GmemFile = null;
        if (_bindings.Count > 0) Kvm.InvalidateGuestMappings();
        _bindings.Clear();
        GmemInode.Evict();
        Kvm.Put();
    }
}
