// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Mm;

/// <summary>
/// A <c>vm_area_struct</c> of an emulated file mapping: [Start, Start+Length) of this process shows the file from
/// page <see cref="PgOff"/>. It holds a reference on its file (get_file in mmap_region), so a mapped guest_memfd is
/// not released when its fd is closed.
/// </summary>
internal sealed class Vma
{
    public Vma(KernelFile file, nint start, ulong length, ulong pgoff, int prot, int flags)
    {
        File = file;
        Start = start;
        Length = length;
        PgOff = pgoff;
        Prot = prot;
        Flags = flags;
    }

    public KernelFile File { get; }

    public nint Start { get; }

    public ulong Length { get; }

    public nint End => Start + (nint)Length;

    public ulong PgOff { get; }

    public int Prot { get; }

    public int Flags { get; }

    /// <summary>
    /// How many times unmap_mapping_pages() zapped this VMA's page table entries (a conversion to private). The
    /// host memory stays mapped in the emulator; this count plus the fault rules of the file are the kernel-side
    /// record that the next host access must fault again (and would SIGBUS on a private page).
    /// </summary>
    public int ZapCount { get; set; }

    public bool Contains(nint address) => address >= Start && address < End;
}
