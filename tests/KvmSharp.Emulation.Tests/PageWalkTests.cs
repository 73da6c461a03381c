// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>The 4-level long-mode walk: 4 KiB, 2 MiB and 1 GiB pages, present and write checks.</summary>
public sealed class PageWalkTests
{
    private const ulong Pt = 0x4000;

    [Fact]
    public void Four_KiB_and_two_MiB_pages_translate_to_their_frames()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a =>
        {
            // 1 GiB pages are reserved without CPUID GBPAGES (ExceptionDeliveryTests covers that #PF).
            a.mov(rax, 0x8000_0000L + 0x10_0008);        // 2 MiB page (PDPT slot 2) → GPA 0x100008
            a.mov(rcx, __qword_ptr[rax]);
            a.mov(rax, 0xC000_0000L + 0x1010);           // 4 KiB page (PDPT slot 3 → PD → PT) → GPA 0x5010
            a.mov(rdx, __qword_ptr[rax]);
            a.hlt();
        });
        // PDPT[2] → PD at 0x7000, entry 0 a 2 MiB page at GPA 0.
        g.Write64(RawGuest.Pdpt + 2 * 8, 0x7000 | 3);
        g.Write64(0x7000, 0x0 | 0x83);
        // PDPT[3] → PD at 0x8000 → PT at 0x4000; PT[1] → GPA 0x5000.
        g.Write64(RawGuest.Pdpt + 3 * 8, 0x8000 | 3);
        g.Write64(0x8000, Pt | 3);
        g.Write64(Pt + 8, 0x5000 | 3);
        g.Write64(0x10_0008, 0x2222);
        g.Write64(0x5010, 0x3333);
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        var r = g.Regs;
        Assert.Equal(0x2222UL, r.rcx);
        Assert.Equal(0x3333UL, r.rdx);
    }

    [Fact]
    public void A_not_present_entry_is_a_page_fault_and_without_an_IDT_a_shutdown()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => { a.mov(rax, 0x4000_0000L); a.mov(__qword_ptr[rax], rax); a.hlt(); });
        g.RunExpect(KvmExitReason.KVM_EXIT_SHUTDOWN);
        Assert.Equal(RawGuest.CodeGpa + 10, g.Regs.rip); // at the faulting store, after the 10-byte mov
        Assert.Equal(0x1_0002UL, g.Regs.rflags);        // RF set, as the host reports after a triple fault
    }

    [Fact]
    public void A_write_to_a_read_only_page_faults_with_CR0_WP_and_succeeds_without_it()
    {
        foreach (bool wp in new[] { true, false })
        {
            using var k = new EmulatedKernel();
            using var g = new RawGuest(k);
            g.LongMode(a => { a.mov(rax, 0x40_0000); a.mov(__byte_ptr[rax], 7); a.hlt(); });
            g.Write64(RawGuest.Pd + 2 * 8, 0x40_0000 | 0x81); // present, large, not writable
            if (!wp)
            {
                var s = g.Sregs;
                s.cr0 &= ~(1UL << 16);
                g.Sregs = s;
            }
            g.RunExpect(wp ? KvmExitReason.KVM_EXIT_SHUTDOWN : KvmExitReason.KVM_EXIT_HLT);
            Assert.Equal(wp ? 0 : 7, g.Memory.GetSpan(0x40_0000, 1)[0]);
        }
    }

    [Fact]
    public void Page_tables_are_read_through_the_memslots_so_a_table_without_memory_faults()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => { a.mov(rax, 0x8000_0000L); a.mov(rbx, __qword_ptr[rax]); a.hlt(); });
        g.Write64(RawGuest.Pdpt + 2 * 8, 0x10_0000_0000UL | 3); // PD at 64 GiB: no memslot
        g.RunExpect(KvmExitReason.KVM_EXIT_SHUTDOWN);
    }
}
