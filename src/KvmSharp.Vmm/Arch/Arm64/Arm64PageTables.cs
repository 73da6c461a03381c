// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// The identity stage-1 translation tables of an arm64 micro-VM (<see cref="Layout"/>), written by the host into guest
/// memory at set-up and at every reset: VMSAv8-64 long descriptors, 4 KiB granule, TTBR0_EL1 with T0SZ = 32 (the walk
/// starts at level 1; Arm ARM D8.2 "Translation process", D8.3 "Translation table descriptor formats"). RAM is Normal
/// Write-Back Inner Shareable (MAIR index 0), mapped with 4 KiB pages in its first 2 MiB (so the null page and the
/// stack guard can be left out; the tables, the trampoline and the vector table read-only) and 2 MiB blocks above;
/// the port window is 16 Device-nGnRE pages (MAIR index 1). Nothing else is mapped: any other address is a
/// translation fault. Every descriptor has AF = 1 (no Access flag faults: KVM's guests have no hardware AF update
/// unless TCR_EL1.HA) and AP[1] = 0 (EL1 only). The pages (or 2 MiB blocks) of a BTI image's segments can be written
/// guarded (GP, bit 50: FEAT_BTI's Branch Target exception for an indirect branch to anything but a landing pad; Arm
/// ARM D8.3 "Stage 1 Block and Page descriptor attributes", ignored by a CPU without FEAT_BTI).
/// </summary>
public static class Arm64PageTables
{
    private const ulong PageSize = 0x1000, BlockSize = 0x20_0000;
    private const int Entries = 512;

    // Descriptor bits (Arm ARM D8.3): [1:0] 0b11 table (levels 0-2) or page (level 3), 0b01 block (levels 1-2);
    // AttrIndx [4:2], AP[2] (bit 7: read-only), SH [9:8] (0b11 Inner Shareable), AF (bit 10), PXN (53), UXN (54).
    private const ulong TableOrPage = 0b11, Block = 0b01, ReadOnly = 1UL << 7, InnerShareable = 3UL << 8,
        AccessFlag = 1UL << 10, Guarded = 1UL << 50, Pxn = 1UL << 53, Uxn = 1UL << 54;

    /// <summary>The MAIR_EL1 index of RAM's attribute (0xFF in <see cref="Layout.EntryMair"/>).</summary>
    private const ulong NormalMemory = 0UL << 2;

    /// <summary>The MAIR_EL1 index of the port window's attribute (0x04, Device-nGnRE, in <see cref="Layout.EntryMair"/>).</summary>
    private const ulong DeviceMemory = 1UL << 2;

    private const ulong Ram = NormalMemory | InnerShareable | AccessFlag;
    private const ulong Device = DeviceMemory | AccessFlag | Pxn | Uxn;

    /// <summary>
    /// The level-3 descriptor of the low page at <paramref name="gpa"/> (below 2 MiB): 0 (invalid) for a guard page,
    /// read-only and execute-never for a table page, read-only for the trampoline and the vector table's page.
    /// </summary>
    public static ulong LowPageDescriptor(ulong gpa)
    {
        if (IsGuardPage(gpa)) return 0;
        ulong page = gpa & ~(PageSize - 1);
        ulong d = page | Ram | TableOrPage;
        if (page >= Layout.TranslationTables && page < Layout.TranslationTablesEnd) d |= ReadOnly | Pxn | Uxn;
        else if (page == Layout.Trampoline || page == (Layout.Vectors & ~(PageSize - 1))) d |= ReadOnly;
        return d;
    }

    /// <summary>True when <paramref name="gpa"/>'s page is left out of the tables: the null page and the stack guard.</summary>
    public static bool IsGuardPage(ulong gpa) =>
        gpa / PageSize == Layout.NullGuard / PageSize || gpa / PageSize == Layout.StackGuard / PageSize;

    /// <summary>
    /// Writes the five table pages into <paramref name="memory"/>, mapping its whole size (a multiple of 2 MiB, at most
    /// 1 GiB); every RAM page or block that holds part of a segment of <paramref name="guarded"/> is guarded (GP).
    /// </summary>
    public static void Write(GuestMemory memory, IReadOnlyList<Loader.ImageSegment>? guarded = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        byte[] tables = new byte[Layout.TranslationTablesEnd - Layout.TranslationTables];
        Span<byte> span = tables;

        // Level 1 (4 entries with T0SZ = 32): [0] the first GiB (RAM), [2] the GiB of the port window.
        Set(span, Layout.TranslationTables, 0, Layout.RamL2Table | TableOrPage);
        Set(span, Layout.TranslationTables, (int)(Layout.PortWindow >> 30), Layout.PortL2Table | TableOrPage);

        // Level 2 of RAM: [0] → the level-3 table of the first 2 MiB, then 2 MiB blocks up to the memory's end.
        Set(span, Layout.RamL2Table, 0, Layout.RamL3Table | TableOrPage);
        for (ulong block = BlockSize; block < memory.Size && block < 1UL << 30; block += BlockSize)
            Set(span, Layout.RamL2Table, (int)(block / BlockSize), block | Ram | Block | GuardIf(guarded, block, BlockSize));

        // Level 3 of the first 2 MiB: 4 KiB pages, the guard pages invalid.
        for (int i = 0; i < Entries; i++)
        {
            ulong page = (ulong)i * PageSize, d = LowPageDescriptor(page);
            Set(span, Layout.RamL3Table, i, d == 0 ? 0 : d | GuardIf(guarded, page, PageSize));
        }

        // The port window: level 2 [index of its 2 MiB] → level 3, whose first 16 entries are Device pages.
        Set(span, Layout.PortL2Table, (int)((Layout.PortWindow >> 21) & (Entries - 1)), Layout.PortL3Table | TableOrPage);
        for (ulong offset = 0; offset < Layout.PortWindowLength; offset += PageSize)
            Set(span, Layout.PortL3Table, (int)(((Layout.PortWindow + offset) >> 12) & (Entries - 1)), (Layout.PortWindow + offset) | Device | TableOrPage);

        memory.Write(Layout.TranslationTables, tables);
    }

    /// <summary>GP when a segment of <paramref name="guarded"/> overlaps [<paramref name="start"/>, + <paramref name="size"/>).</summary>
    private static ulong GuardIf(IReadOnlyList<Loader.ImageSegment>? guarded, ulong start, ulong size) =>
        guarded is not null && guarded.Any(s => s.Address < start + size && start < s.End) ? Guarded : 0;

    private static void Set(Span<byte> tables, ulong table, int index, ulong descriptor) =>
        BinaryPrimitives.WriteUInt64LittleEndian(tables[(int)(table - Layout.TranslationTables + (ulong)index * 8)..], descriptor);
}
