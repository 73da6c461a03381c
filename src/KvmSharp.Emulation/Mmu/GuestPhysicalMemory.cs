// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Mmu;

/// <summary>
/// One vCPU's view of guest-physical memory: the x86 TDP fault path (arch/x86/kvm/mmu/mmu.c kvm_mmu_do_page_fault →
/// kvm_mmu_faultin_pfn → kvm_mmu_faultin_pfn_gmem / __kvm_faultin_pfn) resolved per access. Guest_memfd pages are
/// reached through a kernel mapping of the bound range, cached per GFN only while kvm->mmu_invalidate_seq is
/// unchanged (every zap — punch hole, conversion, memslot deletion, gmem release — bumps it, as the kernel's
/// mmu_notifier retry does). Userspace-backed pages in anonymous memory mapped through this emulated kernel are used
/// directly and cached the same way (its munmap is the MMU notifier); any other userspace address is read and written
/// through the host's checked process_vm_readv/writev, never cached: nothing tells the emulator when it is unmapped.
/// </summary>
internal sealed partial class GuestPhysicalMemory : IDisposable
{
    /// <summary>
    /// A TD chooses shared vs private per access with a GPA bit: set = shared (kvm_gfn_direct_bits:
    /// gfn_to_gpa(kvm_gfn_direct_bits()) is the shared bit, stripped before the memslot lookup). Bit 51 when
    /// KVM_TDX_INIT_VM has not chosen one (it picks 51 for GPAW 52, 47 for GPAW 48: Arch/X86/TdxLaunch.cs).
    /// </summary>
    public const int SharedBit = 51;

    /// <summary>
    /// The C-bit position of the emulated SEV host: CPUID 0x8000001F EBX[5:0], which KVM_GET_SUPPORTED_CPUID passes
    /// through (arch/x86/kvm/cpuid.c __do_cpuid_func case 0x8000001F clears only NumVMPL and the PA-bits reduction),
    /// and which sev_me_mask / sme_me_mask is built from (arch/x86/kvm/svm/sev.c, arch/x86/mm/mem_encrypt_amd.c) —
    /// 51 on current EPYC parts.
    /// </summary>
    public const int CbitPosition = 51;

    private readonly Kvm _kvm;
    private readonly Dictionary<ulong, CachedPage> _pages = [];
    private readonly Dictionary<KvmMemorySlot, HostMapping> _slotMappings = [];
    private long _seq = -1;

    public GuestPhysicalMemory(Kvm kvm) => _kvm = kvm;

    /// <summary>The dirty ring of the vCPU this view belongs to (kvm_get_running_vcpu()->dirty_ring), or null.</summary>
    public KvmDirtyRing? DirtyRing { get; set; }

    // EmulatorConfig.PageShift / PageSize (the host's page size, fixed for the process), read once.
    private static readonly int s_pageShift = EmulatorConfig.PageShift;
    private static readonly ulong s_pageMask = (ulong)EmulatorConfig.PageSize - 1;

    private static int PageShift => s_pageShift;

    private static ulong PageMask => s_pageMask;

    /// <summary>
    /// Reads <paramref name="data"/>.Length bytes at <paramref name="gpa"/> (the range stays in one page). The GPA is
    /// the one the CPU's translation produced: for SEV, SEV-ES and SNP VMs it carries the C-bit
    /// (<see cref="EncryptionMask"/>) when the access is encrypted; for a TD, the shared bit when it is shared.
    /// </summary>
    public GpaResult Read(ulong gpa, Span<byte> data) => Access(gpa, data, write: false);

    /// <summary>Writes <paramref name="data"/> at <paramref name="gpa"/> (the range stays in one page; as <see cref="Read"/>).</summary>
    public GpaResult Write(ulong gpa, Span<byte> data) => Access(gpa, data, write: true);

