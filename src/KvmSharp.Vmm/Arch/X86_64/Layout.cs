// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The guest-physical memory map of a micro-VM (Firecracker's arch/x86_64/layout.rs in spirit). All guest memory is
/// one block bound at GPA 0 (a guest_memfd, or host memory: <see cref="GuestMemoryBacking"/>); the guest runs with
/// identity-mapped page tables, so a guest-virtual address equals its guest-physical address and its offset in that
/// block. GUEST-ABI.md repeats this map for guest authors.
/// <code>
/// 0x000000 +-----------------------------+ not mapped: a null dereference faults (#PF, ends as Exception)
/// 0x001000 | GDT (+ TSS descriptor)      |
/// 0x002000 | PML4, PDPT, PD, PT (4 pages)|
/// 0x006000 | return trampoline           | a call's return address: stores RAX as the result, OUT to the return port
///          |   SNP: 0x6200 page-state    |   an SEV-SNP micro-VM's runtime; guest code calls 0x6200 to convert pages
/// 0x007000 | stack guard (not mapped)    | a stack overflow faults instead of running into the page tables
///          |   SNP: the GHCB (shared)    |   an SEV-SNP micro-VM's GHCB page; its stack guard is 0x8000 instead
/// 0x008000 | stack (128 KiB), grows down |   SNP: stack guard (not mapped), stack 0x9000-0x28000 (124 KiB)
/// 0x028000 | call region header (4 KiB)  | arguments, result, input/output descriptors of the current call
/// 0x029000 | call data (844 KiB)         | input bytes of a call; output bytes a guest hands back
/// 0x0FC000 | exception handlers          | host code: one stub per vector 0-31, the common handler
/// 0x0FD000 | IDT (32 gates), TSS         | the TSS (at 0x0FD200) holds IST1 = ExceptionStackTop; SNP: 0x0FD800 #VC busy byte
/// 0x0FE000 | exception block             | what the common handler reports (GuestAbi.ExceptionBlock)
/// 0x0FF000 | exception stack (4 KiB)     | handlers run here (IST1), whatever the guest did to its RSP
/// 0x100000 | image (ELF PT_LOAD / flat)  | up to the end of guest memory
///   ...    +-----------------------------+ MemorySize
/// </code>
/// </summary>
public static class Layout
{
    /// <summary>The 4 KiB page of the layout and of the page tables' smallest mappings.</summary>
    public const ulong PageSize = 0x1000;

    /// <summary>Page tables map the first 2 MiB with 4 KiB pages (so guard pages can be left out), the rest with 2 MiB pages.</summary>
    public const ulong LargePageSize = 0x20_0000;

    /// <summary>Page 0 is left out of the page tables: a null pointer dereference is a page fault.</summary>
    public const ulong NullGuard = 0x0;

    /// <summary>The GDT: null, 64-bit code (selector 0x08), data (selector 0x10), the 64-bit TSS (selector 0x18, 16 bytes).</summary>
    public const ulong Gdt = 0x1000;

    /// <summary>Identity page tables: PML4 → PDPT → PD → one PT for the first 2 MiB.</summary>
    public const ulong Pml4 = 0x2000;
    /// <summary>GPA of the page-directory-pointer table (entry 0 points to <see cref="Pd"/>).</summary>
    public const ulong Pdpt = 0x3000;
    /// <summary>GPA of the page directory: entry 0 points to <see cref="Pt"/>, the others map 2 MiB pages.</summary>
    public const ulong Pd = 0x4000;
    /// <summary>GPA of the page table that maps the first 2 MiB with 4 KiB pages (guard pages left out).</summary>
    public const ulong Pt = 0x5000;

    /// <summary>The return trampoline: the return address the host pushes before it enters a guest function.</summary>
    public const ulong Trampoline = 0x6000;

    /// <summary>
    /// An SEV-SNP micro-VM's page-state change (<see cref="SnpPageState"/>), in the private trampoline page: guest code
    /// makes a range of its pages shared or private with a <c>call</c> here (SysV: RDI = address, RSI = 4 KiB pages, RDX =
    /// the attributes of KVM_HC_MAP_GPA_RANGE; RAX = 0 or its -KVM_E* answer). Only in an SNP micro-VM
    /// (CallRegion.FeatureSnp); elsewhere this address is not this code.
    /// </summary>
    public const ulong SnpMapGpaRange = Trampoline + 0x200;

    /// <summary>Not mapped, just below the stack: overflowing the stack faults.</summary>
    public const ulong StackGuard = 0x7000;

    /// <summary>
    /// The GHCB page of an SEV-SNP micro-VM (AMD GHCB specification 56421; <see cref="SnpRuntime"/>): the page its #VC
    /// handler fills for a VMGEXIT, registered at boot (GHCB MSR protocol REG_GPA_REQ, then MSR 0xC001_0130 = this GPA).
    /// Shared: its page-table entry has no C-bit and the VMM never converts it to private (the hypervisor reads and
    /// writes it). In every other micro-VM this page is <see cref="StackGuard"/>; an SNP micro-VM moves its stack guard
    /// one page up, to <see cref="SnpStackGuard"/>, so that the GHCB lies below the guard and a stack overflow still
    /// faults before it reaches the shared page.
    /// </summary>
    public const ulong Ghcb = 0x7000;

