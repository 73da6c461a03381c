// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// Writes everything the host puts in guest memory before the image: GDT, page tables, trampoline, call header, and the
/// exception handling (handlers, IDT, TSS).
/// </summary>
public static class BootMemory
{
    public static void Write(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        Gdt.Write(memory);
        PageTables.Write(memory);
        Trampoline.Write(memory);
        ExceptionHandlers.Write(memory);
        Idt.Write(memory);
        Tss.Write(memory);
        memory.Write(CallRegion.Address(CallRegion.Magic), CallRegion.MagicValue);
        memory.Write(CallRegion.Address(CallRegion.Version), CallRegion.VersionValue);
    }
}
