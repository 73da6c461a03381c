// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The flat 64-bit GDT (Firecracker arch/x86_64/gdt.rs): null, code, data, and the 64-bit TSS the exception
/// handlers' IST stack comes from (a 16-byte system descriptor, SDM Vol. 3A 8.2.3). The descriptors in memory and the
/// kvm_segment values given to KVM_SET_SREGS are built from the same fields so they cannot disagree (VMX checks the
/// cached segment state; the in-memory copy matters once the guest reloads a selector).
/// </summary>
public static class Gdt
{
    /// <summary>Selector of the 64-bit code segment (GDT entry 1, RPL 0).</summary>
    public const ushort CodeSelector = 0x08;
    /// <summary>Selector of the data segment, used for DS, ES, FS, GS and SS (GDT entry 2, RPL 0).</summary>
    public const ushort DataSelector = 0x10;
    /// <summary>Selector of the 64-bit TSS descriptor (GDT entries 3 and 4), loaded into TR.</summary>
    public const ushort TssSelector = 0x18;

    /// <summary>Execute/read, accessed (type 0xB); L=1 (64-bit), D=0.</summary>
    public static kvm_segment Code => new()
    {
        @base = 0, limit = 0xFFFF_FFFF, selector = CodeSelector, type = 0xB,
        present = 1, dpl = 0, db = 0, s = 1, l = 1, g = 1,
    };

    /// <summary>Read/write, accessed (type 0x3); D/B=1.</summary>
    public static kvm_segment Data => new()
    {
        @base = 0, limit = 0xFFFF_FFFF, selector = DataSelector, type = 0x3,
        present = 1, dpl = 0, db = 1, s = 1, l = 0, g = 1,
    };

    /// <summary>
    /// TR: the busy 64-bit TSS (type 0xB; S=0, a system descriptor). Busy, because TR is loaded through KVM_SET_SREGS,
    /// which is what LTR would have left (VMX requires a busy TSS in TR).
    /// </summary>
    public static kvm_segment TaskState => new()
    {
        @base = Layout.Tss, limit = Tss.Limit, selector = TssSelector, type = 0xB,
        present = 1, dpl = 0, db = 0, s = 0, l = 0, g = 0,
    };

    /// <summary>The descriptors as the CPU reads them from memory; the TSS descriptor takes two slots (base bits 63:32 in the second).</summary>
    public static ulong[] Entries => [0, Encode(Code), Encode(Data), Encode(TaskState), TaskState.@base >> 32];

    /// <summary>The GDTR limit: the size of <see cref="Entries"/> in bytes, minus 1.</summary>
    public static ushort Limit => (ushort)(Entries.Length * sizeof(ulong) - 1);

    /// <summary>Writes <see cref="Entries"/> to <see cref="Layout.Gdt"/> in <paramref name="memory"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void Write(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ulong[] entries = Entries;
        for (int i = 0; i < entries.Length; i++) memory.Write(Layout.Gdt + (ulong)(i * sizeof(ulong)), entries[i]);
    }

    /// <summary>Packs a kvm_segment into an 8-byte descriptor (Intel SDM Vol. 3A 3.4.5, "Segment Descriptors").</summary>
    public static ulong Encode(kvm_segment s)
    {
        // With G=1 the descriptor holds the limit in 4 KiB units.
        ulong limit = s.g != 0 ? s.limit >> 12 : s.limit;
        ulong flags = ((ulong)s.type & 0xF) | (((ulong)s.s & 1) << 4) | (((ulong)s.dpl & 3) << 5) | (((ulong)s.present & 1) << 7)
            | (((ulong)s.avl & 1) << 12) | (((ulong)s.l & 1) << 13) | (((ulong)s.db & 1) << 14) | (((ulong)s.g & 1) << 15);
        return (limit & 0xFFFF) | ((s.@base & 0xFF_FFFF) << 16) | (flags << 40) | (((limit >> 16) & 0xF) << 48)
            | (((s.@base >> 24) & 0xFF) << 56);
    }
}
