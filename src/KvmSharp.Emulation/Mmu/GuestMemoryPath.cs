// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Mmu;

/// <summary>
/// The guest side of guest memory, for the emulated vCPU / KVM_RUN to build on: how a guest fault on a GPA is
/// resolved (arch/x86/kvm/mmu kvm_mmu_faultin_pfn → kvm_gmem_get_pfn). Every method takes the kernel lock.
/// Results follow the kernel: 0 or -errno.
/// </summary>
internal static class GuestMemoryPath
{
    /// <summary>The VM behind a VM fd of this kernel (null for a closed or non-VM fd).</summary>
    public static Kvm? VmOf(EmulatedKernel kernel, KernelFd vmFd)
    {
        lock (kernel.SyncRoot)
        {
            if (vmFd.IsClosed || !ReferenceEquals(vmFd.Kernel, kernel)) return null;
            return kernel.Fget((uint)vmFd.Number) is KvmVmFile f ? f.Kvm : null;
        }
    }

    /// <summary>__gfn_to_memslot: the slot of address space <paramref name="asId"/> containing the GFN.</summary>
    public static KvmMemorySlot? GfnToMemslot(Kvm kvm, int asId, ulong gfn)
    {
        lock (kvm.Kernel.SyncRoot)
        {
            if (asId < 0 || asId >= kvm.Arch.NrMemslotAsIds(kvm)) return null;
            foreach (var slot in kvm.Memslots(asId).Values)
            {
                if (slot.ContainsGfn(gfn)) return slot;
            }
            return null;
        }
    }

    /// <summary>
    /// kvm_mem_is_private(kvm, gfn). 6.18: the per-VM attribute xarray (KVM_SET_MEMORY_ATTRIBUTES). v8 with
    /// gmem_in_place_conversion: the attributes of the guest_memfd page bound at the GFN; a GFN without a gmem
    /// memslot is shared ([PATCH v8], private_mem_kvm_exits_test: deleting the memslot makes the GPA shared).
    /// </summary>
    public static bool MemIsPrivate(Kvm kvm, ulong gfn, int asId = 0)
    {
        lock (kvm.Kernel.SyncRoot)
        {
            if (!kvm.Kernel.InPlaceConversion)
                return kvm.Kernel.Config.Kconfig.KVM_GENERIC_MEMORY_ATTRIBUTES &&
                       (kvm.MemAttrArray.Get(gfn) & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0;
            var slot = GfnToMemslot(kvm, asId, gfn);
            if (slot?.GmemFile is not GmemFile f) return false;
            return !f.GmemInode.IsShared(gfn - slot.BaseGfn + slot.GmemPgoff);
        }
    }

    /// <summary>
    /// kvm_gmem_get_pfn: the file was released → EFAULT; the file's binding at the index is not this slot → EIO;
    /// else the folio, zeroed and marked up to date on first use (once per lifetime, shared with the host fault
    /// path). The arch prepare hook (SEV-SNP; v8: private pages only) is not emulated.
    /// </summary>
    public static long GmemGetPfn(KvmMemorySlot slot, ulong gfn, out GmemPageRef page)
    {
        page = default;
        var f = slot.GmemFile;
        if (f is null) return Err.EFAULT;
        lock (f.Kvm.Kernel.SyncRoot)
        {
            if (slot.GmemFile is null || f.Released) return Err.EFAULT;
            ulong index = gfn - slot.BaseGfn + slot.GmemPgoff;
            if (f.BindingAt(index) != slot) return Err.EIO;
            long r = f.GmemInode.PrepareForGuest(index);
            if (r != 0) return r;
            page = new GmemPageRef(f.GmemInode, index);
            return 0;
        }
    }
}

/// <summary>One guest_memfd page the guest path resolved (a folio reference, without the refcount).</summary>
internal readonly record struct GmemPageRef(GmemInode Inode, ulong Index)
{
    private long Offset => (long)(Index << EmulatorConfig.PageShift);

    /// <summary>Reads from the page at <paramref name="offsetInPage"/> (the host memfd, shared with every mapping).</summary>
    public long Read(int offsetInPage, Span<byte> destination) => HostMemory.Pread(Inode.MemfdFd, destination, Offset + offsetInPage);

    public long Write(int offsetInPage, ReadOnlySpan<byte> source) => HostMemory.Pwrite(Inode.MemfdFd, source, Offset + offsetInPage);

    /// <summary>A kernel mapping of this page for span access; dispose it when done.</summary>
    public long Map(out HostMapping? mapping) => Inode.MapForKernel(Index, 1, out mapping);

    public PageState State => Inode.GetPageState(Index);
}
