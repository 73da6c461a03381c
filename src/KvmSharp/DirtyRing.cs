// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// A vCPU's dirty ring (KVM_CAP_DIRTY_LOG_RING): the array of struct kvm_dirty_gfn KVM fills with the pages this vCPU
/// wrote, mapped from the vCPU fd at KVM_DIRTY_LOG_PAGE_OFFSET. Owned by its <see cref="Vcpu"/>, which unmaps it on
/// Dispose. <see cref="Harvest(Span{DirtyRingEntry})"/> reads entries in the order KVM pushed them (an entry's flags
/// with acquire, then slot and offset) and marks each collected (KVM_DIRTY_GFN_F_RESET, with release);
/// <see cref="Vm.ResetDirtyRings"/> then frees the collected entries of every vCPU and write-protects their pages
/// again, so the next write to them is reported again. A page written twice between two resets is reported once.
/// On arm64 without KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP the slot is not "logging" for the stage-2 fault path
/// (arch/arm64/kvm/mmu.c memslot_is_logging): a read fault that maps a page writable reports it too, and a block
/// mapping's other pages are then written without a report; enable the bitmap capability for exact write tracking.
/// One thread harvests a ring at a time (calls are serialized).
/// </summary>
public sealed class DirtyRing : IDisposable
{
    private readonly MappedRegion _region;
    private readonly Lock _lock = new();
    private uint _fetchIndex;

    private DirtyRing(MappedRegion region, int vcpuId, int entryCount)
    {
        _region = region;
        VcpuId = vcpuId;
        EntryCount = entryCount;
    }

    /// <summary>The id of the vCPU whose writes this ring reports.</summary>
    public int VcpuId { get; }

    /// <summary>How many entries the ring holds (its size in bytes / 16; a power of two).</summary>
    public int EntryCount { get; }

    /// <summary>
    /// The free-running index of the next entry <see cref="Harvest(Span{DirtyRingEntry})"/> looks at (entries
    /// collected since the ring was mapped; the slot is this modulo <see cref="EntryCount"/>).
    /// </summary>
    public uint HarvestIndex
    {
        get
        {
            lock (_lock) return _fetchIndex;
        }
    }

    /// <summary>mmap(2) of the ring: MAP_SHARED, read and write (KVM refuses MAP_PRIVATE and PROT_EXEC).</summary>
    internal static DirtyRing Map(IKernel kernel, KernelFd vcpuFd, int vcpuId, int bytes)
    {
        long offset = (long)KvmConstants.KVM_DIRTY_LOG_PAGE_OFFSET * Environment.SystemPageSize;
        long rc = MappedRegion.Map(kernel, vcpuFd, (ulong)bytes, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE,
            LinuxConstants.MAP_SHARED, offset, out MappedRegion? region);
        KvmCall.Check(rc, "mmap", $"dirty ring of vCPU {vcpuId}, offset=0x{offset:X} length=0x{bytes:X}");
        return new DirtyRing(region!, vcpuId, bytes / Unsafe.SizeOf<kvm_dirty_gfn>());
    }

    /// <summary>
    /// Collects the entries KVM published since the last harvest, oldest first, into <paramref name="into"/> (as many
    /// as fit) and marks each collected. Returns how many; 0 when the ring holds nothing new. The pages stay
    /// write-enabled in KVM until <see cref="Vm.ResetDirtyRings"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The vCPU (and so the ring mapping) was disposed.</exception>
    public int Harvest(Span<DirtyRingEntry> into)
    {
        lock (_lock)
        {
            var entries = Entries();
            int count = 0;
            uint mask = (uint)EntryCount - 1;
            while (count < into.Length)
            {
                ref kvm_dirty_gfn entry = ref entries[(int)(_fetchIndex & mask)];
                // dirty_gfn_is_dirtied: smp_load_acquire(&gfn->flags) == KVM_DIRTY_GFN_F_DIRTY (flags are published last).
                if (Volatile.Read(ref entry.flags) != KvmConstants.KVM_DIRTY_GFN_F_DIRTY) break;
                into[count++] = new DirtyRingEntry(entry.slot, entry.offset);
                // dirty_gfn_set_collected: smp_store_release(&gfn->flags, KVM_DIRTY_GFN_F_RESET).
                Volatile.Write(ref entry.flags, KvmConstants.KVM_DIRTY_GFN_F_RESET);
                _fetchIndex++;
            }
            return count;
        }
    }

    /// <summary>Collects every entry published since the last harvest (see <see cref="Harvest(Span{DirtyRingEntry})"/>).</summary>
    public DirtyRingEntry[] HarvestAll()
    {
        var buffer = new DirtyRingEntry[EntryCount];
        return buffer[..Harvest(buffer)];
    }

    /// <summary>
    /// How many entries KVM has published and this ring has not harvested yet, without collecting them (a snapshot:
    /// a running vCPU may push more).
    /// </summary>
    public int Pending
    {
        get
        {
            lock (_lock)
            {
                var entries = Entries();
                uint mask = (uint)EntryCount - 1;
                int n = 0;
                while (n < EntryCount && Volatile.Read(ref entries[(int)((_fetchIndex + (uint)n) & mask)].flags) == KvmConstants.KVM_DIRTY_GFN_F_DIRTY) n++;
                return n;
            }
        }
    }

    /// <summary>
    /// The ring as entries, bounds-checked against the mapping (throws once the vCPU is disposed). Unsafe.SizeOf is a
    /// JIT-time constant (Marshal.SizeOf is not: it was half the cost of an empty harvest).
    /// </summary>
    private Span<kvm_dirty_gfn> Entries() =>
        MemoryMarshal.Cast<byte, kvm_dirty_gfn>(_region.GetSpan(0, EntryCount * Unsafe.SizeOf<kvm_dirty_gfn>()));

    /// <summary>Unmaps the ring (the vCPU does this on its own Dispose).</summary>
    public void Dispose() => _region.Dispose();
}
