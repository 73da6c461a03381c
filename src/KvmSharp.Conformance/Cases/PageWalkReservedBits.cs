// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The guest page walk's reserved bits follow the vCPU's CPUID (arch/x86/kvm/mmu/mmu.c __reset_rsvds_bits_mask,
/// called from kvm_mmu_after_set_cpuid): the physical-address bits from CPUID.80000008H:EAX[7:0] (cpuid_maxphyaddr)
/// up, the PDPTE's PS bit without GBPAGES (CPUID.80000001H:EDX[26]), and bit 8 of a non-leaf PML4E/PDPTE for a
/// guest whose vendor is AMD-compatible (guest_cpuid_is_amd_compatible). A vCPU without KVM_SET_CPUID2 walks with
/// MAXPHYADDR 36, no GBPAGES and no AMD rule (ExceptionDelivery.page_faults_report_error_code_and_cr2).
/// </summary>
public static class PageWalkReservedBits
{
    private const ulong Spare = IdtGuest.SpareGpa + 0x10;
    private const ulong Marker = 0x5eed_cafe_f00d_0001;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    [ConformanceCase("arch/x86/kvm/mmu/mmu.c __reset_rsvds_bits_mask after KVM_SET_CPUID2 (kvm_mmu_after_set_cpuid): a PTE's address bits below the CPUID MAXPHYADDR name a GPA (an unbacked one exits as MMIO), the bit at MAXPHYADDR is reserved (#PF P|RSVD)")]
    public static void pte_address_bits_follow_cpuid_maxphyaddr(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var table = kvm.GetSupportedCpuid();
        int maxPhyAddr = MaxPhyAddr(table);
        if (maxPhyAddr <= 37) throw new SkipCaseException($"KVM_GET_SUPPORTED_CPUID's MAXPHYADDR is {maxPhyAddr}: no address bit above 36 to test");

        // Bit MAXPHYADDR-1 is an address bit: the walk succeeds and the read reaches a GPA with no memory slot.
        ulong highBit = 1UL << (maxPhyAddr - 1);
        using (var g = IdtGuest.Create(kvm, a => { a.mov(rax, (long)Spare); a.mov(rbx, __qword_ptr[rax]); a.hlt(); }, Halting))
        {
            g.Vcpu.SetCpuid(table);
            g.SetPte(IdtGuest.SpareGpa, 3 | highBit);
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"bit {maxPhyAddr - 1}: expected KVM_EXIT_MMIO, got {exit.ToString()}");
            Assert.Equal(highBit | Spare, exit.MmioAddress);
            Assert.False(exit.MmioIsWrite);
            Assert.Empty(g.Deliveries);
        }

