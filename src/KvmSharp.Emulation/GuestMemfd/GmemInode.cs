// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.MemoryAttributes;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>
/// <c>struct gmem_inode</c>: the guest memory itself — size, creation flags, page cache, per-page attributes (v8) and
/// long-term pins. The page cache is a host shmem file of the same size (<see cref="HostMemory.CreateBackingFile"/>:
/// a file on a private huge-page tmpfs when the process may mount one, else a memfd): its pages are the folios
/// (sparse until used, zero-filled when created, freed by punch-hole), and every host mapping of the gmem file maps
/// that file, so all mappings and the guest path share the bytes. The host may back it with 2 MiB folios where the
/// real guest_memfd uses 4 KiB ones; nothing observable depends on that: contents (zero on first use, zero after a
/// 4 KiB punch-hole), SIGBUS rules and errnos are decided per 4 KiB page here, and fstat reports st_blocks = 0
/// whatever the host allocated (EmulatedKernel.Fstat).
/// </summary>
internal sealed class GmemInode
{
    private readonly RangeMap<PageState> _allocated = new(PageState.Absent);
    private readonly Dictionary<ulong, int> _pins = [];

    private GmemInode(ulong ino, long size, ulong flags, int memfd, ulong initialAttributes)
    {
        Ino = ino;
        Size = size;
        Flags = flags;
        MemfdFd = memfd;
        Attributes = new RangeMap<ulong>(initialAttributes);
    }

    public ulong Ino { get; }

    /// <summary>i_size, fixed at creation (kvm_gmem_setattr refuses every change).</summary>
    public long Size { get; }

    /// <summary>GMEM_I(inode)->flags: the KVM_CREATE_GUEST_MEMFD flags.</summary>
    public ulong Flags { get; }

    /// <summary>The host shmem file (memfd or private tmpfs file) holding the page cache.</summary>
    public int MemfdFd { get; private set; }

    public ulong NrPages => (ulong)Size >> EmulatorConfig.PageShift;

    public bool SupportsMmap => (Flags & KvmConstants.GUEST_MEMFD_FLAG_MMAP) != 0;

    public bool InitShared => (Flags & KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED) != 0;

    /// <summary>
    /// [PATCH v8 01/46] the per-inode maple tree of attributes over [0, i_size/PAGE_SIZE): PRIVATE unless
    /// INIT_SHARED. In the 6.18 generation nothing changes it, so it simply encodes the INIT_SHARED rule.
    /// </summary>
    public RangeMap<ulong> Attributes { get; }

    /// <summary>Creates the inode and its backing memfd; -errno (EMFILE, ENOMEM …) when the host refuses.</summary>
    public static long Create(ulong ino, long size, ulong flags, out GmemInode? inode)
    {
        inode = null;
        long fd = HostMemory.CreateBackingFile("[kvm-gmem]");
        if (Err.IsError(fd)) return fd;
        long rc = HostMemory.Ftruncate((int)fd, size);
        if (Err.IsError(rc))
        {
            _ = HostMemory.Close((int)fd);
            // A size the host's shmem cannot represent; the kernel would only fail later allocations.
            return Err.ENOMEM;
        }
        ulong init = (flags & KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED) != 0 ? 0 : KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE;
        inode = new GmemInode(ino, size, flags, (int)fd, init);
        return 0;
    }

