// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.MemoryAttributes;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// One entry of the Reverse Map Table as far as the emulator models it (AMD APM Vol. 2, 15.36.3 "Reverse Map Table";
/// arch/x86/virt/svm/sev.c struct rmpentry): <see cref="Assigned"/> (the page is owned by a guest, not the
/// hypervisor), <see cref="Validated"/> (the guest's PVALIDATE accepted it, or the firmware did at launch),
/// <see cref="Large"/> (a 2 MiB entry), <see cref="Vmsa"/> and <see cref="Immutable"/>. Its ASID, GPA and VMPL
/// permission masks are kept apart (<see cref="SnpRmpVmpl"/>, <see cref="RmpOwner"/>).
/// </summary>
internal readonly record struct RmpEntry(bool Assigned, bool Validated, bool Large = false, bool Vmsa = false, bool Immutable = false);

/// <summary>
/// The RMP of the emulated SNP host, for the pages SNP guests use. The RMP is indexed by host page; a private page of
/// an SNP guest is always a guest_memfd page (kvm_gmem_get_pfn serves every private fault), so an entry is kept per
/// (guest_memfd inode, page index) — the host page itself — and not per GPA: an entry follows its page when the
/// memslot moves or goes away, as the hardware's does, and punching the page out forgets it. A guest_memfd belongs to
/// the VM that created it, so these entries are that VM's part of the RMP. Entries only exist for SNP VMs (SEV and
/// SEV-ES have no RMP); everything else reads as a hypervisor-owned (shared) entry. Callers hold the kernel lock.
/// <list type="bullet">
/// <item><see cref="Prepare"/>: sev_gmem_prepare (arch/x86/kvm/svm/sev.c), the first private fault of a page —
/// rmp_make_private: assigned, not validated.</item>
/// <item><see cref="LaunchUpdated"/>: SNP_LAUNCH_UPDATE (snp_launch_update → sev_gmem_post_populate): the firmware
/// leaves NORMAL/ZERO/UNMEASURED/SECRETS/CPUID pages assigned and validated; <see cref="MarkVmsa"/> for each vCPU's
/// VMSA at LAUNCH_FINISH (snp_launch_update_vmsa).</item>
/// <item><see cref="Invalidate"/>: sev_gmem_invalidate on punch-hole / truncate (kvm_gmem_free_folio) and, with
/// in-place conversion, on conversion to shared — rmp_make_shared: not assigned, not validated.</item>
/// <item><see cref="Pvalidate"/>: the guest's PVALIDATE (AMD APM Vol. 3, PVALIDATE).</item>
/// </list>
/// </summary>
internal static class SnpRmp
{
    /// <summary>arch/x86/include/asm/sev.h: PVALIDATE_FAIL_INPUT, PVALIDATE_FAIL_SIZEMISMATCH (the CPU's EAX codes).</summary>
    public const int PvalidateSuccess = 0, PvalidateFailInput = 1, PvalidateFailSizeMismatch = 6;

    /// <summary>Pages of a 2 MiB RMP entry (PTRS_PER_PMD).</summary>
    public const ulong PagesPer2M = 512;

    private static readonly ConditionalWeakTable<GmemInode, RangeMap<RmpEntry>> s_entries = [];
    private static readonly ConditionalWeakTable<KvmVcpu, StrongBox<RmpEntry>> s_vmsa = [];

    /// <summary>The entry of page <paramref name="index"/> of <paramref name="inode"/> (default: hypervisor-owned).</summary>
    public static RmpEntry Get(GmemInode inode, ulong index) =>
        s_entries.TryGetValue(inode, out var map) ? map.Get(index) : default;

