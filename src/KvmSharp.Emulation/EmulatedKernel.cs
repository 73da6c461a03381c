// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mm;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Emulation;

/// <summary>
/// The KVM guest_memfd subsystem written in C#, behind the same syscall boundary as the real kernel: it decodes the
/// same binary structs and request numbers and answers with the kernel's errno. One lock serializes every call (the
/// kernel's slots_lock / invalidate_lock / mmap_lock rolled into one). Guest memory is real host memory (memfds).
/// </summary>
public sealed class EmulatedKernel : IKernel, IDisposable
{
    private const string DevKvm = "/dev/kvm";

    private readonly FdTable _fds = new();
    private readonly AddressSpace _mm = new();
    private readonly List<Kvm> _vms = [];
    private readonly Mm.AnonymousMappings _anonymous = new();
    private readonly RunningVcpus _running = new();
    private ulong _nextIno = 0x10000;
    private bool _disposed;

    internal (IReadOnlyList<Kvm> Vms, FdTable Fds, AddressSpace Mm) InvariantView => (_vms, _fds, _mm);

    /// <summary>
    /// Creates an emulated kernel configured by <paramref name="config"/> (default:
    /// <see cref="EmulatorConfig.LikeThisHost"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The configuration is not a kernel that could exist (e.g. VM types or Kconfig
    /// switches its generation or architecture lacks).</exception>
    public EmulatedKernel(EmulatorConfig? config = null)
    {
        Config = config ?? EmulatorConfig.LikeThisHost();
        Validate(Config);
        Arch = KvmArch.For(Config);
        Numa = new Mm.Numa.NumaState(Config);
    }

    /// <summary>The NUMA nodes and the task's NUMA state (interleave cursor, interned policies).</summary>
    internal Mm.Numa.NumaState Numa { get; }

    /// <summary>This process's emulated mappings (for mm/mempolicy.c and mm/migrate.c).</summary>
    internal AddressSpace AddressSpace => _mm;

    /// <summary>The anonymous mappings made through this kernel.</summary>
    internal Mm.AnonymousMappings Anonymous => _anonymous;

    /// <summary>The configuration this kernel was created with.</summary>
    public EmulatorConfig Config { get; }

    /// <summary>The proposal numbers of <see cref="Config"/> (<see cref="EmulatorConfig.Proposals"/>), for Kvm.Open.</summary>
    public UapiProposals Proposals => Config.Proposals;

    /// <summary>Always "emulated".</summary>
    public string Name => "emulated";

    /// <summary>Serializes every call into the emulated kernel.</summary>
    internal Lock SyncRoot { get; } = new();

    internal KvmArch Arch { get; }

    /// <summary>kvm.gmem_in_place_conversion ([PATCH v8 09/46]): guest_memfd tracks private/shared per page.</summary>
    internal bool InPlaceConversion => Config.Generation == KernelGeneration.InPlaceConversionV8 && Config.GmemInPlaceConversion;

    /// <summary>Open emulated descriptors (for leak checks).</summary>
    public int OpenFdCount
    {
        get { lock (SyncRoot) return _fds.Count; }
    }

    /// <summary>VMs not yet destroyed (a VM lives while its fd, a gmem file or a mapping of one is open).</summary>
    public int LiveVmCount
    {
        get { lock (SyncRoot) return _vms.Count; }
    }

    /// <summary>Emulated file mappings still mapped.</summary>
    public int MappingCount
    {
        get { lock (SyncRoot) return _mm.Vmas.Count; }
    }

    // ---------------------------------------------------------------- syscalls

    /// <summary>
    /// open(2): only "/dev/kvm" exists (<paramref name="flags"/> are not checked), and "/dev/sev" where the
    /// configuration offers an SEV VM type (Arch/X86/SevFirmware.cs); any other path, or a disposed kernel, gives
    /// -ENOENT.
    /// </summary>
    public long Open(string path, int flags, out KernelFd? fd)
    {
        fd = null;
        lock (SyncRoot)
        {
            // Only the KVM device (and, with an SEV VM type, the PSP's /dev/sev) exists in this file system.
            if (_disposed || (path != DevKvm && !(path == KvmSharp.Emulation.Arch.SevFirmware.DevSev && KvmSharp.Emulation.Arch.SevFirmware.Present(Config))))
                return Err.ENOENT;
            long rc = _fds.Install(path == DevKvm ? new KvmDeviceFile(this) : new Fs.SevDeviceFile());
            if (Err.IsError(rc)) return rc;
            fd = new KernelFd(this, (int)rc);
            return rc;
        }
    }

