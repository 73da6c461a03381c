// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary><c>struct kvm_x86_mce</c>, 64 bytes (KVM_X86_SET_MCE, vCPU ioctl; arch/x86/include/uapi/asm/kvm.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_x86_mce
{
    /// <summary>The bank's new IA32_MCi_STATUS (must have VAL, bit 63).</summary>
    public ulong status;
    /// <summary>The bank's new IA32_MCi_ADDR.</summary>
    public ulong addr;
    /// <summary>The bank's new IA32_MCi_MISC.</summary>
    public ulong misc;
    /// <summary>IA32_MCG_STATUS for an uncorrected error (RIPV, EIPV, MCIP).</summary>
    public ulong mcg_status;
    /// <summary>The bank number, below the vCPU's MCG_CAP bank count.</summary>
    public byte bank;
    /// <summary>Padding.</summary>
    public U8x7 pad1;
    /// <summary>Padding.</summary>
    public U64x3 pad2;
}
