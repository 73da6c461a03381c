// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer
/// <summary><c>__u8 fpr[8][16]</c> of <see cref="kvm_fpu"/>: the x87 registers ST0..ST7, 16 bytes each (fxsave layout).</summary>
[InlineArray(128)] public struct U8x128 { private byte _e0; }
/// <summary><c>__u8 xmm[16][16]</c> of <see cref="kvm_fpu"/>: XMM0..XMM15, 16 bytes each.</summary>
[InlineArray(256)] public struct U8x256 { private byte _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169

/// <summary>
/// <c>struct kvm_fpu</c>, 416 bytes (arch/x86/include/uapi/asm/kvm.h), KVM_GET_FPU / KVM_SET_FPU: the legacy
/// (fxsave) part of the guest FPU state. Note: upstream KVM_GET_FPU does not copy mxcsr out (it reads 0), and
/// KVM_SET_FPU does not copy it in either (KVM_GET_XSAVE shows MXCSR unchanged); pad1/pad2 read 0.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_fpu
{
    public U8x128 fpr;
    public ushort fcw;
    public ushort fsw;
    /// <summary>The abridged (fxsave) tag word: one bit per register.</summary>
    public byte ftwx;
    public byte pad1;
    public ushort last_opcode;
    public ulong last_ip;
    public ulong last_dp;
    public U8x256 xmm;
    public uint mxcsr;
    public uint pad2;
}