    /// <inheritdoc/>
    public KernelFd Adopt(int fd) => new(this, fd);

    /// <summary>close(2) of an emulated descriptor; -EBADF when it is not open or the kernel is disposed.</summary>
    public long Close(int fd)
    {
        lock (SyncRoot) return _disposed ? Err.EBADF : _fds.Close(fd);
    }

    /// <summary>
    /// ioctl(2) with a struct argument, decoded and answered like the kernel (generic VFS requests first, then the
    /// file's own); -EBADF for a descriptor of another kernel.
    /// </summary>
    public long Ioctl(KernelFd fd, uint request, Span<byte> arg) => DoIoctl(fd, request, IoctlArg.FromBuffer(arg));

    /// <summary>
    /// ioctl(2) with an integer argument (KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_RUN …); -EBADF for a descriptor of
    /// another kernel.
    /// </summary>
    public long Ioctl(KernelFd fd, uint request, ulong arg) => DoIoctl(fd, request, IoctlArg.FromValue(arg));

    private long DoIoctl(KernelFd fd, uint request, IoctlArg arg)
    {
        KvmVcpuFile vcpu;
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            if (file is null) return Err.EBADF;
            // fs/ioctl.c: do_vfs_ioctl answers the generic requests, then vfs_ioctl calls f_op->unlocked_ioctl.
            if (DoVfsIoctl.TryHandle(file, request, arg, out long handled)) return handled;
            if (file is not KvmVcpuFile v) return file.Ioctl(request, arg);
            // fdget: the reference keeps the vCPU file alive while its ioctl runs without the kernel lock.
            vcpu = v;
            vcpu.Get();
        }
        try
        {
            return vcpu.VcpuIoctl(request, arg);
        }
        finally
        {
            lock (SyncRoot) vcpu.Put();
        }
    }

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
            file.Get();
            _mm.Insert(new Vma(file, mapped, aligned, (ulong)offset >> EmulatorConfig.PageShift, prot, flags));
            return 0;
        }
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
    /// mbind(2) on the mappings made through this kernel (mm/mempolicy.c; see Mm/Numa/Mbind.cs). A guest_memfd mapping
    /// of a 6.19+ kernel also sets the file's shared policy, which its allocations follow; memory this kernel did not
    /// map is a hole (EFAULT).
    /// </summary>
    public long Mbind(nint address, ulong length, int mode, ulong nodemask, ulong maxnode, uint flags)
    {
        lock (SyncRoot) return _disposed ? Err.EFAULT : Mm.Numa.Mbind.Call(this, address, length, mode, nodemask, maxnode, flags);
    }

    /// <summary>get_mempolicy(2) of this kernel's task and mappings (Mm/Numa/GetMempolicy.cs).</summary>
    public long GetMempolicy(ulong policy, ulong nodemask, ulong maxnode, nint address, ulong flags)
    {
        lock (SyncRoot) return Mm.Numa.GetMempolicy.Call(this, policy, nodemask, maxnode, address, flags);
    }

    /// <summary>move_pages(2) in query mode on this kernel's mappings (Mm/Numa/MovePages.cs).</summary>
    public long MovePages(int pid, ulong count, ulong pages, ulong status, int flags)
    {
        lock (SyncRoot) return Mm.Numa.MovePages.Call(this, pid, count, pages, status, flags);
    }

    /// <summary>gettid(2) as this kernel knows threads: the managed thread id (stable per thread).</summary>
    public int GetTid() => Environment.CurrentManagedThreadId;

    /// <summary>
    /// tgkill(2) with the vCPU kick signal: a KVM_RUN in progress on thread <paramref name="tid"/> returns EINTR
    /// (checked between instructions). A thread outside KVM_RUN runs the no-op handler: nothing happens.
    /// </summary>
    public long KickThread(int tid)
    {
        _running.Signal(tid);
        return 0;
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
    /// Whether GUP (get_user_pages / pin_user_pages) refuses <paramref name="address"/>: it lies in a mapping of a
    /// guest_memfd with AS_NO_DIRECT_MAP ([PATCH v12 06/16] check_vma_flags → -EFAULT, GUP-fast refuses the folio).
    /// KVM's hva_to_pfn then fails with KVM_PFN_ERR_FAULT, so a guest access through a memslot's userspace_addr there
    /// is -EFAULT (the series' v5 cover letter: "guest page faults cannot be resolved by GUP-ing userspace mappings").
    /// </summary>
    internal bool GupRefuses(ulong address)
    {
        lock (SyncRoot)
        {
            return !_disposed && _mm.Find((nint)address) is { File: GmemFile f } && GmemNoDirectMap.IsSet(f.GmemInode);
        }
    }

    private static ulong PageAlign(ulong length) =>
        (length + (ulong)EmulatorConfig.PageSize - 1) & ~(ulong)(EmulatorConfig.PageSize - 1);

    /// <summary>
    /// fallocate(2) with the generic checks of vfs_fallocate, then the file's own (kvm_gmem_fallocate for guest_memfd).
    /// </summary>
    public long Fallocate(KernelFd fd, int mode, long offset, long length)
    {
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            return file is null ? Err.EBADF : VfsCalls.Fallocate(file, mode, offset, length);
        }
    }

    /// <summary>
    /// read(2): an eventfd's counter (fs/eventfd.c eventfd_read, which may block with the kernel lock released); no KVM
    /// file can be read, so -EINVAL (or -EBADF) and <paramref name="buffer"/> is untouched.
    /// </summary>
    public long Read(KernelFd fd, Span<byte> buffer)
    {
        Fs.EventFdFile eventFd;
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            if (file is null) return Err.EBADF;
            // f_op->read at f_pos (a binary stats fd: kvm_stats_read), or EINVAL without one.
            if (file is not Fs.EventFdFile e) return VfsCalls.Read(file, buffer);
            // fdget: the reference keeps the file while a blocking read waits without the kernel lock.
            eventFd = e;
            eventFd.Get();
        }
        try
        {
            return eventFd.Read(buffer);
        }
        finally
        {
            lock (SyncRoot) eventFd.Put();
        }
    }

    /// <summary>write(2): an eventfd's counter (eventfd_write, may block as Read); no KVM file can be written, so -EINVAL (or -EBADF).</summary>
    public long Write(KernelFd fd, ReadOnlySpan<byte> buffer)
    {
        Fs.EventFdFile eventFd;
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            if (file is null) return Err.EBADF;
            // vfs_write: "if (!(file->f_mode & FMODE_WRITE)) return -EBADF;" (an O_RDONLY binary stats fd).
            if (file.ReadOnly) return Err.EBADF;
            // guest_memfd with [PATCH v7 1/2]: generic_perform_write at f_pos (Vfs/VfsWrite.cs).
            if (file is not Fs.EventFdFile e) return VfsWrite.Write(file, buffer);
            eventFd = e;
            eventFd.Get();
        }
        try
        {
            return eventFd.Write(buffer);
        }
        finally
        {
            lock (SyncRoot) eventFd.Put();
        }
    }

    /// <summary>eventfd2(2): fs/eventfd.c do_eventfd (flags checked, then a descriptor); -EBADF once disposed.</summary>
    public long EventFd(uint initialValue, int flags, out KernelFd? fd)
    {
        fd = null;
        lock (SyncRoot)
        {
            if (_disposed) return Err.EBADF;
            long rc = Fs.EventFdFile.Create(this, initialValue, flags);
            if (Err.IsError(rc)) return rc;
            fd = new KernelFd(this, (int)rc);
            return rc;
        }
    }

    private int _liveEventFdContexts;

    /// <summary>eventfd contexts not yet freed: held by an open eventfd or by a kernel user (an ioeventfd) after close.</summary>
    public int LiveEventFdContexts => Volatile.Read(ref _liveEventFdContexts);

    internal void EventFdContextCreated() => Interlocked.Increment(ref _liveEventFdContexts);

    internal void EventFdContextFreed() => Interlocked.Decrement(ref _liveEventFdContexts);

    /// <summary>
    /// pread64(2): -EINVAL for a negative offset, else -ESPIPE or -EINVAL as the file's mode says; a file with f_op->read
    /// (a binary stats fd) reads at the offset.
    /// </summary>
    public long Pread(KernelFd fd, Span<byte> buffer, long offset)
    {
        // ksys_pread64: pos < 0 → EINVAL before the fd lookup; a binary stats fd (FMODE_PREAD) reads at offset.
        if (offset < 0) return Err.EINVAL;
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            return file is null ? Err.EBADF : VfsCalls.Pread(file, buffer, offset);
        }
    }

    /// <summary>
    /// pwrite64(2): -EINVAL for a negative offset, else -ESPIPE or -EINVAL as the file's mode says; a guest_memfd of a
    /// kernel with the write proposal (<see cref="EmulatorConfig.GuestMemfdWrite"/>) writes whole pages.
    /// </summary>
    public long Pwrite(KernelFd fd, ReadOnlySpan<byte> buffer, long offset)
    {
        // ksys_pwrite64: pos < 0 → EINVAL before the fd is looked up; then FMODE_PWRITE and vfs_write (Vfs/VfsWrite.cs:
        // guest_memfd with [PATCH v7 1/2] writes).
        if (offset < 0) return Err.EINVAL;
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            return file is null ? Err.EBADF : VfsWrite.Pwrite(file, buffer, offset);
        }
    }

    /// <summary>
    /// lseek(2): 0 for files with noop_llseek (the position never moves), default_llseek's answer for a guest_memfd
    /// with the write proposal, -ESPIPE for the others, -EINVAL for a bad whence.
    /// </summary>
    public long Lseek(KernelFd fd, long offset, int whence)
    {
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            return file is null ? Err.EBADF : DefaultLlseek.Lseek(file, offset, whence);
        }
    }

    /// <summary>
    /// fstat(2): device, inode, mode and size of the file, block size = the page size, st_blocks = 0 (as guest_memfd
    /// reports).
    /// </summary>
    public long Fstat(KernelFd fd, out KernelStat stat)
    {
        stat = default;
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            if (file is null) return Err.EBADF;
            // st_blocks stays 0 for guest_memfd: its folios are not accounted in i_blocks (observed). st_blksize is
            // 1 << i_blkbits: the huge page size for a HugeTLB guest_memfd (guestmem_hugetlb_setup sets i_blkbits).
            long blockSize = file is GmemFile gmem ? gmem.GmemInode.BlockSize : EmulatorConfig.PageSize;
            stat = new KernelStat(file.Device, file.Inode, file.Mode, Links: 1, file.Size, blockSize, Blocks: 0);
            return 0;
        }
    }

    /// <summary>
    /// ftruncate(2): always -EINVAL (or -EBADF): a guest_memfd's size is fixed at creation (kvm_gmem_setattr).
    /// </summary>
    public long Ftruncate(KernelFd fd, long length)
    {
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            return file is null ? Err.EBADF : VfsCalls.Ftruncate(file, length);
        }
    }

    // ---------------------------------------------------------------- test and VMM hooks

    /// <summary>
    /// Pins page <paramref name="offset"/>/PAGE_SIZE of a guest_memfd like pin_user_pages(FOLL_LONGTERM) through a
    /// host mapping would: EBADF for a bad fd, EINVAL for a non-gmem fd, EFAULT when the host could not fault the
    /// page in (beyond i_size, or private) or GUP refuses the mapping (AS_NO_DIRECT_MAP, [PATCH v12 06/16]). Returns 0
    /// and the pin.
    /// </summary>
    public long PinGuestMemfdPage(KernelFd fd, ulong offset, out GuestMemfdPin? pin)
    {
        pin = null;
        lock (SyncRoot)
        {
            var file = Lookup(fd);
            if (file is null) return Err.EBADF;
            if (file is not GmemFile f) return Err.EINVAL;
            var inode = f.GmemInode;
            ulong index = offset >> EmulatorConfig.PageShift;
            // [PATCH v12 06/16] check_vma_flags: vma_has_no_direct_map(vma) → -EFAULT, before any page is faulted.
            if (GmemNoDirectMap.IsSet(inode)) return Err.EFAULT;
            if (FaultUserMapping(inode, index) is not null) return Err.EFAULT;
            inode.Pin(index);
            pin = new GuestMemfdPin(this, inode, index);
            return 0;
        }
    }

    /// <summary>
    /// What the kernel would do on a host access to [address, address+length) of an emulated mapping right now:
    /// null when it would succeed, else the SIGBUS (or SIGSEGV) reason. This is the kernel-side record of
    /// revocation: after a conversion to private the VMAs were zapped and every re-fault of the page answers
    /// <see cref="HostAccessFault.PrivatePage"/>, even though the host memory stays mapped in this process.
    /// </summary>
    public HostAccessFault? CheckHostAccess(nint address, ulong length)
    {
        lock (SyncRoot)
        {
            if (length == 0) return null;
            ulong page = (ulong)EmulatorConfig.PageSize;
            ulong first = (ulong)address & ~(page - 1);
            ulong last = ((ulong)address + length - 1) & ~(page - 1);
            for (ulong p = first; p <= last; p += page)
            {
                var vma = _mm.Find((nint)p);
                if (vma is null) return HostAccessFault.NotMapped;
                if (vma.File is not GmemFile f) continue;
                ulong pgoff = vma.PgOff + (p - (ulong)vma.Start) / page;
                if (FaultUserMapping(f.GmemInode, pgoff) is HostAccessFault fault) return fault;
                if (p == last) break;
            }
            return null;
        }
    }

    /// <summary>How many times the emulated VMA at <paramref name="address"/> was zapped by a conversion to private.</summary>
    public int HostMappingZapCount(nint address)
    {
        lock (SyncRoot) return _mm.Find(address)?.ZapCount ?? 0;
    }

    /// <summary>
    /// Tears the emulated process down like exit(2): every emulated mapping is unmapped and every descriptor
    /// closed, which releases the files and VMs. Later calls on this kernel fail with EBADF.
    /// </summary>
    public void Dispose()
    {
        lock (SyncRoot)
        {
            if (_disposed) return;
            _mm.Clear();
            _anonymous.Clear();
            foreach (int fd in _fds.Numbers.ToArray()) _ = _fds.Close(fd);
            _disposed = true;
        }
    }

    // ---------------------------------------------------------------- kernel internals

    /// <summary>fget(fd) for an emulated descriptor number; null when not open.</summary>
    internal KernelFile? Fget(uint fd) => _disposed ? null : _fds.Get(fd);

    private KernelFile? Lookup(KernelFd fd)
    {
        if (_disposed || fd.IsClosed || fd.IsInvalid || !ReferenceEquals(fd.Kernel, this)) return null;
        return _fds.Get(fd.Number);
    }

    /// <summary>kvm_dev_ioctl_create_vm: kvm_arch_init_vm validates the type, then the VM fd is installed.</summary>
    internal long CreateVm(ulong type)
    {
        if (!_fds.HasRoom) return Err.EMFILE;
        long r = Arch.InitVm(type, out var archState);
        if (r != 0) return r;
        var kvm = new Kvm(this, type, archState);
        _vms.Add(kvm);
        return _fds.Install(new KvmVmFile(kvm));
    }

    /// <summary>__kvm_gmem_create: a new inode and file, holding a VM reference, installed without O_CLOEXEC.</summary>
    internal long CreateGmemFile(Kvm kvm, long size, ulong flags)
    {
        if (!_fds.HasRoom) return Err.EMFILE;
        // [PATCH v12 10/16]: "if (flags & GUEST_MEMFD_FLAG_NO_DIRECT_MAP) mapping_set_no_direct_map(inode->i_mapping)".
        bool noDirectMap = Config.GuestMemfdNoDirectMap && (flags & GmemNoDirectMap.Flag) != 0;
        long r = GmemInode.Create(_nextIno, size, flags, GmemBacking.NeedsExactResidency(kvm, flags), Numa, Config.Generation.HasGmemMempolicy(), noDirectMap, out var inode);
        if (r != 0) return r;
        _nextIno++;
        kvm.Get();
        return _fds.Install(new GmemFile(kvm, inode!));
    }

    internal void OnVmDestroyed(Kvm kvm) => _vms.Remove(kvm);

    /// <summary>True when another fd could be installed now (get_unused_fd_flags would succeed).</summary>
    internal bool HasFdRoom => _fds.HasRoom;

    /// <summary>fd_install of a new file; the fd or EMFILE.</summary>
    internal long InstallFile(KernelFile file) => _fds.Install(file);

    /// <summary>The calling thread enters KVM_RUN on <paramref name="vcpu"/> (a kick may now reach it).</summary>
    internal void EnterRun(KvmVcpu vcpu) => _running.Enter(GetTid(), vcpu);

    /// <summary>KVM_RUN returns: a signal that did not stop it is delivered to the no-op handler and forgotten.</summary>
    internal void LeaveRun(KvmVcpu vcpu) => _running.Leave(GetTid(), vcpu);

    /// <summary>unmap_mapping_pages(): zap the host PTEs of [start, end) of the file in every VMA.</summary>
    internal void UnmapMappingPages(GmemFile file, ulong start, ulong end)
    {
        ulong page = (ulong)EmulatorConfig.PageSize;
        foreach (var vma in _mm.Vmas)
        {
            if (vma.File != file) continue;
            ulong vmaEnd = vma.PgOff + vma.Length / page;
            if (vma.PgOff < end && start < vmaEnd) vma.ZapCount++;
        }
    }

    /// <summary>kvm_gmem_fault_user_mapping's verdict for file page <paramref name="pgoff"/>.</summary>
    internal static HostAccessFault? FaultUserMapping(GmemInode inode, ulong pgoff)
    {
        if (inode.MemfdFd < 0) return HostAccessFault.Released;
        if (pgoff >= inode.NrPages) return HostAccessFault.BeyondEndOfFile;
        // 6.18: !INIT_SHARED → SIGBUS; v8: PRIVATE attribute → SIGBUS. Both read the attribute map (see GmemInode).
        if (!inode.IsShared(pgoff)) return HostAccessFault.PrivatePage;
        return null;
    }

    private static void Validate(EmulatorConfig config)
    {
        if (config.Architecture == Architecture.Arm64 && config.VmTypes.Any(t => t != 0))
            throw new ArgumentException("arm64 has only the default VM type", nameof(config));
        if (config.VmTypes.Any(t => t >= 32))
            throw new ArgumentException("VM types are bits of KVM_CAP_VM_TYPES (< 32)", nameof(config));
        if (config.Architecture == Architecture.X86_64 && config.VmTypes.Contains(KvmConstants.KVM_X86_SW_PROTECTED_VM) &&
            !(config.Kconfig.KVM_SW_PROTECTED_VM && config.TdpEnabled))
            throw new ArgumentException("KVM_X86_SW_PROTECTED_VM needs CONFIG_KVM_SW_PROTECTED_VM and TDP (arch/x86/kvm/x86.c)", nameof(config));
        if (config.GmemInPlaceConversion && config.Generation != KernelGeneration.InPlaceConversionV8)
            throw new ArgumentException("gmem_in_place_conversion exists only in the v8 in-place conversion tree", nameof(config));
        // mm/mempolicy.c: nodes are bits of a nodemask_t; the emulator keeps policies' effective nodes in one word.
        if (config.NumaNodes < 1 || config.NumaNodes > 64 || config.NumaNodes > config.MaxNumNodes)
            throw new ArgumentException("NumaNodes must be 1 … 64 and at most MaxNumNodes", nameof(config));
        if (config.MaxNumNodes < 1 || config.MaxNumNodes > EmulatorConfig.PageSize * 8 || (config.MaxNumNodes & (config.MaxNumNodes - 1)) != 0)
            throw new ArgumentException("MaxNumNodes is 1 << CONFIG_NODES_SHIFT (at most a page of bits)", nameof(config));
        ValidateGeneration(config);
        GmemHugetlb.Validate(config);
    }

    // What a kernel of config.Generation cannot have been built with (KernelGenerations names the release of each).
    private static void ValidateGeneration(EmulatorConfig config)
    {
        var g = config.Generation;
        string release = $"Linux {g.Release()}";
        var k = config.Kconfig;
        if (!g.HasGuestMemfd() && (k.KVM_GUEST_MEMFD || k.KVM_GENERIC_MEMORY_ATTRIBUTES || k.KVM_SW_PROTECTED_VM))
            throw new ArgumentException($"{release} has no guest_memfd, memory attributes or KVM_SW_PROTECTED_VM (6.8+)", nameof(config));
        // 6.8–6.10: only KVM_SW_PROTECTED_VM selects KVM_GENERIC_PRIVATE_MEM (arch/x86/kvm/Kconfig); KVM_AMD_SEV
        // selects it from 6.11 ("KVM: SEV: Select KVM_GENERIC_PRIVATE_MEM when CONFIG_KVM_AMD_SEV=y").
        if (config.Architecture == Architecture.X86_64 && !g.HasGmemPopulate() && k.KVM_GUEST_MEMFD && !k.KVM_SW_PROTECTED_VM)
            throw new ArgumentException($"{release} x86 has guest_memfd only with KVM_SW_PROTECTED_VM (KVM_AMD_SEV selects it from 6.11)", nameof(config));
        if (!g.HasGmemPopulate() && (k.HAVE_KVM_ARCH_GMEM_PREPARE || k.HAVE_KVM_ARCH_GMEM_INVALIDATE || k.HAVE_KVM_ARCH_GMEM_POPULATE))
            throw new ArgumentException($"{release} has no HAVE_KVM_ARCH_GMEM_PREPARE/INVALIDATE/POPULATE (6.11+, with SEV-SNP)", nameof(config));
        if (config.Architecture == Architecture.X86_64 && config.VmTypes.DefaultIfEmpty().Max() is var top && top > g.MaxX86VmType())
            throw new ArgumentException($"{release} knows x86 VM types up to {g.MaxX86VmType()}, not {top}", nameof(config));
        // arm64 selects KVM_GUEST_MEMFD from the mmap series on ("KVM: arm64: Enable support for guest_memfd backed memory").
        if (config.Architecture == Architecture.Arm64 && k.KVM_GUEST_MEMFD && !g.HasGmemMmap())
            throw new ArgumentException($"{release} has no guest_memfd on arm64 (6.18+)", nameof(config));
        // The proposals (FLAGS_HI, extra flags, seed 002, direct map removal v12 "[ based on kvm/next ]") are written
        // against 6.18+ trees.
        if (!g.HasGmemMmap() && (config.GuestMemfdFlagsHiCap is not null || config.ExtraGuestMemfdFlags != 0 || config.VmMemoryAttributes2 ||
                                 config.GuestMemfdNoDirectMap))
            throw new ArgumentException($"{release} predates KVM_CAP_GUEST_MEMFD_FLAGS; the flag and attribute proposals need 6.18+", nameof(config));
        // [PATCH v7 1/2] is based on kvm/next (6.18+: KVM_CAP_GUEST_MEMFD_FLAGS, INIT_SHARED).
        if (!g.HasGmemMmap() && config.GuestMemfdWrite)
            throw new ArgumentException($"{release} predates KVM_CAP_GUEST_MEMFD_FLAGS; the guest_memfd write proposal needs 6.18+", nameof(config));
        // KVM Userfault v3 is modeled on 6.18+ trees (x86_64 and arm64: Arm64/Stage2Access.cs UserfaultExit).
        if (config.KvmUserfault && !g.HasGmemMmap())
            throw new ArgumentException($"KVM Userfault ([PATCH v3]) is modeled on 6.18+ trees only, not {release}", nameof(config));
        // One meaning per bit: WRITE (1 << 3 here) is either the modeled proposal or not there at all.
        if (config.GuestMemfdWrite && (config.ExtraGuestMemfdFlags & GmemWrite.Flag) != 0)
            throw new ArgumentException("GUEST_MEMFD_FLAG_WRITE (1 << 3) is modeled by GuestMemfdWrite; leave it out of ExtraGuestMemfdFlags", nameof(config));
        // One meaning per bit: NO_DIRECT_MAP is either the modeled proposal or not there at all.
        if (config.GuestMemfdNoDirectMap && (config.ExtraGuestMemfdFlags & GmemNoDirectMap.Flag) != 0)
            throw new ArgumentException("GUEST_MEMFD_FLAG_NO_DIRECT_MAP (1 << 2) is modeled by GuestMemfdNoDirectMap; leave it out of ExtraGuestMemfdFlags", nameof(config));
    }
}
