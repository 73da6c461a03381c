// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Mm;

/// <summary>
/// The anonymous host mappings made through this emulated kernel's mmap, with their protection. Guest accesses to a
/// memslot whose userspace_addr lies in one may use the memory directly (a cached page, like KVM's mapped pfn);
/// anything else goes through process_vm_readv/writev. A range leaves the table before it is unmapped, and the
/// unmap waits for running vCPUs (the MMU-notifier invalidation of kvm_mmu_notifier_invalidate_range_start).
/// </summary>
internal sealed class AnonymousMappings
{
    private readonly List<(nint Start, nint End, int Prot)> _ranges = [];

    public void Add(nint start, ulong length, int prot) => _ranges.Add((start, start + (nint)length, prot));

    /// <summary>Drops [start, start+length) from the table; returns whether any tracked range overlapped it.</summary>
    public bool Remove(nint start, ulong length)
    {
        nint end = start + (nint)length;
        bool any = false;
        for (int i = _ranges.Count - 1; i >= 0; i--)
        {
            var r = _ranges[i];
            if (r.End <= start || r.Start >= end) continue;
            any = true;
            _ranges.RemoveAt(i);
            if (r.Start < start) _ranges.Add((r.Start, start, r.Prot));
            if (r.End > end) _ranges.Add((end, r.End, r.Prot));
        }
        return any;
    }

    /// <summary>Whether [address, address+length) lies in one tracked mapping readable (and writable, if asked).</summary>
    public bool Covers(nint address, ulong length, bool write)
    {
        nint end = address + (nint)length;
        foreach (var r in _ranges)
        {
            if (address < r.Start || end > r.End) continue;
            if ((r.Prot & LinuxConstants.PROT_READ) == 0) return false;
            return !write || (r.Prot & LinuxConstants.PROT_WRITE) != 0;
        }
        return false;
    }

    /// <summary>The tracked mappings that overlap [start, end), whole.</summary>
    public IEnumerable<(nint Start, nint End)> Overlapping(nint start, nint end) =>
        _ranges.Where(r => r.Start < end && start < r.End).Select(r => (r.Start, r.End));

    public void Clear() => _ranges.Clear();
}
