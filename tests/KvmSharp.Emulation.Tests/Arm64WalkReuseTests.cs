// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The stage-1 walk reuse of the A64 interpreter (Emulation/Arm64/A64Interpreter.WalkCache.cs) is not a TLB: a walk is
/// reused only when every input is equal and every descriptor it read is read again unchanged. Each test first makes
/// the interpreter remember a walk (the same access to the same page), then changes one thing the walk depends on —
/// without TLBI, as the emulator has no TLB — and checks that the next access sees it: a rewritten leaf or table
/// descriptor, TTBR0_EL1, TCR_EL1.TBI0, SCTLR_EL1.WXN, MAIR_EL1, PSTATE.PAN, a table page that left guest memory.
/// </summary>
public class Arm64WalkReuseTests
{
    // Tables (4 KiB granule, T0SZ 16: the walk starts at level 0) and data pages, all inside the 64 KiB slot.
    private const ulong L0 = 0x4000, L1 = 0x5000, L2 = 0x6000, L3 = 0x7000, L3b = 0x8000;
    private const ulong L0b = 0xB000, L1b = 0xC000, L2b = 0xD000;
    private const ulong PageA = 0x9000, PageB = 0xA000, El0Code = 0x2000, CodePage = 0x3000, Stack = 0xF000;

    /// <summary>The VA the tests load from: level-3 index 16 (outside the identity-mapped 64 KiB).</summary>
    private const ulong Va = 0x1_0000;

    private const ulong ValueA = 0x1111_2222_3333_4444, ValueB = 0x5555_6666_7777_8888;
    private const ulong Il = 1UL << 25;

