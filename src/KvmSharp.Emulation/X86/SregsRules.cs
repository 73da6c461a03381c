// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>arch/x86/kvm/x86.c KVM_SET_SREGS: __set_sregs → __set_sregs_common, the checks before any state changes.</summary>
internal static class SregsRules
{
    public static long Set(X86Cpu cpu, Kvm kvm, in kvm_sregs sregs)
    {
        if (!IsValidSregs(sregs, ReservedGpaBits(cpu, kvm))) return Err.EINVAL;
        // kvm_apic_set_base(vcpu, sregs->apic_base, true) != 0 → EINVAL.
        if (sregs.apic_base != cpu.Sregs.apic_base && MsrRules.ApicBaseRefused(cpu, sregs.apic_base, hostInitiated: true)) return Err.EINVAL;
        var stored = sregs;
        // A pending interrupt in interrupt_bitmap is queued (kvm_queue_interrupt): KVM_GET_SREGS and
        // KVM_GET_VCPU_EVENTS report it from the event state (VcpuStateRules.WithInjectedInterrupt).
        VcpuStateRules.QueueInterruptFromBitmap(cpu, sregs);
        stored.interrupt_bitmap = default;
        // __set_sregs_common: "kvm_set_cr8(vcpu, sregs->cr8)" with its result ignored; kvm_set_cr8 refuses a value
        // with bits above the 4-bit TPR (CR8_RESERVED_BITS), so the old CR8 stays. Found by the differential fuzzer.
        if ((sregs.cr8 & ~0xFUL) != 0) stored.cr8 = cpu.Sregs.cr8;
        bool baseChanged = stored.apic_base != cpu.Sregs.apic_base;
        cpu.Sregs = stored;
        if (baseChanged) cpu.Msrs.Lapic?.ApicBaseChanged();
        return 0;
    }

    /// <summary>
    /// vcpu->arch.reserved_gpa_bits, which kvm_vcpu_is_legal_cr3 / kvm_vcpu_is_legal_gpa test (KVM_SET_SREGS, MOV CR3):
    /// kvm_vcpu_after_set_cpuid (and kvm_arch_vcpu_create before any CPUID) sets rsvd_bits(cpuid_maxphyaddr, 63) — 36
    /// without KVM_SET_CPUID2, else CPUID.0x80000008 EAX[7:0] (probed on this host: after KVM_SET_CPUID2 with its supported
    /// table, MAXPHYADDR 48, a long-mode CR3 with bit 36, 40 or 47 is accepted, bit 48 or 51 EINVAL; before it bit 36 is
    /// EINVAL). Then svm.c svm_vcpu_after_set_cpuid: "For sev guests, the memory encryption bit is not reserved in CR3":
    /// if sev_guest(kvm) (KVM_SEV_INIT/INIT2 made it active, which must precede every vCPU) and the vCPU's CPUID has leaf
    /// 0x8000001F, bit (EBX &amp; 0x3f) is cleared — the C-bit KVM_GET_SUPPORTED_CPUID reports (X86/CpuidSupported.Sev.cs).
    /// Computed on use here rather than at KVM_SET_CPUID2: the same result, since the table cannot change once sev_guest
    /// could (no vCPU exists before KVM_SEV_INIT2).
    /// </summary>
    internal static ulong ReservedGpaBits(X86Cpu cpu, Kvm kvm)
    {
        int maxPhyAddr = cpu.Cpuid.MaxPhyAddr;
        // rsvd_bits(s, 63): "if (e < s) return 0".
        ulong reserved = maxPhyAddr >= 64 ? 0 : ulong.MaxValue << maxPhyAddr;
        if (Arch.CocoState.Sev(kvm).IsSevGuest && MemoryEncryptionEntry(cpu.Cpuid.Entries) is { } leaf)
            reserved &= ~(1UL << (int)(leaf.ebx & 0x3f));
        return reserved;
    }

    /// <summary>kvm_find_cpuid_entry(vcpu, 0x8000001F): index 0 unless the entry says its index does not matter.</summary>
    private static kvm_cpuid_entry2? MemoryEncryptionEntry(ReadOnlySpan<kvm_cpuid_entry2> entries)
    {
        foreach (var e in entries)
        {
            if (e.function == CpuidSupported.MemoryEncryptionLeaf &&
                ((e.flags & KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX) == 0 || e.index == 0))
                return e;
        }
        return null;
    }

    /// <summary>kvm_is_valid_sregs.</summary>
    private static bool IsValidSregs(in kvm_sregs s, ulong reservedGpaBits)
    {
        if ((s.efer & X86Consts.EFER_LME) != 0 && (s.cr0 & X86Consts.CR0_PG) != 0)
        {
            // "When EFER.LME and CR0.PG are set, the processor is in 64-bit mode": CR4.PAE and EFER.LMA must be set.
            if ((s.cr4 & X86Consts.CR4_PAE) == 0 || (s.efer & X86Consts.EFER_LMA) == 0) return false;
            // "if (!kvm_vcpu_is_legal_cr3(vcpu, sregs->cr3)) return false": no bit of vcpu->arch.reserved_gpa_bits.
            if ((s.cr3 & reservedGpaBits) != 0) return false;
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
}
