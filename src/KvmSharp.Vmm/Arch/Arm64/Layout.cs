// SPDX-License-Identifier: MIT
using X86Layout = KvmSharp.Vmm.Arch.X86_64.Layout;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// The memory map of an arm64 micro-VM. The guest runs with the stage-1 MMU on (SCTLR_EL1.M, C, I) and identity
/// translation tables (<see cref="Arm64PageTables"/>, TTBR0_EL1 only, 4 KiB granule, 32-bit VA), so a guest-virtual
/// address equals its guest-physical address: guest RAM is Normal Write-Back memory (unaligned accesses are fine), the
/// port window is Device-nGnRE, and the null page and a stack guard page are left unmapped, so a null dereference or a
/// stack overflow is a data abort (translation fault) that ends the call as an exception, as on x86-64. The call region,
/// call data, host-call block, exception block and image sit where the x86-64 layout has them
/// (<see cref="X86_64.Layout"/>), so the host side of the ABI is shared; the x86 GDT and page-table pages hold the
/// translation tables here, and the x86 IDT and exception-stack pages are unused.
/// <code>
/// 0x000000 | null page (not mapped)      | a null dereference is a data abort (translation fault, level 3)
/// 0x001000 | L1 table (TTBR0_EL1)        | 4 entries of 1 GiB: [0] RAM, [2] the port window; the 5 table pages are read-only, execute-never
/// 0x002000 | L2 table of RAM             | [0] → the L3 table below, then 2 MiB blocks up to MemorySize
/// 0x003000 | L3 table of the first 2 MiB | 4 KiB pages, the two guard pages left out
/// 0x004000 | L2 table of the port window | [0] → the L3 table below
/// 0x005000 | L3 table of the port window | 16 Device-nGnRE pages (64 KiB), execute-never
/// 0x006000 | call trampoline (A64)       | read-only: loads x0..x5 from the call region, BLR entry, stores x0 as the result, reports the return
/// 0x007000 | stack guard (not mapped)    | a stack overflow is a data abort (translation fault)
/// 0x008000 | stack (128 KiB), grows down | SP_EL1 starts at 0x28000
/// 0x028000 | call region header (4 KiB)  | as on x86-64 (+ the host-call block at 0x28100)
/// 0x029000 | call data (844 KiB)         |
/// 0x0FC000 | vector table (VBAR_EL1)     | read-only: 16 entries of 0x80 bytes, then the common handler at 0x0FC800
/// 0x0FD000 | unused (x86-64's IDT)       |
/// 0x0FE000 | exception block             | what the common handler reports (GuestAbi.ExceptionBlock)
/// 0x0FF000 | unused (x86-64's IST stack) |
/// 0x100000 | image (flat or ELF)         | up to the end of guest memory
///   ...    +-----------------------------+ MemorySize (at most 1 GiB; above it: not mapped, a translation fault)
/// 0x80000000 + port: the MMIO window      | "port" p of GUEST-ABI.md is the MMIO address PortWindow + p
/// </code>
/// </summary>
public static class Layout
{
    /// <summary>The call trampoline: where every call starts (PC), instead of a return address pushed on x86-64.</summary>
    public const ulong Trampoline = X86Layout.Trampoline;

    /// <summary>Initial SP_EL1 (16-byte aligned, as AAPCS64 wants); the stack grows down to <see cref="StackBottom"/>.</summary>
    public const ulong StackTop = X86Layout.StackTop;

    /// <summary>Lowest address of the stack: the page below it is <see cref="StackGuard"/>.</summary>
    public const ulong StackBottom = X86Layout.StackBottom;

    /// <summary>Not mapped, just below the stack: a stack overflow is a data abort (translation fault), not a write over the trampoline.</summary>
    public const ulong StackGuard = X86Layout.StackGuard;

    /// <summary>Not mapped: a null dereference (any access to [0, 0x1000)) is a data abort (translation fault).</summary>
    public const ulong NullGuard = 0x0;

    /// <summary>
    /// The translation tables' first page, the level-1 table TTBR0_EL1 points to; the tables fill the five pages up to
    /// the trampoline (<see cref="Arm64PageTables"/>), mapped read-only and execute-never.
    /// </summary>
    public const ulong TranslationTables = 0x1000;

