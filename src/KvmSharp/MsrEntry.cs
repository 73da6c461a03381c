// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

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
    public const uint Tsc = 0x10;
    /// <summary>IA32_APIC_BASE.</summary>
    public const uint ApicBase = 0x1b;
    /// <summary>IA32_SYSENTER_CS.</summary>
    public const uint SysenterCs = 0x174;
    /// <summary>IA32_SYSENTER_ESP.</summary>
    public const uint SysenterEsp = 0x175;
    /// <summary>IA32_SYSENTER_EIP.</summary>
    public const uint SysenterEip = 0x176;
    /// <summary>IA32_MISC_ENABLE.</summary>
    public const uint MiscEnable = 0x1a0;
    /// <summary>IA32_PAT (MSR_IA32_CR_PAT).</summary>
    public const uint Pat = 0x277;
    /// <summary>IA32_EFER.</summary>
    public const uint Efer = 0xc000_0080;
    /// <summary>STAR (SYSCALL CS/SS selectors).</summary>
    public const uint Star = 0xc000_0081;
    /// <summary>LSTAR (64-bit SYSCALL target).</summary>
    public const uint Lstar = 0xc000_0082;
    /// <summary>CSTAR (compatibility-mode SYSCALL target).</summary>
    public const uint Cstar = 0xc000_0083;
    /// <summary>SFMASK (MSR_SYSCALL_MASK: RFLAGS bits SYSCALL clears).</summary>
    public const uint SyscallMask = 0xc000_0084;
    /// <summary>FS.base.</summary>
    public const uint FsBase = 0xc000_0100;
    /// <summary>GS.base.</summary>
    public const uint GsBase = 0xc000_0101;
    /// <summary>KERNEL_GS_BASE (swapped with GS.base by SWAPGS).</summary>
    public const uint KernelGsBase = 0xc000_0102;
    /// <summary>TSC_AUX (RDTSCP/RDPID).</summary>
    public const uint TscAux = 0xc000_0103;

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
        _ => $"MSR 0x{index:X}",
    };
}
