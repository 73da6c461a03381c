// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// KVM_GET_SREGS2 / KVM_SET_SREGS2 (arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl, __get_sregs2, __set_sregs2; KVM_CAP_SREGS2
/// since 5.14): KVM_GET/SET_SREGS without the interrupt bitmap, with the PAE PDPTRs and a flags word instead. QEMU uses
/// them whenever KVM_CAP_SREGS2 is offered (target/i386/kvm/kvm.c kvm_put_sregs2 / kvm_get_sregs2).
/// </summary>
internal static class Sregs2
{
    private const ulong PdptrsValid = kvm_sregs2.KVM_SREGS2_FLAGS_PDPTRS_VALID;

    public static bool IsRequest(uint request) => request == KvmIoctls.KVM_GET_SREGS2 || request == KvmIoctls.KVM_SET_SREGS2;

    public static long Ioctl(KvmVcpu vcpu, uint request, IoctlArg arg) =>
        request == KvmIoctls.KVM_GET_SREGS2 ? Get(vcpu, arg) : Set(vcpu, arg);

    /// <summary>
    /// "if (vcpu->kvm->arch.has_protected_state &amp;&amp; vcpu->arch.guest_state_protected) goto out" (EINVAL) before
    /// anything; then __get_sregs2: __get_sregs_common (CR8 from the in-kernel APIC's TPR, kvm_get_cr8), and with PAE
    /// paging (is_pae_paging) the four PDPTRs and KVM_SREGS2_FLAGS_PDPTRS_VALID; the struct is zeroed first (kzalloc).
    /// </summary>
    private static long Get(KvmVcpu vcpu, IoctlArg arg)
    {
        if (ProtectedState.GuestStateProtected(vcpu)) return Err.EINVAL;
        var cpu = vcpu.Cpu;
        var s = From(cpu.Sregs);
        if (vcpu.Lapic is { } apic) s.cr8 = apic.Cr8;
        if (IsPaePaging(cpu))
        {
            for (int i = 0; i < 4; i++) s.pdptrs[i] = cpu.Pdptrs[i];
            s.flags |= PdptrsValid;
        }
        return arg.CopyToUser(s) ? 0 : Err.EFAULT;
    }

    /// <summary>
    /// The protected-state EINVAL, then memdup_user (EFAULT), then __set_sregs2: flags beyond PDPTRS_VALID → EINVAL;
    /// PDPTRS_VALID without PAE paging in the new CR0/CR4/EFER → EINVAL; __set_sregs_common (the checks and state of
    /// KVM_SET_SREGS, which loads the PDPTRs from CR3 only when userspace gave none), then the given PDPTRs. No
    /// interrupt is queued: the struct has no interrupt bitmap.
    /// </summary>
    private static long Set(KvmVcpu vcpu, IoctlArg arg)
    {
        if (ProtectedState.GuestStateProtected(vcpu)) return Err.EINVAL;
        if (!arg.CopyFromUser(out kvm_sregs2 s)) return Err.EFAULT;
        bool validPdptrs = (s.flags & PdptrsValid) != 0;
        bool pae = (s.cr0 & X86Consts.CR0_PG) != 0 && (s.cr4 & X86Consts.CR4_PAE) != 0 && (s.efer & X86Consts.EFER_LMA) == 0;
        if ((s.flags & ~PdptrsValid) != 0) return Err.EINVAL;
        if (validPdptrs && !pae) return Err.EINVAL;
        var cpu = vcpu.Cpu;
        // __set_sregs_common: its checks and the register state, as KVM_SET_SREGS takes them (an all-zero
        // interrupt_bitmap queues nothing).
        long r = SregsRules.Set(cpu, vcpu.Kvm, To(s));
        if (r != 0) return r;
        // "if (update_pdptrs) { if (is_pae_paging(vcpu)) load_pdptrs(vcpu, kvm_read_cr3(vcpu)); }" — its failure ignored.
        if (!validPdptrs && IsPaePaging(cpu))
            _ = Mmu.PageWalkLegacy.LoadPdptrs(vcpu.Memory, cpu.Sregs.cr3, SregsRules.ReservedGpaBits(cpu, vcpu.Kvm), cpu.Pdptrs);
        // kvm_set_cr8: with the APIC in the kernel the TPR takes it (kvm_lapic_set_tpr); reserved bits refuse it.
        if (vcpu.Lapic is { } apic && (s.cr8 & ~0xFUL) == 0) apic.SetCr8(s.cr8);
        // "Older userspace won't unhalt the vcpu on reset": the BSP at RIP 0xfff0 with CS 0xf000 / 0xffff0000 outside
        // protected mode becomes RUNNABLE.
        var cs = cpu.Sregs.cs;
        if ((cpu.Sregs.apic_base & (1UL << 8)) != 0 && cpu.Rip == 0xfff0 && cs.selector == 0xf000
            && cs.@base == 0xffff0000 && (cpu.Sregs.cr0 & 1) == 0)
        {
            cpu.State.MpState = KvmMpState.KVM_MP_STATE_RUNNABLE;
            cpu.State.PvUnhalted = false;
        }
        // "if (valid_pdptrs) { for (i = 0; i < 4; i++) kvm_pdptr_write(vcpu, i, sregs2->pdptrs[i]); … }".
        if (validPdptrs)
            for (int i = 0; i < 4; i++) cpu.Pdptrs[i] = s.pdptrs[i];
        return 0;
    }

    /// <summary>is_pae_paging: CR0.PG, CR4.PAE and not long mode.</summary>
    private static bool IsPaePaging(X86Cpu cpu) =>
        cpu.Paging && !cpu.LongModeActive && (cpu.Sregs.cr4 & X86Consts.CR4_PAE) != 0;

    private static kvm_sregs2 From(in kvm_sregs s) => new()
    {
        cs = s.cs, ds = s.ds, es = s.es, fs = s.fs, gs = s.gs, ss = s.ss, tr = s.tr, ldt = s.ldt,
        gdt = s.gdt, idt = s.idt, cr0 = s.cr0, cr2 = s.cr2, cr3 = s.cr3, cr4 = s.cr4, cr8 = s.cr8,
        efer = s.efer, apic_base = s.apic_base,
    };

    private static kvm_sregs To(in kvm_sregs2 s) => new()
    {
        cs = s.cs, ds = s.ds, es = s.es, fs = s.fs, gs = s.gs, ss = s.ss, tr = s.tr, ldt = s.ldt,
        gdt = s.gdt, idt = s.idt, cr0 = s.cr0, cr2 = s.cr2, cr3 = s.cr3, cr4 = s.cr4, cr8 = s.cr8,
        efer = s.efer, apic_base = s.apic_base,
    };
}
