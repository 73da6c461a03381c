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
        if (!IsValidSregs(sregs, ReservedGpaBits(cpu, kvm), Cr4ReservedBits(cpu, kvm))) return Err.EINVAL;
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
    private static bool IsValidSregs(in kvm_sregs s, ulong reservedGpaBits, ulong cr4ReservedBits)
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
        return (s.cr4 & cr4ReservedBits) == 0 && IsValidCr0(s.cr0);
    }

    /// <summary>kvm_is_valid_cr0 (vmx_is_valid_cr0 adds nothing outside nested VMX).</summary>
    private static bool IsValidCr0(ulong cr0)
    {
        if ((cr0 >> 32) != 0) return false;
        if ((cr0 & X86Consts.CR0_NW) != 0 && (cr0 & X86Consts.CR0_CD) == 0) return false;
        if ((cr0 & X86Consts.CR0_PG) != 0 && (cr0 & X86Consts.CR0_PE) == 0) return false;
        return true;
    }

    /// <summary>
    /// vcpu->arch.cr4_guest_rsvd_bits, which x86.h __kvm_is_valid_cr4 tests (kvm_is_valid_cr4: KVM_SET_SREGS → EINVAL,
    /// kvm_set_cr4 → #GP; svm_is_valid_cr4 adds nothing). With <see cref="EmulatorConfig.X86Cr4ReservedFromGuestCpuid"/>
    /// (upstream 6.18): cpuid.c kvm_vcpu_after_set_cpuid — run by KVM_SET_CPUID2 and (from 6.12) by kvm_arch_vcpu_create
    /// before any table, so a vCPU without one has an empty CPUID — sets it to __cr4_reserved_bits(guest_cpu_cap_has, vcpu):
    /// CR4_RESERVED_BITS plus each feature bit whose CPUID feature the vCPU lacks (<see cref="Cr4Features"/>), where
    /// guest_cpu_cap_has is the guest CPUID bit and KVM's cap (kvm_cpu_caps = KVM_GET_SUPPORTED_CPUID of the model).
    /// Computed on use rather than at KVM_SET_CPUID2: the same result, since the table is what the last call left.
    /// Without the switch (this host, kvm_pvm): the mask this host shows whatever the CPUID
    /// (<see cref="X86Consts.Cr4ValidWithoutCpuid"/>; HostDeviations.KvmPvmKeepsCr4BitsTheGuestCpuidLacks).
    /// </summary>
    internal static ulong Cr4ReservedBits(X86Cpu cpu, Kvm kvm)
    {
        var config = kvm.Kernel.Config;
        if (!config.X86Cr4ReservedFromGuestCpuid) return ~X86Consts.Cr4ValidWithoutCpuid;
        // Before 6.12 kvm_arch_vcpu_create did not call kvm_vcpu_after_set_cpuid: cr4_guest_rsvd_bits stayed 0 until
        // KVM_SET_CPUID2, leaving only the global cr4_reserved_bits (__cr4_reserved_bits(kvm_cpu_cap_has)).
        bool guestTable = cpu.Cpuid.Generation > 0 || config.Generation >= KernelGeneration.Linux616;
        ulong reserved = X86Consts.CR4_RESERVED_BITS;
        // CR4_RESERVED_BITS gained LAM_SUP in 6.8 (LAM) and CET in 6.18 (CET virtualization).
        if (config.Generation < KernelGeneration.Linux68) reserved |= X86Consts.CR4_LAM_SUP;
        if (config.Generation < KernelGeneration.Linux618) reserved |= X86Consts.CR4_CET;
        foreach (var (cr4Bit, features) in Cr4Features)
        {
            bool has = false;
            foreach (var f in features)
                has |= (!guestTable || CpuidBit(cpu.Cpuid.Entries, f)) && CpuidBit(cpu.Model.SupportedCpuid, f);
            if (!has) reserved |= cr4Bit;
        }
        return reserved;
    }

    /// <summary>kvm_is_valid_cr4 for <paramref name="cr4"/> on this vCPU (<see cref="Cr4ReservedBits"/>).</summary>
    internal static bool IsValidCr4(X86Cpu cpu, Kvm kvm, ulong cr4) => (cr4 & Cr4ReservedBits(cpu, kvm)) == 0;

    /// <summary>A CPUID feature bit: leaf, subleaf, register (0 EAX … 3 EDX), bit.</summary>
    private readonly record struct CpuidFeature(uint Function, uint Index, int Reg, int Bit);

    /// <summary>
    /// arch/x86/kvm/x86.h __cr4_reserved_bits (Linux 6.18), in its order: each CR4 bit and the CPUID features of which
    /// any one keeps it valid (CET: SHSTK or IBT). SMXE is in none: CR4_RESERVED_BITS always reserves it.
    /// </summary>
    private static readonly (ulong Cr4Bit, CpuidFeature[] Features)[] Cr4Features =
    [
        (X86Consts.CR4_OSXSAVE, [new(1, 0, 2, 26)]),    // X86_FEATURE_XSAVE: CPUID.1:ECX[26]
        (X86Consts.CR4_SMEP, [new(7, 0, 1, 7)]),        // X86_FEATURE_SMEP: CPUID.7.0:EBX[7]
        (X86Consts.CR4_SMAP, [new(7, 0, 1, 20)]),       // X86_FEATURE_SMAP: CPUID.7.0:EBX[20]
        (X86Consts.CR4_FSGSBASE, [new(7, 0, 1, 0)]),    // X86_FEATURE_FSGSBASE: CPUID.7.0:EBX[0]
        (X86Consts.CR4_PKE, [new(7, 0, 2, 3)]),         // X86_FEATURE_PKU: CPUID.7.0:ECX[3]
        (X86Consts.CR4_LA57, [new(7, 0, 2, 16)]),       // X86_FEATURE_LA57: CPUID.7.0:ECX[16]
        (X86Consts.CR4_UMIP, [new(7, 0, 2, 2)]),        // X86_FEATURE_UMIP: CPUID.7.0:ECX[2]
        (X86Consts.CR4_VMXE, [new(1, 0, 2, 5)]),        // X86_FEATURE_VMX: CPUID.1:ECX[5]
        (X86Consts.CR4_PCIDE, [new(1, 0, 2, 17)]),      // X86_FEATURE_PCID: CPUID.1:ECX[17]
        (X86Consts.CR4_LAM_SUP, [new(7, 1, 0, 26)]),    // X86_FEATURE_LAM: CPUID.7.1:EAX[26]
        (X86Consts.CR4_CET, [new(7, 0, 2, 7), new(7, 0, 3, 20)]), // X86_FEATURE_SHSTK: 7.0:ECX[7], X86_FEATURE_IBT: 7.0:EDX[20]
    ];

    /// <summary>
    /// The bit in the entry cpuid.c kvm_find_cpuid_entry_index finds (an entry without KVM_CPUID_FLAG_SIGNIFCANT_INDEX
    /// answers every index); no entry reads as clear.
    /// </summary>
    private static bool CpuidBit(ReadOnlySpan<kvm_cpuid_entry2> entries, CpuidFeature f)
    {
        foreach (ref readonly var e in entries)
        {
            if (e.function != f.Function) continue;
            if ((e.flags & KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0 && e.index != f.Index) continue;
            uint v = f.Reg switch { 0 => e.eax, 1 => e.ebx, 2 => e.ecx, _ => e.edx };
            return (v & (1u << f.Bit)) != 0;
        }
        return false;
    }
}