    /// <summary>
    /// KVM_PRE_FAULT_MEMORY's kvm_tdp_map_page for one page: resolve without touching the bytes. The access is private
    /// when the GFN is (arch/x86/kvm/mmu/mmu.c kvm_arch_vcpu_pre_fault_memory: "if (kvm_arch_has_private_mem(kvm) &amp;&amp;
    /// kvm_mem_is_private(kvm, gpa_to_gfn(range->gpa))) error_code |= PFERR_PRIVATE_ACCESS"): for SNP that is the
    /// C-bit. A TD's GPA is used as given (a GPA without the shared bit is a private access, as before).
    /// </summary>
    public GpaResult Prefault(ulong gpa)
    {
        if (_kvm.Type == KvmConstants.KVM_X86_SNP_VM && GuestMemoryPath.MemIsPrivate(_kvm, gpa >> PageShift))
            gpa |= EncryptionMask;
        return Access(gpa, Span<byte>.Empty, write: false, mapOnly: true);
    }

    /// <summary>
    /// KVM's fault-in of a TD's private GPA for the TDX module (the EPT violation a TDG.MEM.PAGE.ACCEPT of an unmapped
    /// page exits with, tdx_handle_ept_violation): maps it (PENDING), no guest access.
    /// </summary>
    public GpaResult TdMapPrivate(ulong gpa) => Access(gpa, Span<byte>.Empty, write: false, mapOnly: true);

    /// <summary>
    /// An SNP guest's PVALIDATE of <paramref name="gpa"/> (X86Emulator.Pvalidate.cs): KVM's fault-in of the private GPA
    /// (the #NPF the instruction takes on an unmapped page), which runs sev_gmem_prepare; no guest access.
    /// </summary>
    public GpaResult SnpMapPrivate(ulong gpa) => Access(gpa | EncryptionMask, Span<byte>.Empty, write: false, mapOnly: true);

    /// <summary>True for the VM types whose guests mark encrypted pages with the C-bit: SEV, SEV-ES and SNP.</summary>
    private bool HasCbit => _kvm.Type is KvmConstants.KVM_X86_SEV_VM or KvmConstants.KVM_X86_SEV_ES_VM or KvmConstants.KVM_X86_SNP_VM;

    /// <summary>
    /// The C-bit (1 &lt;&lt; <see cref="CbitPosition"/>) for SEV, SEV-ES and SNP VMs, else 0. In a guest page-table entry
    /// it marks the page encrypted (AMD APM Vol. 2, 15.34.5 "Memory Encryption" — in SEV guests the C-bit of the
    /// guest's own page tables); the GPA that reaches the nested page tables has it stripped and the access's
    /// encryption is reported apart (the #NPF error code's PFERR_GUEST_ENC_MASK, arch/x86/include/asm/kvm_host.h).
    /// The interpreter (the CPU here) sets it for the accesses the hardware always encrypts: page-table walks,
    /// instruction fetches, and every access with paging off (APM 15.34.5; X86Emulator.TranslateAs).
    /// </summary>
    public ulong EncryptionMask => HasCbit ? 1UL << CbitPosition : 0;

    private GpaResult Access(ulong gpa, Span<byte> data, bool write, bool mapOnly = false)
    {
        DropStale();
        ulong gfn = gpa >> PageShift;
        if (_pages.TryGetValue(gfn, out var cached) && (!write || !cached.ReadOnly))
        {
            Copy(cached.Span(gpa & PageMask, data.Length), data, write);
            return GpaResult.Done;
        }
        lock (_kvm.Kernel.SyncRoot)
        {
            long seq = _kvm.MmuInvalidateSeq;
            var r = Fault(ref gpa, write, mapOnly, out var page, out ulong hva, out KvmMemorySlot? logTo);
            if (r.Status != GpaStatus.Done) return r;
            if (page is CachedPage p)
            {
                if (seq == _kvm.MmuInvalidateSeq) _pages[gfn] = p;
                Copy(p.Span(gpa & PageMask, data.Length), data, write);
                return GpaResult.Done;
            }
            if (data.IsEmpty) return GpaResult.Done;
            long rc = write ? HostMemory.WriteProcessMemory(hva, data) : HostMemory.ReadProcessMemory(hva, data);
            // __kvm_faultin_pfn could not get the page: kvm_handle_error_pfn → memory fault exit, -EFAULT (nothing
            // is logged: the page is marked dirty only once it is mapped writable).
            if (rc < 0) return GpaResult.Fault(Err.EFAULT, gpa, false);
            logTo?.MarkDirty(gpa >> PageShift, DirtyRing);
            return GpaResult.Done;
        }
    }