    /// <summary>The entry of the page bound at <paramref name="gfn"/> through its gmem memslot, or null without one.</summary>
    public static RmpEntry? AtGfn(Kvm kvm, ulong gfn)
    {
        var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, gfn);
        if (slot?.GmemFile is not GmemFile f) return null;
        return Get(f.GmemInode, gfn - slot.BaseGfn + slot.GmemPgoff);
    }

    /// <summary>
    /// sev_gmem_prepare for a private fault of an SNP VM's page (kvm_gmem_get_pfn → kvm_arch_gmem_prepare):
    /// "if (assigned) { … already private …; return 0; }", else rmp_make_private(pfn_aligned, gpa, level, asid, false)
    /// — assigned, NOT validated (the guest must PVALIDATE it). The level is 2 MiB when is_large_rmp_possible: the
    /// folio is at least PMD order (a HugeTLB guest_memfd of 2 MiB or larger pages) and the index and GFN are 2 MiB
    /// aligned alike; every 4 KiB order-0 folio of 6.18 gets a 4 KiB entry. "if (!sev_snp_guest(kvm)) return 0;": a VM
    /// that is not an SNP guest (another type, or an SNP VM before KVM_SEV_INIT2) has no RMP entries.
    /// Returns the page's entry after it.
    /// </summary>
    public static RmpEntry Prepare(Kvm kvm, KvmMemorySlot slot, ulong gfn)
    {
        var inode = slot.GmemFile!.GmemInode;
        ulong index = gfn - slot.BaseGfn + slot.GmemPgoff;
        var entry = Get(inode, index);
        if (!IsSnpGuest(kvm) || entry.Assigned) return entry;
        ulong start = index, end = index + 1;
        // is_large_rmp_possible: max_order >= PMD_ORDER and the pfn / gfn alignment of the whole PMD (the gmem folio's
        // order bounds max_order; kvm_gmem_get_pfn's max_order also needs the GFN range aligned the same way).
        if (inode.PageOrder >= 9 && (index % PagesPer2M) == (gfn % PagesPer2M))
        {
            start = index - index % PagesPer2M;
            end = Math.Min(start + PagesPer2M, inode.NrPages);
            if (end - start != PagesPer2M || !Map(inode).AllEqual(start, end, default)) (start, end) = (index, index + 1);
        }
        bool large = end - start == PagesPer2M;
        Map(inode).Set(start, end, new RmpEntry(Assigned: true, Validated: false, Large: large));
        SnpRmpVmpl.MadePrivate(kvm, inode, start, end, gfn - (index - start)); // rmp_make_private(…, gpa, level, asid, …)
        return Get(inode, index);
    }

    /// <summary>
    /// A private access of an SNP guest to the page at <paramref name="gfn"/> after KVM's fault-in (<see cref="Prepare"/>):
    /// false when the CPU's RMP check refuses it because the page is assigned but not validated (AMD APM Vol. 2, 15.36
    /// "Page Validation": #VC 0x404). Always true for a VM that is not an SNP guest.
    /// </summary>
    public static bool PrivateAccessAllowed(Kvm kvm, KvmMemorySlot slot, ulong gfn) => !IsSnpGuest(kvm) || Prepare(kvm, slot, gfn).Validated;

    /// <summary>sev_snp_guest(kvm): an SNP VM after KVM_SEV_INIT2.</summary>
    public static bool IsSnpGuest(Kvm kvm) => kvm.Type == KvmConstants.KVM_X86_SNP_VM && CocoState.Sev(kvm).IsSnpGuest;

    /// <summary>
    /// sev_gmem_post_populate after SNP_LAUNCH_UPDATE of a page succeeded: rmp_make_private then the firmware's
    /// RMPUPDATE with Validated = 1 for the page types it launches (SEV-SNP firmware ABI, SNP_LAUNCH_UPDATE: "the
    /// firmware … sets the Validated bit").
    /// </summary>
    public static void LaunchUpdated(Kvm kvm, GmemInode inode, ulong index, ulong gfn)
    {
        Map(inode).Set(index, index + 1, new RmpEntry(Assigned: true, Validated: true));
        SnpRmpVmpl.MadePrivate(kvm, inode, index, index + 1, gfn); // ASID, GPA; VMPL1–3 masks 0
    }

    /// <summary>
    /// snp_launch_update_vmsa: rmp_make_private(VMSA page) and SNP_LAUNCH_UPDATE of type VMSA — the firmware marks it
    /// assigned, validated and a VMSA. The VMSA is a KVM page, not guest memory: its entry is kept per vCPU.
    /// </summary>
    public static void MarkVmsa(KvmVcpu vcpu) =>
        s_vmsa.AddOrUpdate(vcpu, new StrongBox<RmpEntry>(new RmpEntry(Assigned: true, Validated: true, Vmsa: true)));

    /// <summary>The RMP entry of <paramref name="vcpu"/>'s VMSA page (default before LAUNCH_FINISH).</summary>
    public static RmpEntry VmsaEntry(KvmVcpu vcpu) => s_vmsa.TryGetValue(vcpu, out var box) ? box.Value : default;

    /// <summary>
    /// sev_gmem_invalidate (arch/x86/kvm/svm/sev.c) for pages [start, end): "if (!assigned) continue; … rmp_make_shared"
    /// — the entries go back to the hypervisor, neither assigned nor validated. A 2 MiB entry partly inside the range
    /// is made shared whole (rmp_make_shared(pfn, PG_LEVEL_2M) "if use_2m_update").
    /// </summary>
    public static void Invalidate(GmemInode inode, ulong start, ulong end)
    {
        if (!s_entries.TryGetValue(inode, out var map) || start >= end) return;
        foreach (var (s, e, v) in map.Segments(start, end).ToArray())
        {
            if (!v.Large)
            {
                map.Set(s, e, default);
                SnpRmpVmpl.MadeShared(inode, s, e);
                continue;
            }
            ulong a = s - s % PagesPer2M, b = e + (PagesPer2M - e % PagesPer2M) % PagesPer2M;
            map.Set(a, b, default);
            SnpRmpVmpl.MadeShared(inode, a, b);
        }
    }

    /// <summary>
    /// PVALIDATE's RMP update (AMD APM Vol. 3, PVALIDATE) of the entry of page <paramref name="index"/>, which the
    /// caller has made assigned (KVM's fault-in). <paramref name="large"/>: the 2 MiB form (ECX = 1). Returns the EAX
    /// code and whether the Validated bit was already as requested (CF = 1, no update — Linux's
    /// PVALIDATE_FAIL_NOUPDATE, arch/x86/include/asm/sev.h pvalidate()).
    /// <list type="bullet">
    /// <item>The entry's page size differs from the requested one → PVALIDATE_FAIL_SIZEMISMATCH (Linux's pval_pages
    /// then validates the 2 MiB range as 512 4 KiB pages). The 4 KiB form on a 2 MiB entry does not get here: it is
    /// an #NPF KVM answers with PSMASH first (SnpRmpVmpl.PsmashFor4K, from X86Emulator.Pvalidate.cs).</item>
    /// <item>Else the Validated bit of the entry (all 512 pages of a 2 MiB one) takes EDX[0]; CF = 1 when it already
    /// had that value.</item>
    /// </list>
    /// </summary>
    public static (int Rc, bool NoUpdate) Pvalidate(GmemInode inode, ulong index, bool large, bool validate)
    {
        var map = Map(inode);
        var entry = map.Get(index);
        if (entry.Large != large) return (PvalidateFailSizeMismatch, false);
        if (entry.Validated == validate) return (PvalidateSuccess, true);
        ulong start = large ? index - index % PagesPer2M : index;
        ulong end = large ? start + PagesPer2M : index + 1;
        map.Set(start, end, entry with { Validated = validate });
        return (PvalidateSuccess, false);
    }

    /// <summary>Sets the entries of pages [<paramref name="start"/>, <paramref name="end"/>) (PSMASH, RMPADJUST: SnpRmpVmpl.cs).</summary>
    public static void SetRange(GmemInode inode, ulong start, ulong end, RmpEntry entry) => Map(inode).Set(start, end, entry);

    private static RangeMap<RmpEntry> Map(GmemInode inode) => s_entries.GetValue(inode, _ => new RangeMap<RmpEntry>(default));
}
