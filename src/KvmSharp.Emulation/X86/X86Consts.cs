// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86;

/// <summary>Architectural bits (arch/x86/include/asm/processor-flags.h, msr-index.h, kvm_host.h).</summary>
internal static class X86Consts
{
    public const ulong RFLAGS_CF = 1UL << 0;
    public const ulong RFLAGS_FIXED = 1UL << 1;
    public const ulong RFLAGS_PF = 1UL << 2;
    public const ulong RFLAGS_AF = 1UL << 4;
    public const ulong RFLAGS_ZF = 1UL << 6;
    public const ulong RFLAGS_SF = 1UL << 7;
    public const ulong RFLAGS_TF = 1UL << 8;
    public const ulong RFLAGS_IF = 1UL << 9;
    public const ulong RFLAGS_DF = 1UL << 10;
    public const ulong RFLAGS_OF = 1UL << 11;
    public const ulong RFLAGS_NT = 1UL << 14;
    public const ulong RFLAGS_RF = 1UL << 16;
    public const ulong RFLAGS_VM = 1UL << 17;
    public const ulong RFLAGS_ARITH = RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF;

    public const ulong CR0_PE = 1UL << 0;
    public const ulong CR0_ET = 1UL << 4;
    public const ulong CR0_NW = 1UL << 29;
    public const ulong CR0_CD = 1UL << 30;
    public const ulong CR0_WP = 1UL << 16;
    public const ulong CR0_PG = 1UL << 31;

    public const ulong CR4_PAE = 1UL << 5;
    public const ulong CR4_UMIP = 1UL << 11;
    public const ulong CR4_LA57 = 1UL << 12;
    public const ulong CR4_VMXE = 1UL << 13;
    public const ulong CR4_FSGSBASE = 1UL << 16;
    public const ulong CR4_PCIDE = 1UL << 17;
    public const ulong CR4_OSXSAVE = 1UL << 18;
    public const ulong CR4_SMEP = 1UL << 20;
    public const ulong CR4_SMAP = 1UL << 21;
    public const ulong CR4_PKE = 1UL << 22;
    public const ulong CR4_CET = 1UL << 23;
    public const ulong CR4_LAM_SUP = 1UL << 28;

    /// <summary>
    /// arch/x86/include/asm/kvm_host.h CR4_RESERVED_BITS (6.18): every bit but VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR
    /// PCIDE OSXSAVE SMEP FSGSBASE OSXMMEXCPT LA57 VMXE SMAP PKE UMIP LAM_SUP CET (SMXE, bit 14, is reserved).
    /// </summary>
    public const ulong CR4_RESERVED_BITS = ~(0x7ffUL | CR4_PCIDE | CR4_OSXSAVE | CR4_SMEP | CR4_FSGSBASE | CR4_LA57 | CR4_VMXE |
        CR4_SMAP | CR4_PKE | CR4_UMIP | CR4_LAM_SUP | CR4_CET);

    /// <summary>x86.h X86_CR3_PCID_MASK (bits 11:0): kvm_set_cr4 refuses to turn PCIDE on while CR3 has any.</summary>
    public const ulong CR3_PCID_MASK = 0xfff;

    public const ulong EFER_SCE = 1UL << 0;
    public const ulong EFER_LME = 1UL << 8;
    public const ulong EFER_LMA = 1UL << 10;
    public const ulong EFER_NX = 1UL << 11;

    // Exception vectors (arch/x86/include/asm/trapnr.h).
    public const int DE_VECTOR = 0;
    public const int BP_VECTOR = 3;
    public const int OF_VECTOR = 4;
    public const int UD_VECTOR = 6;
    public const int DF_VECTOR = 8;
    public const int TS_VECTOR = 10;
    public const int NP_VECTOR = 11;
    public const int SS_VECTOR = 12;
    public const int GP_VECTOR = 13;
    public const int PF_VECTOR = 14;
    /// <summary>#VE, the virtualization exception (a TD's instructions the TDX module does not run itself).</summary>
    public const int VE_VECTOR = 20;

    /// <summary>Guest MAXPHYADDR without KVM_SET_CPUID2: cpuid_query_maxphyaddr() falls back to 36.</summary>
    public const int DefaultMaxPhyAddr = 36;

    /// <summary>
    /// CR4 bits KVM_SET_SREGS accepts on a vCPU whose CPUID was never set: CR4_RESERVED_BITS | cr4_guest_rsvd_bits
    /// (arch/x86/kvm/x86.h __cr4_reserved_bits). Observed on this host bit by bit: VME … OSXMMEXCPT, UMIP (11),
    /// FSGSBASE (16), OSXSAVE (18), SMEP (20), PKE (22) — the guest-reserved bits follow the host's caps here, and stay
    /// the same after KVM_SET_CPUID2 (HostDeviations.KvmPvmKeepsCr4BitsTheGuestCpuidLacks). The mask of every vCPU
    /// without EmulatorConfig.X86Cr4ReservedFromGuestCpuid (SregsRules.Cr4ReservedBits).
    /// </summary>
    public const ulong Cr4ValidWithoutCpuid = 0x75_0fff;
}