    private static ulong Enc(int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(3, op1, crn, crm, op2);

    private static readonly ulong Sctlr = Enc(0, 1, 0, 0), Ttbr0 = Enc(0, 2, 0, 0), Tcr = Enc(0, 2, 0, 2),
        Mair = Enc(0, 10, 2, 0), Esr = Enc(0, 5, 2, 0), Far = Enc(0, 6, 0, 0), Elr = Enc(0, 4, 0, 1), Spsr = Enc(0, 4, 0, 0);

    // T0SZ 16, TG0 4K, EPD1 (no TTBR1 walks), TG1 4K, IPS 40 bits, TBI0.
    private const ulong TcrValue = 16 | (1UL << 23) | (2UL << 30) | (2UL << 32) | (1UL << 37);

    private const uint Isb = 0xD503_3FDF, PanOn = 0xD500_419F;

    private static ulong Leaf(ulong oa, ulong ap = 0) => oa | 3 | (ap << 6) | (1UL << 10);

    private static ulong TableDesc(ulong next) => next | 3;

    private static void Put(Arm64TestVm s, ulong table, int index, ulong desc) =>
        s.Host.Write(table + (ulong)index * 8, BitConverter.GetBytes(desc));

    /// <summary>
    /// Two table sets: L0 → L1 → L2 → L3 (identity pages 0..15, page 0 read-only so it stays executable with WXN;
    /// <see cref="Va"/> → page A) and L0b → L1b → L2b → L3b (the same, but <see cref="Va"/> → page B). L2[8] and L2b[8]:
    /// a block over the ucall MMIO address.
    /// </summary>
    private static void BuildTables(Arm64TestVm s)
    {
        foreach (var (l0, l1, l2, l3, target) in new[] { (L0, L1, L2, L3, PageA), (L0b, L1b, L2b, L3b, PageB) })
        {
            Put(s, l0, 0, TableDesc(l1));
            Put(s, l1, 0, TableDesc(l2));
            Put(s, l2, 0, TableDesc(l3));
            Put(s, l2, 8, (Arm64Guest.UcallMmioGpa & ~0x1F_FFFFUL) | 1 | (1UL << 10));
            for (int i = 0; i < 16; i++) Put(s, l3, i, Leaf((ulong)i << 12, ap: i == 0 ? 2UL : 0));
            Put(s, l3, (int)(El0Code >> 12), Leaf(El0Code, ap: 1)); // EL0 code: EL0 read/write
            Put(s, l3, 16, Leaf(target));
        }
        s.Host.Write(PageA, BitConverter.GetBytes(ValueA));
        s.Host.Write(PageB, BitConverter.GetBytes(ValueB));
        // A subroutine in a writable page: NOP, RET.
        s.Host.Write(CodePage, Arm64Guest.Assemble(a =>
        {
            a.Nop();
            a.Ret();
        }));
    }

    private static void MmuOn(A64Assembler a)
    {
        Arm64MmuSetup.Emit(a, TcrValue, L0);
        a.MovImm(X(3), Stack);
        a.AddImm(Sp, X(3), 0);
        a.MovImm(X(20), 0); // no fault yet
    }

    /// <summary>One instruction that may fault: x24 = the address after it, where the vector resumes.</summary>
    private static void MayFault(A64Assembler a, Action<A64Assembler> insn)
    {
        ulong resume = Arm64Guest.CodeGpa + (ulong)a.Position + 12;
        a.Movz(X(24), (ushort)resume);
        a.Movk(X(24), (ushort)(resume >> 16), 16);
        int before = a.Position;
        insn(a);
        Assert.Equal(before + 4, a.Position);
    }

    /// <summary>Runs the program to its ucall (which uses x9 and x10); x20 = ESR_EL1, x21 = FAR_EL1 of the last fault (x20 = 0: none).</summary>
    private static (Arm64TestVm Vm, KvmSharp.Vcpu Vcpu) Run(Action<A64Assembler> program, Action<A64Assembler>? el0Code = null)
    {
        var s = new Arm64TestVm(program);
        BuildTables(s);
        if (el0Code is not null) s.Host.Write(El0Code, Arm64Guest.Assemble(el0Code));
        // Lower-EL synchronous vector: record ESR/FAR, ucall 1.
        s.Host.Write(0x400, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(20), Esr);
            a.Mrs(X(21), Far);
            Arm64Guest.Ucall(a, 1);
        }));
        // EL1h synchronous vector (page 0, read-only): record ESR/FAR, resume at x24.
        s.Host.Write(0x200, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(20), Esr);
            a.Mrs(X(21), Far);
            a.Msr(Elr, X(24));
            a.Eret();
        }));
        var vcpu = s.AddVcpu();
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(1UL, BitConverter.ToUInt64(exit.MmioData));
        return (s, vcpu);
    }

    private static ulong Reg(KvmSharp.Vcpu v, int n) => v.GetOneReg(KvmArm64Regs.X(n));

    /// <summary>Loads x12 and x13 from <see cref="Va"/> twice each (the walk is remembered), around <paramref name="change"/>.</summary>
    private static (ulong Before, ulong After, ulong Esr, ulong Far) LoadAround(Action<A64Assembler> change, ulong va = Va)
    {
        var (s, v) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), va);
            a.Ldr(X(12), X(1));
            a.Ldr(X(12), X(1));
            change(a);
            a.MovImm(X(13), 0xDEAD);
            MayFault(a, b => b.Ldr(X(13), X(1)));
            Arm64Guest.Ucall(a, 1);
        });
        using (s) return (Reg(v, 12), Reg(v, 13), Reg(v, 20), Reg(v, 21));
    }

    private static ulong DataAbortCur(uint iss) => (0x25UL << 26) | Il | iss;

    [Fact]
    public void A_leaf_descriptor_rewritten_without_tlbi_is_seen_by_the_next_load()
    {
        var r = LoadAround(a =>
        {
            a.MovImm(X(2), Leaf(PageB));
            a.MovImm(X(3), L3 + 16 * 8);
            a.Str(X(2), X(3));
        });
        Assert.Equal((ValueA, ValueB, 0UL), (r.Before, r.After, r.Esr));
    }

    [Fact]
    public void A_table_descriptor_rewritten_without_tlbi_is_seen_by_the_next_load()
    {
        // L2[0]: L3 → L3b (the same identity pages for the code, Va → page B).
        var r = LoadAround(a =>
        {
            a.MovImm(X(2), TableDesc(L3b));
            a.MovImm(X(3), L2);
            a.Str(X(2), X(3));
        });
        Assert.Equal((ValueA, ValueB, 0UL), (r.Before, r.After, r.Esr));
    }

    [Fact]
    public void A_leaf_made_invalid_without_tlbi_faults_at_the_next_load()
    {
        var r = LoadAround(a =>
        {
            a.MovImm(X(3), L3 + 16 * 8);
            a.Str(Xzr, X(3));
        });
        Assert.Equal(ValueA, r.Before);
        Assert.Equal(0xDEADUL, r.After);
        Assert.Equal(DataAbortCur(A64FscTranslationLevel3), r.Esr);
        Assert.Equal(Va, r.Far);
    }

    private const uint A64FscTranslationLevel3 = 0x07;

    [Fact]
    public void A_new_ttbr0_is_walked_at_the_next_load()
    {
        var r = LoadAround(a =>
        {
            a.MovImm(X(2), L0b | (5UL << 48)); // another table root and another ASID
            a.Msr(Ttbr0, X(2));
            a.Emit(Isb);
        });
        Assert.Equal((ValueA, ValueB, 0UL), (r.Before, r.After, r.Esr));
    }

    [Fact]
    public void Tcr_tbi0_cleared_makes_the_tagged_load_fault()
    {
        const ulong tagged = 0x5A00_0000_0000_0000 | Va;
        var r = LoadAround(a =>
        {
            a.MovImm(X(2), TcrValue & ~(1UL << 37));
            a.Msr(Tcr, X(2));
            a.Emit(Isb);
        }, tagged);
        Assert.Equal(ValueA, r.Before);
        Assert.Equal(0xDEADUL, r.After);
        Assert.Equal(DataAbortCur(0x04), r.Esr); // translation fault, level 0 (VA out of range)
        Assert.Equal(tagged, r.Far);
    }

    [Fact]
    public void Mair_made_device_makes_an_unaligned_load_take_an_alignment_fault()
    {
        var r = LoadAround(a =>
        {
            a.Msr(Mair, Xzr); // Attr0 = Device-nGnRnE
            a.Emit(Isb);
        }, Va + 1);
        Assert.Equal(0xDEADUL, r.After);
        Assert.Equal(DataAbortCur(0x21), r.Esr);
        Assert.Equal(Va + 1, r.Far);
    }

    [Fact]
    public void Pan_set_makes_an_el1_load_from_an_el0_page_fault()
    {
        // Va → page A as EL0 read/write (AP 0b01): EL1 reads it until PSTATE.PAN is set.
        var r = LoadAround(a =>
        {
            a.MovImm(X(2), Leaf(PageA, ap: 1));
            a.MovImm(X(3), L3 + 16 * 8);
            a.Str(X(2), X(3));
            a.Ldr(X(12), X(1));
            a.Ldr(X(12), X(1));
            a.Emit(PanOn);
        });
        Assert.Equal(ValueA, r.Before);
        Assert.Equal(0xDEADUL, r.After);
        Assert.Equal(DataAbortCur(0x0F), r.Esr); // permission fault, level 3
        Assert.Equal(Va, r.Far);
    }

    [Fact]
    public void Sctlr_wxn_set_makes_a_fetch_from_a_writable_page_fault()
    {
        var (s, v) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(5), CodePage);
            a.Blr(X(5));
            a.Blr(X(5));
            a.Mrs(X(1), Sctlr);
            a.MovImm(X(2), 1UL << 19);
            a.Orr(X(1), X(1), X(2));
            a.Msr(Sctlr, X(1));
            a.Emit(Isb);
            // The BLR itself completes; the fetch at CodePage faults, and the vector resumes after the BLR (x24).
            MayFault(a, b => b.Blr(X(5)));
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal((0x21UL << 26) | Il | 0x0F, Reg(v, 20)); // instruction abort, current EL, permission level 3
            Assert.Equal(CodePage, Reg(v, 21));
        }
    }

    [Fact]
    public void An_el0_load_of_a_page_el1_just_read_takes_the_el0_permission_fault()
    {
        // Va's page is EL1-only (AP 0b00). EL1 reads it (the walk is remembered), then ERETs to EL0, which reads it:
        // a permission fault to the lower-EL vector. (Were EL1's walk reused, the load would work and the next one, of
        // the EL1-only page 0, would fault instead.)
        var (s, v) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), Va);
            a.Ldr(X(12), X(1));
            a.Ldr(X(12), X(1));
            a.MovImm(X(13), 0xDEAD);
            a.MovImm(X(0), 0);
            a.Msr(Spsr, Xzr); // EL0t
            a.MovImm(X(2), El0Code);
            a.Msr(Elr, X(2));
            a.Eret();
        }, el0 =>
        {
            el0.Ldr(X(13), X(1));
            el0.Ldr(X(14), X(0));
        });
        using (s)
        {
            Assert.Equal(ValueA, Reg(v, 12));
            Assert.Equal(0xDEADUL, Reg(v, 13));
            Assert.Equal((0x24UL << 26) | Il | 0x0F, Reg(v, 20)); // data abort from a lower EL, permission level 3
            Assert.Equal(Va, Reg(v, 21));
        }
    }

    [Fact]
    public void A_table_page_removed_from_guest_memory_is_a_walk_abort_at_the_next_load()
    {
        // VA 2 MiB (L2[1]) goes through a level-3 table in a second memslot, which the host deletes between two runs;
        // the code's own translations (L2[0]) stay in slot 0.
        const ulong extraGpa = 0x2_0000, va = 0x20_0000;
        var s = new Arm64TestVm(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), va);
            a.Ldr(X(12), X(1));
            a.Ldr(X(12), X(1));
            Arm64Guest.Ucall(a, 1);
            a.MovImm(X(13), 0xDEAD);
            MayFault(a, b => b.Ldr(X(13), X(1)));
            Arm64Guest.Ucall(a, 2);
        });
        using (s)
        {
            BuildTables(s);
            s.Host.Write(0x200, Arm64Guest.Assemble(a =>
            {
                a.Mrs(X(20), Esr);
                a.Mrs(X(21), Far);
                a.Msr(Elr, X(24));
                a.Eret();
            }));
            // L2[1] and the level-3 entry hold the same value (a table descriptor ignores bit 10, AF of a page): the
            // page is the table page itself, and a re-read that failed at stage 2 cannot pass for an unchanged one.
            const ulong desc = extraGpa | 3 | (1UL << 10);
            using var extra = s.Vm.AllocateMemory(0x1000);
            extra.Write(0, BitConverter.GetBytes(desc));
            var slot = s.Vm.AddMemorySlot(1, extraGpa, extra);
            Put(s, L2, 1, desc);
            var vcpu = s.AddVcpu();
            var exit = vcpu.RunBounded();
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
            Assert.Equal(1UL, BitConverter.ToUInt64(exit.MmioData));
            Assert.Equal(desc, Reg(vcpu, 12));
            slot.Dispose();
            exit = vcpu.RunBounded();
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
            Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
            Assert.Equal(2UL, BitConverter.ToUInt64(exit.MmioData));
            // mmu.c kvm_handle_guest_abort (S1PTW, no memslot) → kvm_inject_sea_dabt: FSC SEA_TTW(3), FAR = the VA.
            Assert.Equal(0xDEADUL, Reg(vcpu, 13));
            Assert.Equal(DataAbortCur(0x17), Reg(vcpu, 20));
            Assert.Equal(va, Reg(vcpu, 21));
        }
    }
}