    /// <summary>
    /// The stack guard of an SEV-SNP micro-VM (not mapped): its stack is [<see cref="SnpStackBottom"/>,
    /// <see cref="StackTop"/>), 124 KiB, because <see cref="StackGuard"/>'s page is its <see cref="Ghcb"/>.
    /// </summary>
    public const ulong SnpStackGuard = 0x8000;

    /// <summary>Lowest GPA of an SEV-SNP micro-VM's stack, right above <see cref="SnpStackGuard"/>.</summary>
    public const ulong SnpStackBottom = 0x9000;

    /// <summary>
    /// Lowest GPA of the guest stack [StackBottom, <see cref="StackTop"/>), 128 KiB, right above
    /// <see cref="StackGuard"/>.
    /// </summary>
    public const ulong StackBottom = 0x8000;

    /// <summary>Initial RSP is StackTop - 8 (the return address slot), so RSP+8 is 16-byte aligned as the SysV ABI wants.</summary>
    public const ulong StackTop = 0x28000;

    /// <summary>The call region header (see <see cref="GuestAbi.CallRegion"/> for its fields).</summary>
    public const ulong CallRegion = 0x28000;

    /// <summary>Input and output bytes of a call live in [CallData, CallDataEnd).</summary>
    public const ulong CallData = 0x29000;
    /// <summary>
    /// One past the last byte of the call data area (844 KiB from <see cref="CallData"/>): the largest input a call
    /// takes.
    /// </summary>
    public const ulong CallDataEnd = 0xF_C000;

    /// <summary>The exception handlers (host code, like the trampoline): 32 stubs and the common handler.</summary>
    public const ulong ExceptionHandlers = 0xF_C000;

    /// <summary>The IDT: 32 64-bit interrupt gates (vectors 0-31), 512 bytes.</summary>
    public const ulong Idt = 0xF_D000;

    /// <summary>The 64-bit TSS, in the IDT's page: only IST1 is used (the I/O bitmap offset points past its limit).</summary>
    public const ulong Tss = 0xF_D200;

    /// <summary>Where the common handler stores what it saw (see <see cref="GuestAbi.ExceptionBlock"/>).</summary>
    public const ulong ExceptionBlock = 0xF_E000;

    /// <summary>The dedicated exception stack [ExceptionStack, ExceptionStackTop): IST1, so a guest that overflowed its
    /// own stack onto the guard page still gets its #PF reported.</summary>
    public const ulong ExceptionStack = 0xF_F000;

    /// <summary>One past the exception stack's last byte: the IST1 stack pointer of <see cref="Tss"/>.</summary>
    public const ulong ExceptionStackTop = 0x10_0000;

    /// <summary>Where images go: ELF PT_LOAD segments must lie in [ImageBase, MemorySize); a flat image is loaded here.</summary>
    public const ulong ImageBase = 0x10_0000;

    /// <summary>
    /// The smallest guest memory, 2 MiB: the fixed layout plus room for an image above <see cref="ImageBase"/>.
    /// </summary>
    public const ulong MinMemorySize = 0x20_0000;

    /// <summary>One PD of 2 MiB pages maps 1 GiB, which is all the page tables above cover.</summary>
    public const ulong MaxMemorySize = 0x4000_0000;

    /// <summary>The guest-physical address of the only memory slot (slot 0).</summary>
    public const ulong MemoryBase = 0x0;

    /// <summary>True when <paramref name="gpa"/>'s page is deliberately left out of the page tables.</summary>
    public static bool IsGuardPage(ulong gpa) => gpa / PageSize == NullGuard / PageSize || gpa / PageSize == StackGuard / PageSize;

    /// <summary>
    /// <see cref="IsGuardPage"/> for an SEV-SNP micro-VM: the null page and <see cref="SnpStackGuard"/> (its
    /// <see cref="StackGuard"/> page is mapped: it is the <see cref="Ghcb"/>).
    /// </summary>
    public static bool IsSnpGuardPage(ulong gpa) => gpa / PageSize == NullGuard / PageSize || gpa / PageSize == SnpStackGuard / PageSize;

    /// <summary>Null when <paramref name="memorySize"/> is usable, else why not.</summary>
    public static string? CheckMemorySize(ulong memorySize)
    {
        if (memorySize < MinMemorySize || memorySize > MaxMemorySize)
            return $"memory size 0x{memorySize:X} is outside [0x{MinMemorySize:X} (2 MiB), 0x{MaxMemorySize:X} (1 GiB)]";
        if (memorySize % LargePageSize != 0)
            return $"memory size 0x{memorySize:X} is not a multiple of 2 MiB (memory above 2 MiB is mapped with 2 MiB pages)";
        return null;
    }
}
