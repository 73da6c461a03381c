// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>arch/x86/kvm/x86.c KVM_SET_SREGS: __set_sregs → __set_sregs_common, the checks before any state changes.</summary>
internal static class SregsRules
{
    public static long Set(X86Cpu cpu, in kvm_sregs sregs)
    {
        if (!IsValidSregs(sregs)) return Err.EINVAL;
        // kvm_apic_set_base(vcpu, sregs->apic_base, true) != 0 → EINVAL.
        if (sregs.apic_base != cpu.Sregs.apic_base && !IsValidApicBase(sregs.apic_base)) return Err.EINVAL;
        var stored = sregs;
        // A pending interrupt in interrupt_bitmap is queued (kvm_queue_interrupt): KVM_GET_SREGS and
        // KVM_GET_VCPU_EVENTS report it from the event state (VcpuStateRules.WithInjectedInterrupt).
        VcpuStateRules.QueueInterruptFromBitmap(cpu, sregs);
        stored.interrupt_bitmap = default;
        // __set_sregs_common: "kvm_set_cr8(vcpu, sregs->cr8)" with its result ignored; kvm_set_cr8 refuses a value
        // with bits above the 4-bit TPR (CR8_RESERVED_BITS), so the old CR8 stays. Found by the differential fuzzer.
        if ((sregs.cr8 & ~0xFUL) != 0) stored.cr8 = cpu.Sregs.cr8;
        cpu.Sregs = stored;
        return 0;
    }

    /// <summary>kvm_is_valid_sregs.</summary>
    private static bool IsValidSregs(in kvm_sregs s)
    {
        if ((s.efer & X86Consts.EFER_LME) != 0 && (s.cr0 & X86Consts.CR0_PG) != 0)
        {
            // "When EFER.LME and CR0.PG are set, the processor is in 64-bit mode": CR4.PAE and EFER.LMA must be set.
            if ((s.cr4 & X86Consts.CR4_PAE) == 0 || (s.efer & X86Consts.EFER_LMA) == 0) return false;
            // kvm_vcpu_is_illegal_gpa(vcpu, cr3).
            if ((s.cr3 >> X86Consts.DefaultMaxPhyAddr) != 0) return false;
        }
        else if ((s.efer & X86Consts.EFER_LMA) != 0 || s.cs.l != 0)
        {
            // Not in 64-bit mode: EFER.LMA is clear and the code segment cannot be 64-bit.
            return false;
        }
        return IsValidCr4(s.cr4) && IsValidCr0(s.cr0);
    }

    /// <summary>kvm_is_valid_cr0 (vmx_is_valid_cr0 adds nothing outside nested VMX).</summary>
    private static bool IsValidCr0(ulong cr0)
    {
        if ((cr0 >> 32) != 0) return false;
        if ((cr0 & X86Consts.CR0_NW) != 0 && (cr0 & X86Consts.CR0_CD) == 0) return false;
        if ((cr0 & X86Consts.CR0_PG) != 0 && (cr0 & X86Consts.CR0_PE) == 0) return false;
        return true;
    }

    /// <summary>__kvm_is_valid_cr4 for a vCPU without KVM_SET_CPUID2 (cr4_guest_rsvd_bits of an empty CPUID).</summary>
    private static bool IsValidCr4(ulong cr4) => (cr4 & ~X86Consts.Cr4ValidWithoutCpuid) == 0;

    /// <summary>
    /// kvm_apic_set_base: reserved bits are the GPA bits above MAXPHYADDR, 0x2ff, and X2APIC_ENABLE (no x2APIC in an
    /// empty CPUID); x2APIC without xAPIC enable is LAPIC_MODE_INVALID.
    /// </summary>
    internal static bool IsValidApicBase(ulong value)
    {
        ulong reserved = (ulong.MaxValue << X86Consts.DefaultMaxPhyAddr) | 0x2ff | (1UL << 10);
        return (value & reserved) == 0;
    }
}
