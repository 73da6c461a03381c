// SPDX-License-Identifier: MIT
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Whether an SNP guest's access is private: the C-bit in the guest's own page-table entry (AMD APM Vol. 2, 15.34.5),
/// reported to KVM as the #NPF error code's PFERR_GUEST_ENC_MASK and turned into PFERR_PRIVATE_ACCESS
/// (arch/x86/kvm/svm/svm.c npf_interception); page-table walks, instruction fetches and every access with paging off
/// are encrypted whatever the C-bit. kvm_mmu_faultin_pfn compares the access with the GFN's attribute: a mismatch is
/// KVM_EXIT_MEMORY_FAULT (KVM_RUN = -EFAULT) with KVM_MEMORY_EXIT_FLAG_PRIVATE when the access was private
/// (arch/x86/kvm/mmu/mmu.c kvm_mmu_prepare_memory_fault_exit), which the VMM answers by converting the page
/// (KVM_SET_MEMORY_ATTRIBUTES) and entering again. This host has no SNP (VM type 0 only): those cases run on the
/// emulator's X86Coco profile and are skipped here with the reason. Without SEV a PTE's bit 51 is an address bit
/// above MAXPHYADDR: a reserved-bit #PF, on both kernels.
/// </summary>
public static class SnpGuestPrivacy
{
    private const string Svm = "arch/x86/kvm/svm/svm.c npf_interception, arch/x86/kvm/mmu/mmu.c kvm_mmu_faultin_pfn";

    /// <summary>mov rax, [<paramref name="linear"/>]; mov [Result], rax; hlt.</summary>
    private static Action<Iced.Intel.Assembler> ReadAndStore(ulong linear) => a =>
    {
        a.mov(rax, (long)linear);
        a.mov(rax, __qword_ptr[rax]);
        a.mov(rbx, (long)SnpGuest.Result);
        a.mov(__qword_ptr[rbx], rax);
        a.hlt();
    };

