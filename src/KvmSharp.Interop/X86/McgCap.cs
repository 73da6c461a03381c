// SPDX-License-Identifier: MIT
namespace KvmSharp.X86;

/// <summary>
/// The fields of IA32_MCG_CAP (arch/x86/include/asm/mce.h, not uapi): what KVM_X86_SETUP_MCE takes and
/// KVM_X86_GET_MCE_CAP_SUPPORTED reports.
/// </summary>
public static class McgCap
{
    /// <summary>MCG_BANKCNT_MASK: bits 7:0, the number of machine-check banks.</summary>
    public const ulong BankCountMask = 0xff;
    /// <summary>MCG_CTL_P: IA32_MCG_CTL is present.</summary>
    public const ulong CtlP = 1UL << 8;
    /// <summary>MCG_EXT_P: MCG_EXT_CNT (bits 23:16) is valid.</summary>
    public const ulong ExtP = 1UL << 9;
    /// <summary>MCG_CMCI_P: corrected-error interrupts; the banks have IA32_MCi_CTL2.</summary>
    public const ulong CmciP = 1UL << 10;
    /// <summary>MCG_EXT_CNT: bits 23:16 (KVM_X86_SETUP_MCE accepts any value there).</summary>
    public const ulong ExtCntMask = 0xff_0000;
    /// <summary>MCG_SER_P: software error recovery.</summary>
    public const ulong SerP = 1UL << 24;
    /// <summary>MCG_LMCE_P: local machine checks (Intel).</summary>
    public const ulong LmceP = 1UL << 27;
}
