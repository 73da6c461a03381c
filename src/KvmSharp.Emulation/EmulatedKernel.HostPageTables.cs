// SPDX-License-Identifier: MIT
// The host page tables of guest_memfd mappings, for a program that touches them itself (kvmsharp exec).
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Emulation;

public sealed partial class EmulatedKernel
{
    /// <summary>
    /// Whether the host mappings of guest_memfd pages that are private are made inaccessible (PROT_NONE) in this
    /// process, so a program that touches them directly faults, as kvm_gmem_fault_user_mapping answers a fault on a
    /// private page with VM_FAULT_SIGBUS (6.18: every page of a file without INIT_SHARED; the v8 series: the pages
    /// whose attribute is PRIVATE). Off by default: the SDK checks every access before it touches memory
    /// (<see cref="CheckHostAccess"/>), and a .NET process cannot survive the fault. <c>kvmsharp exec</c> turns it on
    /// for C programs, whose preload library turns the fault into the SIGBUS the kernel would send.
    /// </summary>
    public bool ProtectsPrivatePages { get; init; }

    /// <summary>
    /// Whether a host access at <paramref name="address"/> is one the kernel answers with SIGBUS: a mapping of a
    /// guest_memfd whose page there is private, beyond the file's end, or whose file was released.
    /// </summary>
    public bool HostAccessRaisesSigbus(nint address)
    {
        lock (SyncRoot)
        {
            return !_disposed && _mm.Find(address) is { File: GmemFile } && CheckHostAccess(address, 1) is
                HostAccessFault.PrivatePage or HostAccessFault.BeyondEndOfFile or HostAccessFault.Released;
        }
    }

    /// <summary>
    /// Brings the host protection of file pages [<paramref name="start"/>, <paramref name="end"/>) in every mapping
    /// of <paramref name="file"/> in line with their attributes: the mapping's own protection where shared,
    /// PROT_NONE where private. Called after a mapping is made and after every conversion. Caller holds SyncRoot.
    /// </summary>
    internal void ProtectHostMappings(GmemFile file, ulong start, ulong end)
    {
        if (!ProtectsPrivatePages) return;
        ulong page = (ulong)EmulatorConfig.PageSize;
        var inode = file.GmemInode;
        foreach (var vma in _mm.Vmas)
        {
            if (vma.File != file) continue;
            ulong from = Math.Max(start, vma.PgOff);
            ulong to = Math.Min(Math.Min(end, vma.PgOff + vma.Length / page), inode.NrPages);
            if (from >= to) continue;
            foreach (var (segmentStart, segmentEnd, attributes) in inode.Attributes.Segments(from, to))
            {
                bool shared = (attributes & KvmSharp.Abi.KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0;
                nint address = vma.Start + (nint)((segmentStart - vma.PgOff) * page);
                _ = HostMemory.Mprotect(address, (segmentEnd - segmentStart) * page, shared ? vma.Prot : LinuxConstants.PROT_NONE);
            }
        }
    }
}
