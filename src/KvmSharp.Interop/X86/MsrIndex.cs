// SPDX-License-Identifier: MIT
namespace KvmSharp.X86;

/// <summary>
/// x86 MSR numbers in the kernel's spelling (arch/x86/include/asm/msr-index.h, without the MSR_ prefix). Not uapi, so
/// outside Abi and its C oracle; one table for the SDK (<c>X86Msr</c>), the emulator and the sandbox.
/// </summary>
public static class MsrIndex
{
    public const uint IA32_P5_MC_ADDR = 0x0;
    public const uint IA32_P5_MC_TYPE = 0x1;
    public const uint IA32_TSC = 0x10;
    public const uint IA32_APICBASE = 0x1b;
    /// <summary>IA32_TSC_ADJUST (CPUID.(7,0).EBX[1]): what has been added to the TSC since reset.</summary>
    public const uint IA32_TSC_ADJUST = 0x3b;
    public const uint IA32_UCODE_REV = 0x8b;
    /// <summary>MTRRcap (read-only): VCNT in bits 7:0, FIX bit 8, WC bit 10.</summary>
    public const uint MTRRcap = 0xfe;
    public const uint IA32_ARCH_CAPABILITIES = 0x10a;
    public const uint IA32_SYSENTER_CS = 0x174;
    public const uint IA32_SYSENTER_ESP = 0x175;
    public const uint IA32_SYSENTER_EIP = 0x176;
    /// <summary>IA32_MCG_CAP: bank count in bits 7:0, the capability bits in <see cref="McgCap"/>.</summary>
    public const uint IA32_MCG_CAP = 0x179;
    public const uint IA32_MCG_STATUS = 0x17a;
    public const uint IA32_MCG_CTL = 0x17b;
    public const uint IA32_MISC_ENABLE = 0x1a0;
    /// <summary>MTRRphysBase0; MTRRphysMask0 is 0x201, pair n at 0x200 + 2n.</summary>
    public const uint MTRRphysBase0 = 0x200;
    public const uint MTRRfix64K_00000 = 0x250;
    public const uint MTRRfix16K_80000 = 0x258;
    public const uint MTRRfix16K_A0000 = 0x259;
    /// <summary>The first of the eight 4K fixed-range MTRRs (C0000 … F8000 at 0x268 … 0x26f).</summary>
    public const uint MTRRfix4K_C0000 = 0x268;
    public const uint MTRRfix4K_F8000 = 0x26f;
    public const uint IA32_CR_PAT = 0x277;
    /// <summary>IA32_MC0_CTL2 (CMCI control of bank 0); bank i at 0x280 + i.</summary>
    public const uint IA32_MC0_CTL2 = 0x280;
    public const uint MTRRdefType = 0x2ff;
    /// <summary>IA32_MC0_CTL; bank i has CTL, STATUS, ADDR, MISC at 0x400 + 4i … 0x403 + 4i.</summary>
    public const uint IA32_MC0_CTL = 0x400;
    public const uint EFER = 0xc000_0080;
    public const uint STAR = 0xc000_0081;
    public const uint LSTAR = 0xc000_0082;
    public const uint CSTAR = 0xc000_0083;
    public const uint SYSCALL_MASK = 0xc000_0084;
    public const uint FS_BASE = 0xc000_0100;
    public const uint GS_BASE = 0xc000_0101;
    public const uint KERNEL_GS_BASE = 0xc000_0102;
    public const uint TSC_AUX = 0xc000_0103;

    /// <summary>MSR_IA32_CR_PAT_DEFAULT (PAT_VALUE(WB, WT, UC_MINUS, UC, WB, WT, UC_MINUS, UC)): PAT of a new vCPU.</summary>
    public const ulong IA32_CR_PAT_DEFAULT = 0x0007_0406_0007_0406;
}
