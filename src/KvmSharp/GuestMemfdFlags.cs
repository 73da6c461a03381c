// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// guest_memfd creation flags (<c>kvm_create_guest_memfd.flags</c>), 64 bits wide. Bits this enum does not name
/// stay visible in the value (e.g. <c>(GuestMemfdFlags)0x10</c>) so a newer kernel's flags are never dropped.
/// </summary>
[Flags]
#pragma warning disable CA1711 // "Flags" is the kernel's own name for this set
public enum GuestMemfdFlags : ulong
#pragma warning restore CA1711
{
    /// <summary>No flags: a private-only file the host cannot mmap.</summary>
    None = 0,
    /// <summary>GUEST_MEMFD_FLAG_MMAP: the host may mmap the file (MAP_SHARED only).</summary>
    Mmap = KvmConstants.GUEST_MEMFD_FLAG_MMAP,
    /// <summary>GUEST_MEMFD_FLAG_INIT_SHARED: pages start shared, so the host may fault them in.</summary>
    InitShared = KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED,
    /// <summary>
    /// GUEST_MEMFD_FLAG_NO_DIRECT_MAP — PROPOSAL ("[PATCH v12 00/16] Direct Map Removal Support for guest_memfd",
    /// unmerged; 1 &lt;&lt; 2 since v8): the file's memory leaves the kernel's direct map. Listed in
    /// KVM_CAP_GUEST_MEMFD_FLAGS for VMs whose arch supports it (x86: not TDX or SNP; arm64: with FEAT_S2FWB), needs no
    /// other flag; GUP on the file's mappings fails (O_DIRECT, process_vm_readv, MADV_POPULATE, plain memslots over
    /// the mapping), ordinary loads and stores through <see cref="GuestMapping"/> work.
    /// </summary>
    NoDirectMap = 1UL << 2,
    /// <summary>
    /// GUEST_MEMFD_FLAG_WRITE — PROPOSAL ("[PATCH v7 1/2] KVM: guest_memfd: add generic population via write", unmerged):
    /// write(2)/pwrite(2) of whole, page-aligned pages fill the file (<see cref="GuestMemfd.Write"/>), faster than copying
    /// through a mapping. Listed where INIT_SHARED is. The bit is 1 &lt;&lt; 3: v7 itself says 1 &lt;&lt; 2, which
    /// <see cref="NoDirectMap"/> (v12) also claims; Firecracker's secret-hiding kernel, the one tree carrying both
    /// series, numbers NO_DIRECT_MAP 1 &lt;&lt; 2 and WRITE 1 &lt;&lt; 3, and so does this SDK until upstream decides.
    /// </summary>
    Write = 1UL << 3,
    /// <summary>
    /// Bits 63:58 — PROPOSAL ("[RFC PATCH v2 00/51] 1G page support for guest_memfd", GUESTMEM_HUGETLB_FLAG_MASK &lt;&lt;
    /// GUESTMEM_HUGETLB_FLAG_SHIFT): log2 of the HugeTLB page size, valid with GUEST_MEMFD_FLAG_HUGETLB (bit 2 in that
    /// series, the bit <see cref="NoDirectMap"/> has in another). Reported through KVM_CAP_GUEST_MEMFD_FLAGS_HI. Use
    /// <see cref="Vm.CreateHugetlbGuestMemfd"/>.
    /// </summary>
    HugetlbSizeBits = GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_SIZE_BITS,
}

/// <summary>Formatting of flag sets the way the kernel spells them (MMAP|INIT_SHARED|0x10).</summary>
public static class GuestMemfdFlagsExtensions
{
    /// <summary>
    /// The flags as the kernel's names without the GUEST_MEMFD_FLAG_ prefix, joined by '|' (e.g. "MMAP|INIT_SHARED");
    /// unnamed bits are appended as hex, and no flags give "0".
    /// </summary>
    public static string ToKernelString(this GuestMemfdFlags flags) => flags.ToKernelString(GuestMemfdHugetlbEncoding.None);

    /// <summary>
    /// <see cref="ToKernelString(GuestMemfdFlags)"/> for a kernel whose bit 2 is GUEST_MEMFD_FLAG_HUGETLB (a guest_memfd
    /// HugeTLB proposal, <paramref name="hugetlb"/> not None) rather than NO_DIRECT_MAP.
    /// </summary>
    public static string ToKernelString(this GuestMemfdFlags flags, GuestMemfdHugetlbEncoding hugetlb)
    {
        if (flags == GuestMemfdFlags.None) return "0";
        var parts = new List<string>();
        ulong rest = (ulong)flags;
        void Take(GuestMemfdFlags f, string name)
        {
            if ((rest & (ulong)f) != 0) { parts.Add(name); rest &= ~(ulong)f; }
        }
        Take(GuestMemfdFlags.Mmap, "MMAP");
        Take(GuestMemfdFlags.InitShared, "INIT_SHARED");
        Take(GuestMemfdFlags.NoDirectMap, hugetlb == GuestMemfdHugetlbEncoding.None ? "NO_DIRECT_MAP" : "HUGETLB");
        Take(GuestMemfdFlags.Write, "WRITE");
        if ((rest & (ulong)GuestMemfdFlags.HugetlbSizeBits) == (ulong)GuestMemfdFlags.HugetlbSizeBits)
            Take(GuestMemfdFlags.HugetlbSizeBits, "HUGETLB_SIZE(63:58)");
        else if ((rest & (ulong)GuestMemfdFlags.HugetlbSizeBits) is ulong log and not 0)
        {
            parts.Add($"HUGETLB_{1UL << (int)(log >> GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_SHIFT) >> 20}MB");
            rest &= ~(ulong)GuestMemfdFlags.HugetlbSizeBits;
        }
        if (rest != 0) parts.Add($"0x{rest:X}");
        return string.Join('|', parts);
    }
}