    /// <summary>
    /// The guest's MAXPHYADDR for reserved-bit checks: the vCPU's (<paramref name="cpuidMaxPhyAddr"/>:
    /// cpuid_query_maxphyaddr, 36 without KVM_SET_CPUID2), but 52 for TDX VMs, whose shared bit
    /// (<see cref="SharedBit"/>) is a GPA bit and not reserved. SEV, SEV-ES and SNP keep the vCPU's with the C-bit
    /// exempt (<see cref="EncryptionMask"/>; arch/x86/kvm/svm/sev.c sev_vcpu_after_set_cpuid: "the memory encryption
    /// bit is not reserved", reserved_gpa_bits &amp;= ~(1UL &lt;&lt; (0x8000001F.EBX &amp; 0x3f))).
    /// </summary>
    public int MaxPhyAddr(int cpuidMaxPhyAddr) => _kvm.Type is KvmConstants.KVM_X86_TDX_VM ? 52 : cpuidMaxPhyAddr;

    /// <summary>
    /// kvm_mmu_do_page_fault … kvm_mmu_faultin_pfn for a TDP (direct) MMU. Caller holds the kernel lock.
    /// <paramref name="gpa"/> comes back without the TDX shared bit or the C-bit (the GPA KVM sees).
    /// </summary>
    private GpaResult Fault(ref ulong gpa, bool write, bool mapOnly, out CachedPage? page, out ulong hva, out KvmMemorySlot? logTo)
    {
        page = null;
        hva = 0;
        logTo = null;
        bool isPrivate;
        ulong type = _kvm.Type;
        if (type is KvmConstants.KVM_X86_TDX_VM)
        {
            // The guest's choice: shared bit set → shared, clear → private (see SharedBit). A TD's shared bit is the
            // one KVM_TDX_INIT_VM chose (kvm->arch.gfn_direct_bits: bit 51 for GPAW 52, 47 for GPAW 48).
            ulong shared = Arch.CocoState.Tdx(_kvm).SharedGpaBit is not 0 and var td ? td : 1UL << SharedBit;
            isPrivate = (gpa & shared) == 0;
            gpa &= ~shared;
        }
        else if (type is KvmConstants.KVM_X86_SNP_VM)
        {
            // The C-bit the translation carried is the #NPF's PFERR_GUEST_ENC_MASK, and the GPA arrives without it
            // (svm.c npf_interception: "if (is_sev_snp_guest(vcpu) && (error_code & PFERR_GUEST_ENC_MASK))
            // error_code |= PFERR_PRIVATE_ACCESS"; kvm_mmu_do_page_fault: .is_private = err & PFERR_PRIVATE_ACCESS).
            ulong cbit = EncryptionMask;
            isPrivate = (gpa & cbit) != 0;
            gpa &= ~cbit;
        }
        else if (type is KvmConstants.KVM_X86_SEV_VM or KvmConstants.KVM_X86_SEV_ES_VM)
        {
            // The C-bit selects the guest key in hardware only: these types have no private memory in KVM's sense
            // (svm.c svm_vm_init: has_private_mem only for KVM_X86_SNP_VM; npf_interception sets PFERR_PRIVATE_ACCESS
            // for SNP only), so every access, encrypted or not, is a shared one to the memslot's host memory.
            gpa &= ~EncryptionMask;
            isPrivate = false;
        }
        else
        {
            // kvm_mmu_page_fault: SW_PROTECTED sets PFERR_PRIVATE_ACCESS from the gfn's current attributes.
            isPrivate = type == KvmConstants.KVM_X86_SW_PROTECTED_VM && GuestMemoryPath.MemIsPrivate(_kvm, gpa >> PageShift);
        }
        ulong gfn = gpa >> PageShift;
        // "Now that we have a snapshot of mmu_invalidate_seq we can check for a private vs. shared mismatch."
        if (isPrivate != GuestMemoryPath.MemIsPrivate(_kvm, gfn)) return GpaResult.Fault(Err.EFAULT, gpa, isPrivate);
        var slot = GuestMemoryPath.GfnToMemslot(_kvm, 0, gfn);
        if (slot is null)
        {
            // kvm_handle_noslot_fault: a private access cannot be MMIO.
            return isPrivate ? GpaResult.Fault(Err.EFAULT, gpa, true) : GpaResult.Mmio(gpa);
        }
        // [PATCH v3 05/15] __kvm_mmu_faultin_pfn: "if (kvm_do_userfault(vcpu, fault)) return -EFAULT;" before the
        // private (gmem) and shared fault-in alike, so also before a READONLY slot's write becomes MMIO. Pages already
        // cached here are mapped: like the kernel's SPTEs they do not fault again until the flag is turned on anew.
        if (slot.IsUserfault && Userfault.Check(_kvm, slot, gfn, gpa, isPrivate) is GpaResult userfault) return userfault;
        if (isPrivate || slot.GmemOnly)
        {
            // kvm_mmu_faultin_pfn_gmem.
            if (!slot.HasGmem) return GpaResult.Fault(Err.EFAULT, gpa, isPrivate);
            long r = GuestMemoryPath.GmemGetPfn(slot, gfn, out _);
            if (r != 0) return GpaResult.Fault(r, gpa, isPrivate);
            r = SlotMapping(slot, out var mapping);
            if (r != 0) return GpaResult.Fault(Err.EFAULT, gpa, isPrivate);
            // A runnable TD's private page: KVM's mapping is TDH.MEM.PAGE.AUG (tdx_sept_set_private_spte once
            // TD_STATE_RUNNABLE), PENDING until the TD accepts it; the TD's access to it faults again
            // (Arch/X86/TdxSept.cs). Not cached while PENDING. Before KVM_TDX_FINALIZE_VM no TD runs.
            if (isPrivate && type is KvmConstants.KVM_X86_TDX_VM && Arch.CocoState.Tdx(_kvm).State == Arch.TdState.Runnable &&
                Arch.TdxSept.Map(_kvm, gfn) == Arch.SeptPageState.Pending)
            {
                InstallLeaf(slot, gfn, isPrivate, fromGmem: true);
                return mapOnly ? GpaResult.Done : GpaResult.TdPendingAccess(gpa);
            }
            // SNP: sev_gmem_prepare makes the page assigned (not validated) at its first private fault, and the CPU's
            // RMP check refuses a private access to an unvalidated page with #VC (Arch/X86/SnpRmp.cs). Not cached then.
            if (isPrivate && type is KvmConstants.KVM_X86_SNP_VM && Arch.SnpRmpVmpl.NestedFault(_kvm, slot, gfn))
                return GpaResult.SnpRmpNestedFault(gpa); // the entry's GPA/ASID is another's: RMP #NPF (SnpRmpVmpl.cs)
            if (isPrivate && type is KvmConstants.KVM_X86_SNP_VM && !Arch.SnpRmp.PrivateAccessAllowed(_kvm, slot, gfn))
            {
                InstallLeaf(slot, gfn, isPrivate, fromGmem: true); // mapped; the CPU's RMP check is what refuses it
                return mapOnly ? GpaResult.Done : GpaResult.SnpUnvalidatedAccess(gpa);
            }
            InstallLeaf(slot, gfn, isPrivate, fromGmem: true);
            page = new CachedPage(mapping!, (gfn - slot.BaseGfn) << PageShift, ReadOnly: false, Address: 0);
            return GpaResult.Done;
        }
        // __kvm_faultin_pfn through userspace_addr; a write to a KVM_MEM_READONLY slot is emulated MMIO
        // (KVM_PFN_ERR_RO_FAULT → RET_PF_EMULATE).
        if (write && (slot.Flags & KvmConstants.KVM_MEM_READONLY) != 0) return GpaResult.Mmio(gpa);
        hva = slot.UserspaceAddr + ((gfn - slot.BaseGfn) << PageShift) + (gpa & PageMask);
        // hva_to_pfn: GUP refuses a mapping of a NO_DIRECT_MAP guest_memfd ([PATCH v12 06/16]) → KVM_PFN_ERR_FAULT →
        // kvm_handle_error_pfn: memory fault exit, -EFAULT (gmem slots do not get here: kvm_gmem_get_pfn serves them).
        if (_kvm.Kernel.GupRefuses(hva)) return GpaResult.Fault(Err.EFAULT, gpa, false);
        InstallLeaf(slot, gfn, isPrivate: false, fromGmem: false);
        // Anonymous memory mapped through this kernel is used directly and cached like a mapped pfn: its munmap
        // invalidates and waits for vCPUs first (EmulatedKernel.ForgetAnonymous). A dirty-logged slot is cached
        // read-only, so every write still faults here and is marked (KVM write-protects logged pages the same way).
        ulong pageHva = hva & ~PageMask;
        bool writable = (slot.Flags & KvmConstants.KVM_MEM_READONLY) == 0;
        if (_kvm.Kernel.IsDirectlyUsable((nint)pageHva, PageMask + 1, write: writable))
        {
            page = new CachedPage(null, 0, ReadOnly: !writable || slot.DirtyTrackEnabled, Address: (nint)pageHva);
            // A write fault on a dirty-logged slot (write-protected by KVM) marks the page: mark_page_dirty_in_slot
            // (with a dirty ring, a push to this vCPU's ring the first time after a reset: KvmMemorySlot.MarkDirty).
            if (write) slot.MarkDirty(gfn, DirtyRing);
        }
        else if (write)
        {
            logTo = slot; // marked once the write through process_vm_writev succeeded
        }
        return GpaResult.Done;
    }

