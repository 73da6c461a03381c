// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// x86 <c>struct kvm_sregs2</c> (arch/x86/include/uapi/asm/kvm.h), 320 bytes (KVM_GET_SREGS2 / KVM_SET_SREGS2,
/// KVM_CAP_SREGS2): <see cref="kvm_sregs"/> without the interrupt bitmap, with a flags word and the four PAE PDPTRs.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sregs2
{
    public kvm_segment cs, ds, es, fs, gs, ss;
    public kvm_segment tr, ldt;
    public kvm_dtable gdt, idt;
    public ulong cr0, cr2, cr3, cr4, cr8;
    public ulong efer;
    public ulong apic_base;
    public ulong flags;
    public U64x4 pdptrs;

    /// <summary>KVM_SREGS2_FLAGS_PDPTRS_VALID: <see cref="pdptrs"/> holds the PAE PDPTRs (the only flag).</summary>
    public const ulong KVM_SREGS2_FLAGS_PDPTRS_VALID = 1;
}
