// SPDX-License-Identifier: MIT
// The NUMA syscalls: mbind, get_mempolicy, move_pages (mm/mempolicy.c, mm/migrate.c).
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation;

public sealed partial class EmulatedKernel
{
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
}
