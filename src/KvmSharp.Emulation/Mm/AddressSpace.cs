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
