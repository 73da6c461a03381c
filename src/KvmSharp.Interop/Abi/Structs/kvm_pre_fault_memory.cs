// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary><c>struct kvm_pre_fault_memory</c>, 64 bytes (KVM_PRE_FAULT_MEMORY, vCPU ioctl). Updated in place.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_pre_fault_memory
{
    public ulong gpa;
    public ulong size;
    public ulong flags;
    public U64x5 padding;
}
