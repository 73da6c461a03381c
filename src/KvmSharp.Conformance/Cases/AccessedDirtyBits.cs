// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.Guests.ModeSwitchGuest;
using static KvmSharp.Conformance.Guests.ReportPort;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The guest page walk sets Accessed on every entry it uses and Dirty on the leaf of a write (Intel SDM Vol. 3A
/// 4.8; arch/x86/kvm/mmu/paging_tmpl.h FNAME(update_accessed_dirty_bits) for the shadow MMU). The guest enters long
/// mode from real mode with A/D clear in its tables (ModeSwitchGuest), runs, and the host reads the entries.
/// </summary>
public static class AccessedDirtyBits
{
    private const ulong A = 1UL << 5, D = 1UL << 6;

    private static ModeSwitchGuest Guest(Kvm kvm, Action<Assembler> tail64) => ModeSwitchGuest.Create(kvm,
        code16: EnterProtectedMode,
        code32: EnterLongMode,
        code64: tail64);

    private static ulong Bits(ModeSwitchGuest g, ulong entryGpa) => g.Memory.Read<ulong>(entryGpa - Base) & (A | D);

    [ConformanceCase("Intel SDM Vol. 3A 4.8 + paging_tmpl.h FNAME(update_accessed_dirty_bits): fetches and reads set A on every level, not D")]
    public static void fetches_and_reads_set_accessed_on_every_level_but_not_dirty(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a =>
        {
            a.mov(rax, __qword_ptr[(long)Data]);
            a.hlt();
        });
        // The far jump into 64-bit code loads CS with paging on; a clear descriptor Accessed bit would be written back
        // into the GDT (a write through this same 2 MiB page, setting its D): start with it set.
        g.Write(Gdt + Code64Selector, 0x00AF_9B00_0000_FFFFUL);
        Assert.Equal(0UL, Bits(g, Pml4) | Bits(g, Pdpt) | Bits(g, Pd));
        var (reports, last) = RunToEnd(g.Vcpu);
        Assert.Empty(reports);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, last);
        Assert.Equal(A, Bits(g, Pml4));
        Assert.Equal(A, Bits(g, Pdpt));
        Assert.Equal(A, Bits(g, Pd));
    }

    [ConformanceCase("Intel SDM Vol. 3A 4.8 + paging_tmpl.h FNAME(update_accessed_dirty_bits): a write sets D on the leaf (a 2 MiB PDE) only")]
    public static void a_write_sets_dirty_on_the_leaf_only(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a =>
        {
            a.mov(__qword_ptr[(long)Data], 0x1234);
            a.hlt();
        });
        var (reports, last) = RunToEnd(g.Vcpu);
        Assert.Empty(reports);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, last);
        Assert.Equal(A, Bits(g, Pml4));
        Assert.Equal(A, Bits(g, Pdpt));
        Assert.Equal(A | D, Bits(g, Pd));
        Assert.Equal(0x1234UL, g.Memory.Read<ulong>(Data - Base));
    }
}
