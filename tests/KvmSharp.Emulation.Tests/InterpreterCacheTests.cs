// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The interpreter's speed-ups (X86Emulator.WalkReuse.cs, X86Emulator.DecodeCache.cs) reuse a page walk, the code
/// page's mapping and decoded instructions only while the guest memory they came from is unchanged. Each test
/// runs code once so that everything is remembered, then changes guest memory the way nothing else notices (a plain
/// store by the guest or the host, no INVLPG, no memslot change) and runs the same linear address again: the emulator
/// has no TLB, so the change must be seen at the very next fetch or data access.
/// </summary>
public sealed class InterpreterCacheTests
{
    [Fact]
    public void A_host_write_to_guest_code_between_runs_is_fetched_and_decoded_anew()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => { a.mov(eax, 1); a.hlt(); });
        Assert.Equal(0xB8, g.Memory.GetSpan(RawGuest.CodeGpa, 1)[0]); // mov eax, imm32
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(1UL, g.Regs.rax);
        g.Write(RawGuest.CodeGpa + 1, [5, 0, 0, 0]);
        g.Regs = g.Regs with { rip = RawGuest.CodeGpa };
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(5UL, g.Regs.rax);
    }

    [Fact]
    public void Self_modifying_code_runs_the_bytes_it_just_wrote()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        // mov ecx, 3 (5 bytes); xor ebx, ebx (2); patch: mov eax, imm32 at +7 (imm at +8); add ebx, eax;
        // inc dword [imm]; dec ecx; jnz patch — the imm32 is 0, 1, 2 on the three passes.
        g.LongMode(a =>
        {
            var patch = a.CreateLabel();
            a.mov(ecx, 3);
            a.xor(ebx, ebx);
            a.Label(ref patch);
            a.mov(eax, 0);
            a.add(ebx, eax);
            a.inc(__dword_ptr[(long)RawGuest.CodeGpa + 8]);
            a.dec(ecx);
            a.jnz(patch);
            a.hlt();
        });
        Assert.Equal(0xB8, g.Memory.GetSpan(RawGuest.CodeGpa + 7, 1)[0]);
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(3UL, g.Regs.rbx);
        Assert.Equal(3U, BitConverter.ToUInt32(g.Memory.GetSpan(RawGuest.CodeGpa + 8, 4)));
    }

    [Fact]
    public void A_host_write_to_the_page_table_between_runs_moves_the_code_the_next_fetch_sees()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => { a.mov(eax, 1); a.hlt(); });
        g.Write(0x40_0000, RawGuest.Assemble(64, RawGuest.CodeGpa, a => { a.mov(eax, 2); a.hlt(); }));
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(1UL, g.Regs.rax);
        // PD[1] (linear 2..4 MiB) now maps the 2 MiB frame at 4 MiB: a plain store, no invalidation of any kind.
        g.Write64(RawGuest.Pd + 8, 0x40_0000 | 0x83);
        g.Regs = g.Regs with { rip = RawGuest.CodeGpa };
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(2UL, g.Regs.rax);
    }

    [Fact]
    public void A_guest_that_rewrites_its_page_table_without_INVLPG_fetches_through_the_new_entry()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        // Linear 4 MiB + 4 KiB goes through a 4 KiB page table (PD[2] → PT at 0x5000): PT[1] maps 0x6000 ("mov eax, 1;
        // ret"), then the guest points it at 0x7000 ("mov eax, 2; ret") and calls the same linear address again. (A page
        // other than the caller's, in the remembered walks' terms: linear page 0x401 vs 0x200.)
        const ulong pt = 0x5000;
        g.LongMode(a =>
        {
            a.mov(rax, 0x40_1000L);
            a.call(rax);                              // eax = 1 through PT[1] → 0x6000
            a.mov(ebx, eax);
            a.mov(rdx, (long)pt);
            a.mov(__qword_ptr[rdx + 8], 0x7000 | 3);  // PT[1] → 0x7000; no INVLPG
            a.mov(rax, 0x40_1000L);
            a.call(rax);                              // the emulator has no TLB: eax = 2
            a.hlt();
        });
        g.Write64(RawGuest.Pd + 2 * 8, pt | 3);
        g.Write64(pt + 8, 0x6000 | 3);
        g.Write(0x6000, RawGuest.Assemble(64, 0x40_1000, a => { a.mov(eax, 1); a.ret(); }));
        g.Write(0x7000, RawGuest.Assemble(64, 0x40_1000, a => { a.mov(eax, 2); a.ret(); }));
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        var r = g.Regs;
        Assert.Equal(1UL, r.rbx);
        Assert.Equal(2UL, r.rax);
    }

    [Fact]
    public void Code_in_a_memslot_moved_to_other_memory_between_runs_is_fetched_from_the_new_memory()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => { a.mov(eax, 1); a.hlt(); });
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(1UL, g.Regs.rax);
        // The same tables and code in other memory, with another immediate; the old memory stays mapped and unchanged.
        Assert.Equal(0, MappedRegion.Map(k, null, RawGuest.MemorySize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, 0,
            out var other));
        using var copy = other!;
        g.Memory.GetSpan(0, (int)RawGuest.MemorySize).CopyTo(copy.GetSpan(0, (int)RawGuest.MemorySize));
        copy.GetSpan(RawGuest.CodeGpa + 1, 1)[0] = 7;
        Assert.Equal(0, Raw.Region1(k, g.Vm, 0, 0, 0, 0, (ulong)g.Memory.Address));
        Assert.Equal(0, Raw.Region1(k, g.Vm, 0, 0, 0, RawGuest.MemorySize, (ulong)copy.Address));
        g.Regs = g.Regs with { rip = RawGuest.CodeGpa };
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(7UL, g.Regs.rax);
    }

    [Fact]
    public void A_data_read_after_the_guest_remaps_its_page_without_INVLPG_reads_the_new_frame()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        const ulong pt = 0x5000;
        g.LongMode(a =>
        {
            a.mov(rax, 0x40_1000L);
            a.mov(rbx, __qword_ptr[rax]);             // through PT[1] → 0x6000 (the first walk faults the tables in)
            a.mov(rbx, __qword_ptr[rax]);             // a second time: the walk is remembered
            a.mov(rdx, (long)pt);
            a.mov(__qword_ptr[rdx + 8], 0x7000 | 3);  // PT[1] → 0x7000; no INVLPG
            a.mov(rcx, __qword_ptr[rax]);
            a.hlt();
        });
        g.Write64(RawGuest.Pd + 2 * 8, pt | 3);
        g.Write64(pt + 8, 0x6000 | 3);
        g.Write64(0x6000, 0x1111);
        g.Write64(0x7000, 0x2222);
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        var r = g.Regs;
        Assert.Equal(0x1111UL, r.rbx);
        Assert.Equal(0x2222UL, r.rcx);
    }

    [Fact]
    public void A_write_after_the_guest_cleared_the_dirty_bit_sets_it_again()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        const ulong pt = 0x5000;
        g.LongMode(a =>
        {
            a.mov(rax, 0x40_1000L);
            a.mov(__qword_ptr[rax], 1);               // sets A and D of PT[1]
            a.mov(__qword_ptr[rax], 1);               // a second time: the walk is remembered
            a.mov(rdx, (long)pt);
            a.and(__qword_ptr[rdx + 8], ~0x40);       // the guest clears D (no INVLPG)
            a.mov(__qword_ptr[rax], 2);               // the walk sets D again
            a.hlt();
        });
        g.Write64(RawGuest.Pd + 2 * 8, pt | 3);
        g.Write64(pt + 8, 0x6000 | 3);
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(2UL, g.Read64(0x6000));
        Assert.Equal(0x6000UL | 0x63, g.Read64(pt + 8)); // P RW A D
    }
}
