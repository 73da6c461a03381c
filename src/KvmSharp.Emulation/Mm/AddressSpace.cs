// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Mm;

/// <summary>
/// The emulated part of this process's mm: the VMAs that map emulated files. Each one is also a real host mapping
/// (of the file's backing memfd), made and removed here. Anonymous mappings pass straight through to the host.
/// </summary>
internal sealed class AddressSpace
{
    private readonly List<Vma> _vmas = [];

    public IReadOnlyList<Vma> Vmas => _vmas;

    /// <summary>
    /// vma->vm_policy of every emulated mapping (file and anonymous), per page number (address &gt;&gt; PAGE_SHIFT):
    /// an interned policy id of <see cref="Numa.NumaState"/>, 0 for none (mm/mempolicy.c mbind_range splits VMAs so
    /// that each piece has one policy; a page map is the same thing).
    /// </summary>
    public MemoryAttributes.RangeMap<int> VmPolicy { get; } = new(0);

    /// <summary>
    /// The node of each present page of anonymous (and non-guest_memfd file) mappings, per page number; -1 when not
    /// known yet (a host fault the emulator did not see: given its node when next observed, see Numa.PageNodes).
    /// </summary>
    public MemoryAttributes.RangeMap<int> PageNodes { get; } = new(-1);

    /// <summary>A new mapping (or none) at [start, +length): no VMA policy, no pages (mmap, munmap, MAP_FIXED).</summary>
    public void ForgetPolicies(nint start, ulong length)
    {
        ulong first = (ulong)start >> EmulatorConfig.PageShift;
        ulong end = first + ((length + (ulong)EmulatorConfig.PageSize - 1) >> EmulatorConfig.PageShift);
        if (end <= first) return;
        VmPolicy.Set(first, end, 0);
        PageNodes.Set(first, end, -1);
    }

    public Vma? Find(nint address)
    {
        foreach (var vma in _vmas)
        {
            if (vma.Contains(address)) return vma;
        }
        return null;
    }

    /// <summary>Records a new file mapping; with MAP_FIXED it replaced whatever was there.</summary>
    public void Insert(Vma vma)
    {
        RemoveRange(vma.Start, vma.Length);
        ForgetPolicies(vma.Start, vma.Length);
        _vmas.Add(vma);
    }

    /// <summary>
    /// mm/vma.c do_vmi_munmap on the emulated VMAs: whole VMAs inside the range are dropped, partly covered ones
    /// are split (each piece keeps a file reference, as __split_vma does with get_file).
    /// </summary>
    public void RemoveRange(nint start, ulong length)
    {
        nint end = start + (nint)length;
        for (int i = _vmas.Count - 1; i >= 0; i--)
        {
            var vma = _vmas[i];
            if (vma.End <= start || vma.Start >= end) continue;
            _vmas.RemoveAt(i);
            if (vma.Start < start)
            {
                vma.File.Get();
                _vmas.Add(new Vma(vma.File, vma.Start, (ulong)(start - vma.Start), vma.PgOff, vma.Prot, vma.Flags));
            }
            if (vma.End > end)
            {
                vma.File.Get();
                ulong skipped = (ulong)(end - vma.Start);
                int page = EmulatorConfig.PageSize;
                _vmas.Add(new Vma(vma.File, end, (ulong)(vma.End - end), vma.PgOff + skipped / (ulong)page, vma.Prot, vma.Flags));
            }
            vma.File.Put();
        }
    }

    /// <summary>munmap(2): the generic checks, then the host unmap, then the emulated VMAs.</summary>
    public long Munmap(nint address, ulong length)
    {
        int page = EmulatorConfig.PageSize;
        // mm/vma.c do_vmi_munmap: unaligned start, zero length or a range beyond TASK_SIZE → EINVAL.
        if ((address & (page - 1)) != 0 || length == 0) return Err.EINVAL;
        ulong aligned = (length + (ulong)page - 1) & ~(ulong)(page - 1);
        if (aligned == 0 || (ulong)address + aligned < (ulong)address) return Err.EINVAL;
        long rc = HostMemory.Munmap(address, aligned);
        if (Err.IsError(rc)) return rc;
        RemoveRange(address, aligned);
        ForgetPolicies(address, aligned);
        return 0;
    }

    /// <summary>Drops every emulated VMA (kernel teardown); the host mappings are unmapped too.</summary>
    public void Clear()
    {
        foreach (var vma in _vmas.ToArray())
        {
            _ = HostMemory.Munmap(vma.Start, vma.Length);
            _vmas.Remove(vma);
            vma.File.Put();
        }
    }

    /// <summary>Whether <paramref name="prot"/> asks for execution on a noexec file.</summary>
    public static bool WantsExec(int prot) => (prot & LinuxConstants.PROT_EXEC) != 0;
}
