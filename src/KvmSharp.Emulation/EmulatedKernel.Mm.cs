// SPDX-License-Identifier: MIT
// The memory syscalls on this kernel's mappings: mmap, munmap, madvise, mincore (mm/mmap.c, mm/madvise.c, mm/mincore.c).
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.Mm;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Emulation;

public sealed partial class EmulatedKernel
{
    /// <summary>
    /// mmap(2). MAP_ANONYMOUS maps real host memory that guests may use directly. A file (a guest_memfd, a vCPU's
    /// kvm_run) is mapped after the kernel's checks (page-aligned offset, do_mmap, then the file's own: a guest_memfd
    /// needs GUEST_MEMFD_FLAG_MMAP, else ENODEV, and MAP_SHARED, else EINVAL) over the host memory backing the file.
    /// </summary>
    public long Mmap(nint address, ulong length, int prot, int flags, KernelFd? fd, long offset, out nint mapped)
    {
        mapped = 0;
        // MAP_FIXED replaces what was there: anonymous memory a vCPU may use directly is invalidated first.
        if ((flags & LinuxConstants.MAP_FIXED) != 0 && length != 0) ForgetAnonymous(address, PageAlign(length));
        lock (SyncRoot)
        {
            // MAP_ANONYMOUS ignores the fd: plain host memory, recorded so guests may use it directly.
            if ((flags & LinuxConstants.MAP_ANONYMOUS) != 0)
            {
                long rc = HostMemory.Mmap(address, length, prot, flags, -1, offset, out mapped);
                if (Err.IsError(rc)) return rc;
                _anonymous.Add(mapped, PageAlign(length), prot, shared: (flags & LinuxConstants.MAP_SHARED) != 0);
                // A new VMA: no vm_policy, no pages of a mapping it replaced.
                _mm.ForgetPolicies(mapped, PageAlign(length));
                return rc;
            }
            // arch/x86/kernel/sys_x86_64.c: off & ~PAGE_MASK → EINVAL, before the fd lookup.
            if ((offset & (EmulatorConfig.PageSize - 1)) != 0) return Err.EINVAL;
            var file = fd is null ? null : Lookup(fd);
            if (file is null) return Err.EBADF;
            long r = DoMmap.Check(file, length, prot, flags, offset, out ulong aligned);
            if (r != 0) return r;
            r = file.Mmap(prot, flags, (ulong)offset >> EmulatorConfig.PageShift, aligned >> EmulatorConfig.PageShift);
            if (r != 0) return r;
            r = HostMemory.Mmap(address, aligned, prot, flags, file.HostBackingFd, offset, out mapped);
            if (Err.IsError(r)) return r;
            r = file.MapOtherBackings(mapped, (ulong)offset >> EmulatorConfig.PageShift, aligned >> EmulatorConfig.PageShift, prot, flags);
            if (Err.IsError(r))
            {
                _ = HostMemory.Munmap(mapped, aligned);
                return r;
            }
            file.Get();
            ulong pgoff = (ulong)offset >> EmulatorConfig.PageShift;
            _mm.Insert(new Vma(file, mapped, aligned, pgoff, prot, flags));
            if (file is GmemFile gmem) ProtectHostMappings(gmem, pgoff, pgoff + (aligned >> EmulatorConfig.PageShift));
            return 0;
        }
    }

    /// <summary>
    /// munmap(2); anonymous memory a vCPU may be using is invalidated (every VM's cached translations dropped) first.
    /// </summary>
    public long Munmap(nint address, ulong length)
    {
        if (length != 0 && (address & (EmulatorConfig.PageSize - 1)) == 0) ForgetAnonymous(address, PageAlign(length));
        lock (SyncRoot) return _mm.Munmap(address, length);
    }

    /// <summary>
    /// kvm_mmu_notifier_invalidate_range_start for anonymous memory: drop the range from the directly usable table,
    /// zap every VM's cached translations, and wait until no vCPU can still be inside an instruction that used them.
    /// Runs without the kernel lock (a vCPU may be waiting for it in its slow path).
    /// </summary>
    private void ForgetAnonymous(nint address, ulong length)
    {
        if (length == 0 || (ulong)address + length < (ulong)address) return;
        List<Vcpu.KvmVcpu> vcpus = [];
        lock (SyncRoot)
        {
            if (!_anonymous.Remove(address, length)) return;
            foreach (var vm in _vms)
            {
                vm.InvalidateGuestMappings();
                vcpus.AddRange(vm.Vcpus);
            }
        }
        Interlocked.MemoryBarrier();
        foreach (var vcpu in vcpus) vcpu.Quiesce();
    }

    /// <summary>Whether guests may read (and write) [address, +length) of this process's memory directly.</summary>
    internal bool IsDirectlyUsable(nint address, ulong length, bool write)
    {
        lock (SyncRoot) return _anonymous.Covers(address, length, write);
    }

