// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Mmu;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Paging with CR0.PG and without EFER.LMA: 32-bit paging, or PAE paging when CR4.PAE (Intel SDM Vol. 3A 4.1.1;
/// the walks are Mmu/PageWalkLegacy.cs). The PDPTE cache is reloaded where x86.c calls load_pdptrs — a MOV to CR0,
/// CR3 or CR4 that leaves PAE paging on and changes what X86_CR0_PDPTR_BITS / X86_CR4_PDPTR_BITS name, or any MOV
/// to CR3 — and a load that fails makes the MOV #GP with nothing changed.
/// </summary>
internal sealed partial class X86Emulator
{
    private const ulong Cr4Pse = 1UL << 4, Cr4Pge = 1UL << 7, Cr4Smep = 1UL << 20;

    /// <summary>The walk for the current non-long paging mode (mmu.c kvm_calc_cpu_role: PT32E_ROOT_LEVEL with CR4.PAE, else PT32_ROOT_LEVEL).</summary>
    private WalkResult WalkLegacy(ulong linear, PageAccess access)
    {
        bool wp = (_cpu.Sregs.cr0 & CR0_WP) != 0, nxe = (_cpu.Sregs.efer & EFER_NX) != 0;
        return (_cpu.Sregs.cr4 & CR4_PAE) != 0
            ? PageWalkLegacy.WalkPae(_mem, _cpu.Pdptrs, linear, access, wp, nxe, CurrentWalkRules().MaxPhyAddr)
            : PageWalkLegacy.Walk32(_mem, _cpu.Sregs.cr3, linear, access, wp, nxe, pse: (_cpu.Sregs.cr4 & Cr4Pse) != 0);
    }

    /// <summary>
    /// x86.c kvm_set_cr0: "if (!(efer &amp; EFER_LME) &amp;&amp; (cr0 &amp; X86_CR0_PG) &amp;&amp; is_pae(vcpu) &amp;&amp;
    /// ((cr0 ^ old_cr0) &amp; X86_CR0_PDPTR_BITS) &amp;&amp; !load_pdptrs(vcpu, kvm_read_cr3(vcpu))) return 1" (PDPTR bits: CD, NW, PG).
    /// </summary>
    private void ReloadPdptrsForCr0(ulong oldCr0, ulong cr0)
    {
        if ((_cpu.Sregs.cr4 & CR4_PAE) == 0 || ((cr0 ^ oldCr0) & (CR0_CD | CR0_NW | CR0_PG)) == 0) return;
        LoadPdptrsOrFault(_cpu.Sregs.cr3);
    }

    /// <summary>x86.c kvm_set_cr3: "if (is_pae_paging(vcpu) &amp;&amp; !load_pdptrs(vcpu, cr3)) return 1".</summary>
    private void ReloadPdptrsForCr3(ulong cr3)
    {
        if (_cpu.Paging && !_cpu.LongModeActive && (_cpu.Sregs.cr4 & CR4_PAE) != 0) LoadPdptrsOrFault(cr3);
    }

    /// <summary>
    /// x86.c kvm_set_cr4 (not long mode): "is_paging(vcpu) &amp;&amp; (cr4 &amp; X86_CR4_PAE) &amp;&amp; ((cr4 ^ old_cr4) &amp;
    /// X86_CR4_PDPTR_BITS) &amp;&amp; !load_pdptrs(vcpu, kvm_read_cr3(vcpu))" → 1 (PDPTR bits: PGE, PSE, PAE, SMEP).
    /// Setting or clearing CR4.PAE with paging on switches between 32-bit and PAE paging.
    /// </summary>
    private void ReloadPdptrsForCr4(ulong cr4)
    {
        if (!_cpu.Paging || (cr4 & CR4_PAE) == 0 || ((cr4 ^ _cpu.Sregs.cr4) & (Cr4Pge | Cr4Pse | CR4_PAE | Cr4Smep)) == 0) return;
        LoadPdptrsOrFault(_cpu.Sregs.cr3);
    }

    /// <summary>x86.c load_pdptrs failing → the MOV returns 1 → kvm_complete_insn_gp injects #GP(0).</summary>
    private void LoadPdptrsOrFault(ulong cr3)
    {
        if (!PageWalkLegacy.LoadPdptrs(_mem, cr3, SregsRules.ReservedGpaBits(_cpu, _kvm), _cpu.Pdptrs)) throw new GuestFault(GP_VECTOR);
    }
}
