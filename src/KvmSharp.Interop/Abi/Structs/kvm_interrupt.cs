// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary><c>struct kvm_interrupt</c>, 4 bytes (KVM_INTERRUPT, vCPU ioctl).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_interrupt
{
    /// <summary>The interrupt vector (x86: below KVM_NR_INTERRUPTS, 256).</summary>
    public uint irq;
}
