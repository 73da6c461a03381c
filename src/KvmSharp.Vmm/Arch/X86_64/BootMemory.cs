// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// Writes everything the host puts in guest memory before the image: GDT, page tables, trampoline, call header, and the
/// exception handling (handlers, IDT, TSS).
/// </summary>
public static class BootMemory
{
    /// <summary>
    /// Writes the host's part of guest memory at the fixed <see cref="Layout"/> addresses: GDT, page tables, return
    /// trampoline, exception handlers, IDT, TSS, and the call region's magic and ABI version. The image is loaded
    /// separately.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    /// <exception cref="GuestMemoryFaultException">A page below <see cref="Layout.ImageBase"/> is private.</exception>
    public static void Write(GuestMemory memory) => Write(memory, cbit: 0);

    /// <summary>
    /// <see cref="Write(GuestMemory)"/> for an SEV-SNP guest when <paramref name="cbit"/>, the C-bit mask, is not 0
    /// (0 for other guests): page tables with the C-bit and the GHCB page shared
    /// (<see cref="PageTables.Write(GuestMemory, ulong)"/>), the trampoline page holds the SNP dispatch loop
    /// (<see cref="SnpDispatcher"/>) instead of the plain <see cref="Trampoline"/> and the SNP runtime
    /// (<see cref="SnpRuntime"/>: the GHCB's registration, the #VC handler), and the IDT's vector 29 leads to the #VC
    /// handler.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    /// <exception cref="GuestMemoryFaultException">A page below <see cref="Layout.ImageBase"/> is private.</exception>
    public static void Write(GuestMemory memory, ulong cbit)
    {
        ArgumentNullException.ThrowIfNull(memory);
        Gdt.Write(memory);
        PageTables.Write(memory, cbit);
        ExceptionHandlers.Write(memory);
        if (cbit == 0)
        {
            Trampoline.Write(memory);
            Idt.Write(memory);
        }
        else
        {
            SnpRuntime.Write(memory, cbit);
        }
        Tss.Write(memory);
        memory.Write(CallRegion.Address(CallRegion.Magic), CallRegion.MagicValue);
        memory.Write(CallRegion.Address(CallRegion.Version), CallRegion.VersionValue);
    }

    /// <summary>
    /// <see cref="Write(GuestMemory)"/> for a TD (<see cref="Confidential.TdBoot"/>): page tables whose shared pages
    /// carry <paramref name="sharedBit"/> (<see cref="PageTables.WriteTd"/>), the trampoline page with the dispatch loop
    /// and the TD's code (<see cref="TdRuntime"/>: its start, its #VE handler), and the TD's IDT (vector 20 to the #VE
    /// handler, IST1 from the TSS the TD loads). The boot stub is not in guest memory: it is the boot slot's (<see cref="TdRuntime.BootSlotBytes"/>).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    /// <exception cref="GuestMemoryFaultException">A page below <see cref="Layout.ImageBase"/> is private.</exception>
    public static void WriteTd(GuestMemory memory, ulong sharedBit)
    {
        ArgumentNullException.ThrowIfNull(memory);
        Gdt.Write(memory);
        PageTables.WriteTd(memory, sharedBit);
        ExceptionHandlers.Write(memory);
        Tss.Write(memory);
        TdRuntime.Write(memory);
        memory.Write(CallRegion.Address(CallRegion.Magic), CallRegion.MagicValue);
        memory.Write(CallRegion.Address(CallRegion.Version), CallRegion.VersionValue);
    }
}
