// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.X86;

namespace KvmSharp;

/// <summary>
/// One x86 MSR as KVM_GET_MSRS / KVM_SET_MSRS exchange it (<c>struct kvm_msr_entry</c>): the MSR number and its
/// 64-bit value.
/// </summary>
/// <param name="Index">The MSR number (ECX of RDMSR/WRMSR), e.g. <see cref="X86Msr.Efer"/>.</param>
/// <param name="Value">The value (EDX:EAX).</param>
public readonly record struct MsrEntry(uint Index, ulong Value)
{
    /// <summary>The uAPI struct (reserved zero).</summary>
    public kvm_msr_entry ToNative() => new() { index = Index, data = Value };

    /// <summary>From the uAPI struct (reserved is dropped).</summary>
    public static MsrEntry FromNative(in kvm_msr_entry e) => new(e.index, e.data);

    /// <inheritdoc/>
    public override string ToString() => $"{X86Msr.NameOf(Index)}=0x{Value:X}";
}

/// <summary>
/// Common x86 MSR numbers (arch/x86/include/asm/msr-index.h, which is not uapi). EFER, FS_BASE, GS_BASE and APIC_BASE
/// are also part of KVM_GET/SET_SREGS and are not in the MSR index list.
/// </summary>
public static class X86Msr
{
    /// <summary>IA32_TIME_STAMP_COUNTER.</summary>
    public const uint Tsc = MsrIndex.IA32_TSC;
    /// <summary>IA32_APIC_BASE.</summary>
    public const uint ApicBase = MsrIndex.IA32_APICBASE;
    /// <summary>IA32_SYSENTER_CS.</summary>
    public const uint SysenterCs = MsrIndex.IA32_SYSENTER_CS;
    /// <summary>IA32_SYSENTER_ESP.</summary>
    public const uint SysenterEsp = MsrIndex.IA32_SYSENTER_ESP;
    /// <summary>IA32_SYSENTER_EIP.</summary>
    public const uint SysenterEip = MsrIndex.IA32_SYSENTER_EIP;
    /// <summary>IA32_MISC_ENABLE.</summary>
    public const uint MiscEnable = MsrIndex.IA32_MISC_ENABLE;
    /// <summary>IA32_PAT (MSR_IA32_CR_PAT).</summary>
    public const uint Pat = MsrIndex.IA32_CR_PAT;
    /// <summary>IA32_EFER.</summary>
    public const uint Efer = MsrIndex.EFER;
    /// <summary>STAR (SYSCALL CS/SS selectors).</summary>
    public const uint Star = MsrIndex.STAR;
    /// <summary>LSTAR (64-bit SYSCALL target).</summary>
    public const uint Lstar = MsrIndex.LSTAR;
    /// <summary>CSTAR (compatibility-mode SYSCALL target).</summary>
    public const uint Cstar = MsrIndex.CSTAR;
    /// <summary>SFMASK (MSR_SYSCALL_MASK: RFLAGS bits SYSCALL clears).</summary>
    public const uint SyscallMask = MsrIndex.SYSCALL_MASK;
    /// <summary>FS.base.</summary>
    public const uint FsBase = MsrIndex.FS_BASE;
    /// <summary>GS.base.</summary>
    public const uint GsBase = MsrIndex.GS_BASE;
    /// <summary>KERNEL_GS_BASE (swapped with GS.base by SWAPGS).</summary>
    public const uint KernelGsBase = MsrIndex.KERNEL_GS_BASE;
    /// <summary>TSC_AUX (RDTSCP/RDPID).</summary>
    public const uint TscAux = MsrIndex.TSC_AUX;
    /// <summary>IA32_MCG_CAP: read-only for the guest and the host; KVM_X86_SETUP_MCE (<see cref="Vcpu.SetupMce"/>) sets it.</summary>
    public const uint McgCap = MsrIndex.IA32_MCG_CAP;
    /// <summary>IA32_MCG_STATUS.</summary>
    public const uint McgStatus = MsrIndex.IA32_MCG_STATUS;
    /// <summary>IA32_MCG_CTL (present with <see cref="KvmSharp.X86.McgCap.CtlP"/>).</summary>
    public const uint McgCtl = MsrIndex.IA32_MCG_CTL;
    /// <summary>IA32_MC0_CTL; bank i's CTL, STATUS, ADDR and MISC are at <c>Mc0Ctl + 4i</c> … <c>Mc0Ctl + 4i + 3</c>.</summary>
    public const uint Mc0Ctl = MsrIndex.IA32_MC0_CTL;
    /// <summary>IA32_MC0_CTL2; bank i's at <c>Mc0Ctl2 + i</c> (with <see cref="KvmSharp.X86.McgCap.CmciP"/>).</summary>
    public const uint Mc0Ctl2 = MsrIndex.IA32_MC0_CTL2;
    /// <summary>MTRRcap (read-only).</summary>
    public const uint MtrrCap = MsrIndex.MTRRcap;
    /// <summary>MTRRphysBase0; variable pair n is <c>MtrrPhysBase0 + 2n</c> (base) and <c>+ 2n + 1</c> (mask).</summary>
    public const uint MtrrPhysBase0 = MsrIndex.MTRRphysBase0;
    /// <summary>MTRRfix64K_00000, the first fixed-range MTRR.</summary>
    public const uint MtrrFix64K00000 = MsrIndex.MTRRfix64K_00000;
    /// <summary>MTRRdefType.</summary>
    public const uint MtrrDefType = MsrIndex.MTRRdefType;

    /// <summary>The msr-index.h name of <paramref name="index"/> (without MSR_ prefix), or its hex number.</summary>
    public static string NameOf(uint index) => index switch
    {
        Tsc => "IA32_TSC",
        ApicBase => "IA32_APICBASE",
        SysenterCs => "IA32_SYSENTER_CS",
        SysenterEsp => "IA32_SYSENTER_ESP",
        SysenterEip => "IA32_SYSENTER_EIP",
        MiscEnable => "IA32_MISC_ENABLE",
        Pat => "IA32_CR_PAT",
        Efer => "EFER",
        Star => "STAR",
        Lstar => "LSTAR",
        Cstar => "CSTAR",
        SyscallMask => "SYSCALL_MASK",
        FsBase => "FS_BASE",
        GsBase => "GS_BASE",
        KernelGsBase => "KERNEL_GS_BASE",
        TscAux => "TSC_AUX",
        McgCap => "IA32_MCG_CAP",
        McgStatus => "IA32_MCG_STATUS",
        McgCtl => "IA32_MCG_CTL",
        MtrrCap => "MTRRcap",
        MtrrDefType => "MTRRdefType",
        >= MtrrPhysBase0 and < MtrrPhysBase0 + 16 => $"MTRRphys{((index & 1) == 0 ? "Base" : "Mask")}{(index - MtrrPhysBase0) / 2}",
        >= Mc0Ctl2 and < Mc0Ctl2 + 32 => $"IA32_MC{index - Mc0Ctl2}_CTL2",
        >= Mc0Ctl and < Mc0Ctl + 4 * 32 => $"IA32_MC{(index - Mc0Ctl) / 4}_{BankMsrNames[(index - Mc0Ctl) % 4]}",
        _ => $"MSR 0x{index:X}",
    };

    private static readonly string[] BankMsrNames = ["CTL", "STATUS", "ADDR", "MISC"];
}
