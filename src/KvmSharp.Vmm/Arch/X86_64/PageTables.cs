// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// Identity page tables in guest memory: virtual = physical for all of guest memory, nothing beyond it. The first
/// 2 MiB use 4 KiB pages so the null page and the stack guard can be left out; the rest uses 2 MiB pages.
/// </summary>
public static class PageTables
{
    /// <summary>Page-table entry bit 0 (P): the entry maps something.</summary>
    public const ulong Present = 1UL << 0;
    /// <summary>Page-table entry bit 1 (R/W): writes are allowed.</summary>
    public const ulong Writable = 1UL << 1;
    /// <summary>
    /// Page-directory entry bit 7 (PS): the entry maps a 2 MiB page instead of pointing to a page table.
    /// </summary>
    public const ulong LargePage = 1UL << 7;

    private const int Entries = 512;

    /// <summary>
    /// Writes the identity tables at <see cref="Layout.Pml4"/>..<see cref="Layout.Pt"/> for <paramref name="memory"/>'s
    /// size: 4 KiB pages below 2 MiB without the guard pages, 2 MiB pages above, nothing past the end of memory.
    /// Entries not written are assumed zero (fresh or discarded memory).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void Write(GuestMemory memory) => Write(memory, cbit: 0);

    /// <summary>
    /// <see cref="Write(GuestMemory)"/> for an SEV-SNP guest: <paramref name="cbit"/> (the C-bit mask, 1 &lt;&lt; CPUID
    /// 0x8000001F EBX[5:0]; 0 for other guests) is set in every entry except the leaf entries of the pages the host
    /// shares with the guest (the GHCB, the call region and call data, the exception block:
    /// Confidential/SealedGuest.SnpSharedRanges), so that the guest's accesses to those are shared and every other access
    /// is private (AMD APM Vol. 2, 15.34.5; svm.c npf_interception turns the #NPF's encryption bit into
    /// PFERR_PRIVATE_ACCESS). With a C-bit the guard pages are an SNP micro-VM's (<see cref="Layout.IsSnpGuardPage"/>):
    /// <see cref="Layout.Ghcb"/> is mapped, <see cref="Layout.SnpStackGuard"/> is not.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void Write(GuestMemory memory, ulong cbit) =>
        Write(memory, privateBits: cbit, sharedBits: 0, sealedGuest: cbit != 0 ? VmType.Snp : null);

    /// <summary>
    /// <see cref="Write(GuestMemory)"/> for a TD: the leaf entries of the pages the host shares with the guest
    /// (Confidential/SealedGuest.SharedRanges) carry <paramref name="sharedBit"/> (GPA bit 47 for GPAW 48: the TD's
    /// accesses through them are shared, KVM strips the bit — kvm_gfn_direct_bits — before the memslot lookup), every
    /// other entry has it clear and so is private (Intel TDX Module Base Architecture spec, "GPA Space").
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void WriteTd(GuestMemory memory, ulong sharedBit) =>
        Write(memory, privateBits: 0, sharedBits: sharedBit, sealedGuest: VmType.Tdx);

    private static void Write(GuestMemory memory, ulong privateBits, ulong sharedBits, VmType? sealedGuest)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ulong size = memory.Size;
        ulong cbit = privateBits;
        memory.Write(Layout.Pml4, Layout.Pdpt | cbit | Present | Writable);
        memory.Write(Layout.Pdpt, Layout.Pd | cbit | Present | Writable);
        memory.Write(Layout.Pd, Layout.Pt | cbit | Present | Writable);

        // Written in place through spans over the mapping: no managed copy of the tables.
        Span<ulong> pt = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(Layout.Pt, (int)Layout.PageSize));
        ulong firstTwoMiB = Math.Min(size, Layout.LargePageSize);
        for (int page = 0; page < Entries; page++)
        {
            ulong gpa = (ulong)page * Layout.PageSize;
            ulong c = sealedGuest is not VmType type ? 0 : Confidential.SealedGuest.IsShared(gpa, type) ? sharedBits : privateBits;
            bool guard = sealedGuest == VmType.Snp ? Layout.IsSnpGuardPage(gpa) : Layout.IsGuardPage(gpa);
            pt[page] = gpa >= firstTwoMiB || guard ? 0 : gpa | c | Present | Writable;
        }
        Span<ulong> pd = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(Layout.Pd, (int)Layout.PageSize));
        for (int i = 1; i < Entries; i++)
        {
            ulong gpa = (ulong)i * Layout.LargePageSize;
            pd[i] = gpa < size ? gpa | cbit | Present | Writable | LargePage : 0;
        }
    }
}