    /// <summary>The level-2 table of RAM (1 GiB: entry 0 → <see cref="RamL3Table"/>, then 2 MiB blocks).</summary>
    internal const ulong RamL2Table = 0x2000;

    /// <summary>The level-3 table of the first 2 MiB of RAM (4 KiB pages: the guard pages are left out).</summary>
    internal const ulong RamL3Table = 0x3000;

    /// <summary>The level-2 table of the 1 GiB at <see cref="PortWindow"/> (entry 0 → <see cref="PortL3Table"/>).</summary>
    internal const ulong PortL2Table = 0x4000;

    /// <summary>The level-3 table that maps the port window's 16 pages as Device-nGnRE.</summary>
    internal const ulong PortL3Table = 0x5000;

    /// <summary>One past the last translation-table page.</summary>
    internal const ulong TranslationTablesEnd = 0x6000;

    /// <summary>
    /// MAIR_EL1 from the vCPU's initialisation (and every Reset): Attr0 = 0xFF (Normal, Inner/Outer Write-Back
    /// non-transient, read/write-allocate) for RAM, Attr1 = 0x04 (Device-nGnRE) for the port window (Arm ARM
    /// MAIR_EL1).
    /// </summary>
    public const ulong EntryMair = 0x04FF;

    /// <summary>
    /// TCR_EL1 from the vCPU's initialisation (and every Reset), Arm ARM TCR_EL1: T0SZ = 32 (a 32-bit VA
    /// space: the walk starts at level 1), IRGN0 = ORGN0 = 0b01 (Write-Back read/write-allocate walks), SH0 = 0b11
    /// (Inner Shareable), TG0 = 0b00 (4 KiB); T1SZ = 32, EPD1 = 1 (a TTBR1_EL1 address is a translation fault, no
    /// walk), TG1 = 0b10 (4 KiB); IPS = 0b000 (32-bit output: RAM and the port window are below 4 GiB).
    /// </summary>
    public const ulong EntryTcr = 0x80A0_3520;

    /// <summary>
    /// The SCTLR_EL1 bits the VMM sets on KVM's reset value (read with KVM_GET_ONE_REG, so its RES1 bits stay): M (bit 0,
    /// the stage-1 MMU), C (bit 2, data caches) and I (bit 12, instruction caches). A (bit 1, alignment checks) is
    /// cleared: unaligned accesses to Normal memory are allowed (Arm ARM SCTLR_EL1).
    /// </summary>
    public const ulong EntrySctlrBits = 0x1005;

    /// <summary>The VMM's vector table (VBAR_EL1; 2 KiB aligned as the architecture requires).</summary>
    public const ulong Vectors = X86Layout.ExceptionHandlers;

    /// <summary>The size of one vector-table entry (Arm ARM D1.3.1: 16 entries, 0x80 bytes apart).</summary>
    public const ulong VectorEntrySize = 0x80;

    /// <summary>The common handler every vector branches to, right after the 16 entries.</summary>
    public const ulong CommonHandler = Vectors + 16 * VectorEntrySize;

    /// <summary>
    /// The MMIO window that stands in for port I/O: the "port" p of GUEST-ABI.md (COM1 0x3F8, exit 0x500 …) is the
    /// guest-physical address PortWindow + p. Above the largest guest memory (1 GiB), so no memory slot covers it
    /// and every access is a KVM_EXIT_MMIO.
    /// </summary>
    public const ulong PortWindow = 0x8000_0000;

    /// <summary>The window's size: the 64 Ki ports of x86-64.</summary>
    public const ulong PortWindowLength = 0x1_0000;

    /// <summary>The MMIO address of port <paramref name="port"/>.</summary>
    public static ulong Port(ushort port) => PortWindow + port;

    /// <summary>PSTATE at every call: EL1h (M = 0b0101) with D, A, I and F masked.</summary>
    public const ulong EntryPstate = 0x3C5;

    /// <summary>
    /// CPACR_EL1 from the vCPU's initialisation (and every Reset): FPEN (bits 21:20) = 0b11, FP/SIMD not trapped at
    /// EL1, so compiled code may use the FP/SIMD registers (Arm ARM D19.2.30).
    /// </summary>
    public const ulong EntryCpacr = 0x30_0000;
}