    /// <summary>True when the page's current attributes make it shared (host-accessible).</summary>
    public bool IsShared(ulong index) => (Attributes.Get(index) & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0;

    /// <summary>
    /// The page-cache state of page <paramref name="index"/>. "Up to date" is the memfd's own notion: shmem marks a
    /// folio uptodate when it zeroes it on first touch (host fault, or our guest-path zeroing), and SEEK_DATA skips
    /// folios that are not, so the backing file answers it; Allocated is what fallocate() recorded here. With a huge
    /// host folio, its neighbours read as up to date too: they were zeroed with it, so the guest path rightly skips
    /// zeroing them (what it would have written is what they hold).
    /// </summary>
    public PageState GetPageState(ulong index)
    {
        long offset = (long)(index << EmulatorConfig.PageShift);
        long data = HostMemory.Lseek(MemfdFd, offset, HostMemory.SEEK_DATA);
        if (data == offset) return PageState.Uptodate;
        return _allocated.Get(index);
    }

    /// <summary>kvm_gmem_allocate: a folio for each page of [start, end), not zeroed yet.</summary>
    public long Allocate(ulong start, ulong end)
    {
        int shift = EmulatorConfig.PageShift;
        long rc = HostMemory.Fallocate(MemfdFd, 0x01 /* FALLOC_FL_KEEP_SIZE */, (long)(start << shift), (long)((end - start) << shift));
        // Folio allocation failure → ENOMEM (shmem may say ENOSPC); shmem undoes a partial fallocate.
        if (Err.IsError(rc)) return Err.ENOMEM;
        foreach (var (s, e, state) in _allocated.Segments(start, end).ToArray())
        {
            if (state == PageState.Absent) _allocated.Set(s, e, PageState.Allocated);
        }
        return 0;
    }

    /// <summary>truncate_inode_pages_range: the folios of [start, end) are freed; their contents read as zero after.</summary>
    public void Truncate(ulong start, ulong end)
    {
        end = Math.Min(end, NrPages);
        if (start >= end) return;
        int shift = EmulatorConfig.PageShift;
        long rc = HostMemory.Fallocate(MemfdFd, 0x01 | 0x02 /* KEEP_SIZE|PUNCH_HOLE */, (long)(start << shift), (long)((end - start) << shift));
        if (Err.IsError(rc)) throw new InvalidOperationException($"host punch-hole on the gmem memfd failed: {rc}");
        _allocated.Set(start, end, PageState.Absent);
    }

    /// <summary>
    /// kvm_gmem_get_folio + "if (!folio_test_uptodate) { clear_highpage; folio_mark_uptodate }" for the guest path:
    /// writing the zero page makes the memfd page present and up to date, exactly once per lifetime of the folio.
    /// </summary>
    public long PrepareForGuest(ulong index)
    {
        if (GetPageState(index) == PageState.Uptodate) return 0;
        Span<byte> zero = stackalloc byte[EmulatorConfig.PageSize];
        zero.Clear();
        long rc = HostMemory.Pwrite(MemfdFd, zero, (long)(index << EmulatorConfig.PageShift));
        return Err.IsError(rc) ? Err.ENOMEM : 0;
    }

    /// <summary>A pin (GUP FOLL_LONGTERM stand-in) on page <paramref name="index"/>.</summary>
    public void Pin(ulong index) => _pins[index] = _pins.GetValueOrDefault(index) + 1;

    public void Unpin(ulong index)
    {
        if (!_pins.TryGetValue(index, out int n)) return;
        if (n <= 1) _pins.Remove(index);
        else _pins[index] = n - 1;
    }

    /// <summary>The lowest pinned page in [start, end) (a folio whose refcount exceeds the expected value), or null.</summary>
    public ulong? FirstPinned(ulong start, ulong end)
    {
        ulong? first = null;
        foreach (ulong index in _pins.Keys)
        {
            if (index >= start && index < end && (first is null || index < first)) first = index;
        }
        return first;
    }

    /// <summary>A kernel mapping of pages [index, index+count) for the guest path (valid while the inode lives).</summary>
    public long MapForKernel(ulong index, ulong count, out HostMapping? mapping) =>
        HostMapping.MapShared(MemfdFd, (long)(index << EmulatorConfig.PageShift), count << EmulatorConfig.PageShift, out mapping);

    /// <summary>iput of the last reference: the page cache is freed.</summary>
    public void Evict()
    {
        if (MemfdFd < 0) return;
        _ = HostMemory.Close(MemfdFd);
        MemfdFd = -1;
        _pins.Clear();
    }
}