    /// <summary>
    /// kvm_mmu_hugepage_adjust + kvm_tdp_mmu_map: the leaf this fault installs, at the level
    /// <see cref="MmuMappingLevel.ForFault"/> allows, recorded for <see cref="GuestMappingInspection"/>. The bytes are
    /// still reached per 4 KiB page (the level changes what a zap removes and what the inspection reports).
    /// </summary>
    private void InstallLeaf(KvmMemorySlot slot, ulong gfn, bool isPrivate, bool fromGmem)
    {
        int order = fromGmem ? MmuMappingLevel.GmemMaxOrder(slot, gfn) : 0;
        int level = MmuMappingLevel.ForFault(_kvm, slot, gfn, isPrivate, fromGmem, order);
        ulong head = gfn & ~((1UL << MmuMappingLevel.GfnShift(level)) - 1);
        MmuMappings.Install(_kvm, new MmuLeaf(head, level, isPrivate, order));
    }

    /// <summary>A kernel mapping of the slot's whole guest_memfd range, made once per invalidation epoch.</summary>
    private long SlotMapping(KvmMemorySlot slot, out HostMapping? mapping)
    {
        if (_slotMappings.TryGetValue(slot, out mapping)) return 0;
        long r = slot.GmemFile!.GmemInode.MapForKernel(slot.GmemPgoff, slot.NPages, out mapping);
        if (r != 0) return r;
        _slotMappings[slot] = mapping!;
        return 0;
    }

    /// <summary>Drops every cached translation when mmu_invalidate_seq moved (is_page_fault_stale).</summary>
    private void DropStale()
    {
        long seq = _kvm.MmuInvalidateSeq;
        if (seq == _seq) return;
        Clear();
        _seq = seq;
    }

    private void Clear()
    {
        _pages.Clear();
        ClearStage2();
        foreach (var m in _slotMappings.Values) m.Dispose();
        _slotMappings.Clear();
    }

    private static void Copy(Span<byte> page, Span<byte> data, bool write)
    {
        if (write) data.CopyTo(page);
        else page.CopyTo(data);
    }

    public void Dispose()
    {
        _disposed = true;
        Clear();
    }

    /// <summary>A page the vCPU may use directly: a kernel mapping of guest_memfd, or this process's anonymous memory.</summary>
    private readonly record struct CachedPage(HostMapping? Mapping, ulong Offset, bool ReadOnly, nint Address)
    {
        public Span<byte> Span(ulong offsetInPage, int length) => Mapping is not null
            ? Mapping.GetSpan(Offset + offsetInPage, length)
            : HostMemory.UnownedSpan(Address + (nint)offsetInPage, length);
    }
}
