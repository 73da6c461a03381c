// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>x86 <c>struct kvm_segment</c>, 24 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_segment
{
    public ulong @base;
    public uint limit;
    public ushort selector;
    public byte type;
    public byte present, dpl, db, s, l, g, avl;
    public byte unusable;
    public byte padding;
}

/// <summary>x86 <c>struct kvm_dtable</c>, 16 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_dtable
{
    public ulong @base;
    public ushort limit;
    public U16x3 padding;
}

/// <summary>x86 <c>struct kvm_sregs</c>, 312 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_sregs
{
    public kvm_segment cs, ds, es, fs, gs, ss;
    public kvm_segment tr, ldt;
    public kvm_dtable gdt, idt;
    public ulong cr0, cr2, cr3, cr4, cr8;
    public ulong efer;
    public ulong apic_base;
    /// <summary>(KVM_NR_INTERRUPTS + 63) / 64 = 4 words.</summary>
    public U64x4 interrupt_bitmap;
}