    /// <summary>
    /// mm/madvise.c on an emulated guest_memfd mapping: MADV_HUGEPAGE is accepted, MADV_COLLAPSE fails with EINVAL
    /// (guest_memfd folios must not be collapsed: test_collapse), MADV_DONTNEED drops nothing observable (the page
    /// cache keeps the data). Other ranges (anonymous memory) go to the host.
    /// </summary>
    public long Madvise(nint address, ulong length, int advice)
    {
        // madvise_validate / start alignment checks come first.
        if ((address & (EmulatorConfig.PageSize - 1)) != 0) return Err.EINVAL;
        // do_madvise: "if (end == start) return 0" once the advice and the start are valid — the host's own
        // madvise gives that answer (found by the differential fuzzer: MADV_COLLAPSE of length 0 on gmem is 0).
        if (length == 0) return HostMemory.Madvise(address, 0, advice);
        lock (SyncRoot)
        {
            if (!_disposed && _mm.Find(address) is { File: GmemFile })
            {
                return advice switch
                {
                    LinuxConstants.MADV_HUGEPAGE => 0,
                    LinuxConstants.MADV_COLLAPSE => Err.EINVAL,
                    LinuxConstants.MADV_DONTNEED => 0,
                    LinuxConstants.MADV_POPULATE_READ or LinuxConstants.MADV_POPULATE_WRITE => PopulateGmem(address, length, advice),
                    _ => HostMemory.Madvise(address, length, advice),
                };
            }
        }
        long rc = HostMemory.Madvise(address, length, advice);
        // VM_HUGEPAGE of anonymous memory, for the THP model (Mm/AnonymousMappings.PmdMappedThp). MADV_NOHUGEPAGE = 15
        // (include/uapi/asm-generic/mman-common.h).
        if (rc == 0 && advice is LinuxConstants.MADV_HUGEPAGE or 15)
        {
            lock (SyncRoot) _anonymous.AdviseHuge(address, PageAlign(length), advice == LinuxConstants.MADV_HUGEPAGE);
        }
        return rc;
    }

    /// <summary>
    /// madvise_populate on a gmem mapping faults every page in: a page kvm_gmem_fault_user_mapping answers with
    /// VM_FAULT_SIGBUS (private, or beyond EOF) makes it -EFAULT, a hole in the mappings -ENOMEM (mm/madvise.c).
    /// Found by the differential fuzzer: populating a gmem without INIT_SHARED is EFAULT, not 0. A NO_DIRECT_MAP file's
    /// VMA is refused by GUP's check_vma_flags, which MADV_POPULATE reports as -EINVAL. Caller holds SyncRoot.
    /// </summary>
    private long PopulateGmem(nint address, ulong length, int advice)
    {
        ulong page = (ulong)EmulatorConfig.PageSize;
        ulong end = (ulong)address + ((length + page - 1) & ~(page - 1));
        if (end < (ulong)address) return Err.EINVAL;
        for (ulong p = (ulong)address; p < end; p += page)
        {
            var vma = _mm.Find((nint)p);
            if (vma is null) return Err.ENOMEM;
            if (vma.File is not GmemFile f) continue;
            // __get_user_pages with FOLL_MADV_POPULATE: check_vma_flags failing on entering the VMA → -EINVAL; a
            // NO_DIRECT_MAP file fails it (vma_has_no_direct_map, [PATCH v12 06/16]).
            if (GmemNoDirectMap.IsSet(f.GmemInode)) return Err.EINVAL;
            ulong pgoff = vma.PgOff + (p - (ulong)vma.Start) / page;
            if (FaultUserMapping(f.GmemInode, pgoff) is not null) return Err.EFAULT;
        }
        return HostMemory.Madvise(address, length, advice);
    }

    /// <summary>
    /// mm/mincore.c sys_mincore on memory mapped through this kernel. A guest_memfd mapping answers from the file's
    /// page cache (mincore_page → filemap_get_incore_folio: a folio exists, mapped here or not, zeroed or not), so a
    /// hole reads 0 and a page allocated by fallocate reads 1; other ranges go to the host's mincore. Exact for what the
    /// emulator's own paths did; a page the host faulted through a mapping is seen through the backing file, whose
    /// folios on the fast 2 MiB backing (GmemBacking) cover the page's neighbours too, so those may read 1 where the
    /// real kernel's order-0 folios would read 0 (never the other way round).
    /// </summary>
    public long Mincore(nint address, ulong length, Span<byte> vector)
    {
        ulong page = (ulong)EmulatorConfig.PageSize;
        // sys_mincore: an unaligned start is EINVAL; the vector must hold a byte per page (EFAULT).
        if (((ulong)address & (page - 1)) != 0) return Err.EINVAL;
        if (length > ulong.MaxValue - page + 1) return Err.ENOMEM;
        ulong pages = (length + page - 1) / page;
        if (pages > (ulong)vector.Length) return Err.EFAULT;
        lock (SyncRoot)
        {
            ulong i = 0;
            while (i < pages)
            {
                nint at = address + (nint)(i * page);
                if (!_disposed && _mm.Find(at) is { File: GmemFile gmem } vma)
                {
                    // do_mincore: one VMA at a time.
                    for (; i < pages && vma.Contains(address + (nint)(i * page)); i++)
                    {
                        ulong pgoff = vma.PgOff + (ulong)(address + (nint)(i * page) - vma.Start) / page;
                        vector[(int)i] = (byte)(pgoff < gmem.GmemInode.NrPages && gmem.GmemInode.GetPageState(pgoff) != PageState.Absent ? 1 : 0);
                    }
                    continue;
                }
                // A run of pages outside this kernel's guest_memfd mappings: the host's own answer (ENOMEM for a hole).
                ulong run = 1;
                while (i + run < pages && (_disposed || _mm.Find(address + (nint)((i + run) * page)) is not { File: GmemFile })) run++;
                long rc = HostMemory.Mincore(at, run * page, vector.Slice((int)i, (int)run));
                if (rc < 0) return rc;
                i += run;
            }
        }
        return 0;
    }

    private static ulong PageAlign(ulong length) =>
        (length + (ulong)EmulatorConfig.PageSize - 1) & ~(ulong)(EmulatorConfig.PageSize - 1);
}