        if (maxPhyAddr >= 52) return; // no reserved address bit left below bit 52
        using (var g = IdtGuest.Create(kvm, a => { a.mov(rax, (long)Spare); a.mov(rbx, __qword_ptr[rax]); a.hlt(); }, Halting))
        {
            g.Vcpu.SetCpuid(table);
            g.SetPte(IdtGuest.SpareGpa, 3 | (1UL << maxPhyAddr));
            AssertPageFault(g, Spare, 0x9, $"bit {maxPhyAddr} (= MAXPHYADDR)");
        }
    }

    [ConformanceCase("arch/x86/kvm/mmu/mmu.c __reset_rsvds_bits_mask: a PDPTE with PS maps a 1 GiB page (bits 29:13 reserved) only when guest_cpu_cap_has(GBPAGES) — the vCPU's CPUID bit and KVM's (cpuid.c kvm_set_cpu_caps offers it only with TDP); otherwise PS is reserved")]
    public static void one_gib_pages_follow_cpuid_gbpages(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var table = kvm.GetSupportedCpuid();
        const ulong Linear = 0x80_0000_0000UL + Spare; // PML4[1] → a PDPT whose entry 0 maps GPA 0 as 1 GiB
        var withBit = table.Select(e => e.Function == 0x8000_0001 ? e with { Edx = e.Edx | (1u << 26) } : e).ToArray();
        var withoutBit = table.Select(e => e.Function == 0x8000_0001 ? e with { Edx = e.Edx & ~(1u << 26) } : e).ToArray();
        if (!withBit.Any(e => e.Function == 0x8000_0001)) throw new SkipCaseException("KVM_GET_SUPPORTED_CPUID has no leaf 0x80000001");

        using (var g = OneGibGuest(kvm, pdpte: 0x83))
        {
            g.Vcpu.SetCpuid(withoutBit);
            AssertPageFault(g, Linear, 0x9, "1 GiB page with GBPAGES cleared from the vCPU's CPUID");
        }
        if (!HasGbPages(table))
        {
            // The guest's bit alone does not make 1 GiB pages legal: KVM does not offer them.
            using var g = OneGibGuest(kvm, pdpte: 0x83);
            g.Vcpu.SetCpuid(withBit);
            AssertPageFault(g, Linear, 0x9, "1 GiB page with GBPAGES in the vCPU's CPUID but not offered by KVM");
            return;
        }
        using (var g = OneGibGuest(kvm, pdpte: 0x83))
        {
            g.Vcpu.SetCpuid(table);
            g.Guest.Memory.Write(Spare, Marker);
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"1 GiB page: {exit.ToString()}; deliveries {string.Join("; ", g.Deliveries)}");
            Assert.Empty(g.Deliveries);
            Assert.Equal(Marker, g.Vcpu.GetRegs().rbx);
        }
        using (var g = OneGibGuest(kvm, pdpte: 0x83 | (1UL << 13)))
        {
            g.Vcpu.SetCpuid(table);
            AssertPageFault(g, Linear, 0x9, "1 GiB page with bit 13");
        }
    }

    [ConformanceCase("arch/x86/kvm/mmu/mmu.c __reset_rsvds_bits_mask: bit 8 of a non-leaf PML4E is reserved for an AMD-compatible guest vendor (guest_cpuid_is_amd_compatible), ignored without KVM_SET_CPUID2 and for other vendors")]
    public static void nonleaf_bit8_is_reserved_for_amd_guests(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var table = kvm.GetSupportedCpuid();
        bool amd = CpuidVendor.IsAmdCompatible(table);
        const ulong Linear = 0x80_0000_0000UL + Spare;

        using (var g = Bit8Guest(kvm))
        {
            g.Guest.Memory.Write(Spare, Marker);
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT && g.Deliveries.Count == 0,
                $"without CPUID, PML4E bit 8: {exit.ToString()}; deliveries {string.Join("; ", g.Deliveries)}");
            Assert.Equal(Marker, g.Vcpu.GetRegs().rbx);
        }
        using (var g = Bit8Guest(kvm))
        {
            g.Vcpu.SetCpuid(table);
            g.Guest.Memory.Write(Spare, Marker);
            if (amd)
            {
                AssertPageFault(g, Linear, 0x9, "AMD vendor, PML4E bit 8");
                return;
            }
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT && g.Deliveries.Count == 0, $"non-AMD vendor, PML4E bit 8: {exit.ToString()}");
        }
    }

    /// <summary>PML4[1] → PDPT at 0x8a000 whose entry 0 is <paramref name="pdpte"/>; the guest reads linear 512 GiB + Spare.</summary>
    private static IdtGuest OneGibGuest(Kvm kvm, ulong pdpte)
    {
        var g = IdtGuest.Create(kvm, a => { a.mov(rax, 0x80_0000_0000L + (long)Spare); a.mov(rbx, __qword_ptr[rax]); a.hlt(); }, Halting);
        g.Guest.Memory.Write<ulong>(Layout.Pml4 + 8, 0x8a000 | 3);
        g.Guest.Memory.Write<ulong>(0x8a000, pdpte);
        return g;
    }

    /// <summary>PML4[1] (bit 8 set) → PDPT 0x8a000 → PD 0x8b000 whose entry 0 maps GPA 0 as a 2 MiB page.</summary>
    private static IdtGuest Bit8Guest(Kvm kvm)
    {
        var g = IdtGuest.Create(kvm, a => { a.mov(rax, 0x80_0000_0000L + (long)Spare); a.mov(rbx, __qword_ptr[rax]); a.hlt(); }, Halting);
        g.Guest.Memory.Write<ulong>(Layout.Pml4 + 8, 0x8a000 | 3 | (1UL << 8));
        g.Guest.Memory.Write<ulong>(0x8a000, 0x8b000 | 3);
        g.Guest.Memory.Write<ulong>(0x8b000, 0x83);
        return g;
    }

    private static void AssertPageFault(IdtGuest g, ulong cr2, ulong error, string what)
    {
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.ToString()}");
        var d = g.Single();
        Assert.True(d.Vector == 14 && d.ErrorCode == error && d.Cr2 == cr2,
            $"{what}: vector {d.Vector}, error 0x{d.ErrorCode:X}, CR2 0x{d.Cr2:X}; expected #PF 0x{error:X} at 0x{cr2:X}");
    }

    /// <summary>cpuid_query_maxphyaddr: 0x80000008 EAX[7:0] when leaf 0x80000000 reaches it, else 36.</summary>
    private static int MaxPhyAddr(IReadOnlyList<CpuidEntry> table)
    {
        var top = table.FirstOrDefault(e => e.Function == 0x8000_0000);
        var leaf = table.FirstOrDefault(e => e.Function == 0x8000_0008);
        return top.Eax >= 0x8000_0008 && leaf.Function == 0x8000_0008 ? (int)(leaf.Eax & 0xff) : 36;
    }

    private static bool HasGbPages(IReadOnlyList<CpuidEntry> table) =>
        table.Any(e => e.Function == 0x8000_0001 && (e.Edx & (1u << 26)) != 0);
}
