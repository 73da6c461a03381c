// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Mm;

/// <summary>The generic checks of mm/mmap.c do_mmap for a file mapping, in the kernel's order.</summary>
internal static class DoMmap
{
    private const int MAP_TYPE = 0x0f;
    private const int MAP_SHARED_VALIDATE = 0x03;

    // include/linux/mman.h LEGACY_MAP_MASK: the flags MAP_SHARED_VALIDATE accepts on a file without FOP_MMAP_SYNC.
    private const int LEGACY_MAP_MASK = 0x01 | 0x02 | 0x10 | 0x20 | 0x100 | 0x800 | 0x1000 | 0x2000 | 0x4000 |
        0x8000 | 0x10000 | 0x20000 | 0x40000 | 0x4000000;

    /// <summary>
    /// Checks a file mapping request; returns 0 and the page-aligned length, or -errno. The caller already did the
    /// offset-alignment check and the fd lookup (arch sys_mmap, ksys_mmap_pgoff).
    /// </summary>
    public static long Check(KernelFile file, ulong length, int prot, int flags, long offset, out ulong alignedLength)
    {
        alignedLength = 0;
        ulong page = (ulong)EmulatorConfig.PageSize;
        if (length == 0) return Err.EINVAL;
        ulong aligned = (length + page - 1) & ~(page - 1);
        if (aligned == 0) return Err.ENOMEM;
        ulong pgoff = (ulong)offset / page;
        if (pgoff + aligned / page < pgoff) return Err.EOVERFLOW;
        switch (flags & MAP_TYPE)
        {
            case LinuxConstants.MAP_SHARED:
                // MAP_SHARED silently ignores unknown flags (flags &= LEGACY_MAP_MASK).
                break;
            case MAP_SHARED_VALIDATE:
                if ((flags & ~LEGACY_MAP_MASK) != 0) return Err.EOPNOTSUPP;
                break;
            case LinuxConstants.MAP_PRIVATE:
                break;
            default:
                return Err.EINVAL;
        }
        // MAP_SHARED(_VALIDATE): "if (prot & PROT_WRITE) { if (!(file->f_mode & FMODE_WRITE)) return -EACCES;"
        // (an O_RDONLY binary stats fd; probed: EACCES).
        if (DoMmap.IsShared(flags) && file.ReadOnly && (prot & LinuxConstants.PROT_WRITE) != 0) return Err.EACCES;
        // path_noexec(): the guest_memfd mount is MNT_NOEXEC (kvm_gmem_init_mount) → PROT_EXEC fails with EPERM.
        if (file.NoExec && AddressSpace.WantsExec(prot)) return Err.EPERM;
        alignedLength = aligned;
        return 0;
    }

    /// <summary>Whether the VMA gets VM_SHARED|VM_MAYSHARE (MAP_SHARED or MAP_SHARED_VALIDATE on a writable file).</summary>
    public static bool IsShared(int flags) => (flags & MAP_TYPE) is LinuxConstants.MAP_SHARED or MAP_SHARED_VALIDATE;
}
