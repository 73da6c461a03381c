// SPDX-License-Identifier: MIT
// guest_memfd files and host access to their mappings: creation, pins, fault verdicts, zaps (virt/kvm/guest_memfd.c).
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation;

public sealed partial class EmulatedKernel
{
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
        return _fds.Install(new GmemFile(kvm, inode!), closeOnExec: false);
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
}