    private static void AssertMemoryFault(SnpGuest g, ulong gpa, bool isPrivate, string what)
    {
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmSharp.Abi.KvmExitReason.KVM_EXIT_MEMORY_FAULT, $"{what}: exit {exit.Reason}");
        Assert.True((exit.MemoryFaultGpa, exit.MemoryFaultSize, exit.MemoryFaultIsPrivate) == (gpa, 4096UL, isPrivate),
            $"{what}: memory fault at 0x{exit.MemoryFaultGpa:X} size 0x{exit.MemoryFaultSize:X} private={exit.MemoryFaultIsPrivate}; expected 0x{gpa:X}, private={isPrivate}");
    }

    private static void AssertHalts(SnpGuest g, string what)
    {
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmSharp.Abi.KvmExitReason.KVM_EXIT_HLT, $"{what}: exit {exit.Reason}");
    }

    private static ulong Pattern(byte b) => 0x0101_0101_0101_0101UL * b;

    /// <summary>The SNP cases need guest_memfd for the launch image (KVM_CAP_GUEST_MEMFD = 0 on this host's build).</summary>
    private static void RequireGuestMemfd(Kvm kvm)
    {
        if (!kvm.SupportsGuestMemfd) CaseContext.Skip("an SNP guest's initial image is guest_memfd, which this kernel lacks (KVM_CAP_GUEST_MEMFD = 0)");
    }

    [ConformanceCase(Svm + ": an SNP guest's read through a PTE with the C-bit is a private access — on a shared GFN a KVM_EXIT_MEMORY_FAULT with KVM_MEMORY_EXIT_FLAG_PRIVATE at the page, and after the VMM converts the page to private the read returns the guest_memfd's content (the launch image), not the shared memory's",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SnpVmType)]
    public static void snp_read_through_a_cbit_pte_is_private(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireGuestMemfd(kvm);
        using var g = SnpGuest.Create(kvm, ReadAndStore(SnpGuest.Data));
        g.SetPrivate(SnpGuest.Data, false);
        AssertMemoryFault(g, SnpGuest.Data, isPrivate: true, "C-bit read of a shared GFN");
        g.SetPrivate(SnpGuest.Data, true);
        AssertHalts(g, "after the conversion to private");
        Assert.Equal(Pattern(SnpGuest.PrivateByte), g.Shared.Read<ulong>(SnpGuest.Result));
    }

    [ConformanceCase(Svm + ": the same SNP page read through a PTE without the C-bit is a shared access — on the private GFN a KVM_EXIT_MEMORY_FAULT without the PRIVATE flag, and once shared the read returns the slot's userspace memory",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SnpVmType)]
    public static void snp_read_through_a_pte_without_the_cbit_is_shared(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireGuestMemfd(kvm);
        using var g = SnpGuest.Create(kvm, ReadAndStore(SnpGuest.DataSharedAlias));
        AssertMemoryFault(g, SnpGuest.Data, isPrivate: false, "read without the C-bit of a private GFN");
        g.SetPrivate(SnpGuest.Data, false);
        AssertHalts(g, "after the conversion to shared");
        Assert.Equal(Pattern(SnpGuest.SharedByte), g.Shared.Read<ulong>(SnpGuest.Result));
    }

    [ConformanceCase(Svm + "; AMD APM Vol. 2 15.34.5: an SNP guest's instruction fetch is always encrypted — code on a shared GFN, even mapped without the C-bit, stops with a private KVM_EXIT_MEMORY_FAULT at the code page",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SnpVmType)]
    public static void snp_instruction_fetch_is_always_private(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireGuestMemfd(kvm);
        using var g = SnpGuest.Create(kvm, ReadAndStore(SnpGuest.Data), codeWithoutCbit: true);
        g.SetPrivate(SnpGuest.Code, false);
        AssertMemoryFault(g, SnpGuest.Code, isPrivate: true, "fetch from a shared GFN");
        g.SetPrivate(SnpGuest.Code, true);
        AssertHalts(g, "after the conversion to private");
        Assert.Equal(Pattern(SnpGuest.PrivateByte), g.Shared.Read<ulong>(SnpGuest.Result));
    }

    [ConformanceCase(Svm + "; AMD APM Vol. 2 15.34.5: an SNP guest's page-table walk is always encrypted — a page table on a shared GFN stops the first translation with a private KVM_EXIT_MEMORY_FAULT at the table",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SnpVmType)]
    public static void snp_page_walk_is_always_private(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireGuestMemfd(kvm);
        using var g = SnpGuest.Create(kvm, ReadAndStore(SnpGuest.Data));
        g.SetPrivate(SnpGuest.Pt, false);
        AssertMemoryFault(g, SnpGuest.Pt, isPrivate: true, "walk through a shared page table");
        g.SetPrivate(SnpGuest.Pt, true);
        AssertHalts(g, "after the conversion to private");
    }

    [ConformanceCase(Svm + "; AMD APM Vol. 2 15.34.5: with paging off (real mode) every SNP data access is encrypted — the guest's use of a shared GFN (its PVALIDATE first, as an SNP guest validates a page it makes private: AMD APM Vol. 3 PVALIDATE) stops with a private KVM_EXIT_MEMORY_FAULT until the VMM makes it private, for a page read and for one written; then the private read and write work",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SnpVmType)]
    public static void snp_access_with_paging_off_is_private(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireGuestMemfd(kvm);
        using var g = SnpGuest.Create(kvm, a =>
        {
            // A page that was shared (or never launched) must be validated before a private access, else #VC 0x404.
            foreach (ulong page in new[] { SnpGuest.Data, SnpGuest.Result })
            {
                a.mov(ax, (ushort)page);
                a.xor(ecx, ecx);
                a.mov(edx, 1);
                a.pvalidate();
            }
            a.mov(al, __byte_ptr[(uint)SnpGuest.Data]);
            a.mov(__byte_ptr[(uint)SnpGuest.Result], al);
            a.hlt();
        }, realMode: true);
        g.SetPrivate(SnpGuest.Data, false);
        AssertMemoryFault(g, SnpGuest.Data, isPrivate: true, "real-mode PVALIDATE of the shared GFN it reads");
        g.SetPrivate(SnpGuest.Data, true);
        // Result was left shared after the launch: the write is private too.
        AssertMemoryFault(g, SnpGuest.Result, isPrivate: true, "real-mode PVALIDATE of the shared GFN it writes");
        g.SetPrivate(SnpGuest.Result, true);
        AssertHalts(g, "after both conversions");
    }

    [ConformanceCase("arch/x86/kvm/mmu/paging_tmpl.h walk_addr_generic, mmu.c __reset_rsvds_bits_mask: on a VM that is not SEV/SNP, a PTE's bit 51 (where an SNP guest puts its C-bit) is an address bit above MAXPHYADDR (36 without KVM_SET_CPUID2) — a reserved-bit #PF, error code P|RSVD (0x9) on a read")]
    public static void pte_bit_51_is_reserved_without_sev(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Spare = IdtGuest.SpareGpa + 0x10;
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(rax, (long)Spare);
            a.mov(rbx, __qword_ptr[rax]);
            a.hlt();
        }, Enumerable.Range(0, 32).Select(v => new IdtVector(v)));
        g.SetPte(IdtGuest.SpareGpa, 3 | (1UL << 51));
        var exit = g.Vcpu.Run();
        Assert.Equal(KvmSharp.Abi.KvmExitReason.KVM_EXIT_HLT, exit.Reason);
        var d = g.Single();
        Assert.True(d.Vector == 14 && d.ErrorCode == 0x9 && d.Cr2 == Spare,
            $"vector {d.Vector}, error 0x{d.ErrorCode:X}, CR2 0x{d.Cr2:X}; expected #PF 0x9 at 0x{Spare:X}");
    }
}
