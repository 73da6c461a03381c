// SPDX-License-Identifier: MIT
using X86Layout = KvmSharp.Vmm.Arch.X86_64.Layout;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// The guest-physical memory map of an arm64 micro-VM. The MMU stays off (SCTLR_EL1.M = 0, KVM's reset value), so a
/// guest address is its guest-physical address, with no guard pages: a null or stack-overflow access reaches memory
/// instead of faulting (the x86 layout's guard pages need page tables). The call region, call data, host-call block,
/// exception block and image sit where the x86-64 layout has them (<see cref="X86_64.Layout"/>), so the host side of
/// the ABI is shared; the x86 pages below 0x6000 (GDT, page tables) are unused.
/// <code>
/// 0x006000 | call trampoline (A64)       | loads x0..x5 from the call region, BLR entry, stores x0 as the result, reports the return
/// 0x008000 | stack (128 KiB), grows down | SP_EL1 starts at 0x28000
/// 0x028000 | call region header (4 KiB)  | as on x86-64 (+ the host-call block at 0x28100)
/// 0x029000 | call data (844 KiB)         |
/// 0x0FC000 | vector table (VBAR_EL1)     | 16 entries of 0x80 bytes, then the common handler at 0x0FC800
/// 0x0FE000 | exception block             | what the common handler reports (GuestAbi.ExceptionBlock)
/// 0x100000 | image (flat)                | up to the end of guest memory
///   ...    +-----------------------------+ MemorySize (at most 1 GiB)
/// 0x80000000 + port: the MMIO window      | "port" p of GUEST-ABI.md is the MMIO address PortWindow + p
/// </code>
/// </summary>
public static class Layout
{
    /// <summary>The call trampoline: where every call starts (PC), instead of a return address pushed on x86-64.</summary>
    public const ulong Trampoline = X86Layout.Trampoline;

    /// <summary>Initial SP_EL1 (16-byte aligned, as AAPCS64 wants); the stack grows down to <see cref="StackBottom"/>.</summary>
    public const ulong StackTop = X86Layout.StackTop;

    /// <summary>Lowest address of the stack (nothing stops a deeper stack: the MMU is off).</summary>
    public const ulong StackBottom = X86Layout.StackBottom;

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
