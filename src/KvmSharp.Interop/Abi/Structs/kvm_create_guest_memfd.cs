// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary><c>struct kvm_create_guest_memfd</c> (include/uapi/linux/kvm.h), 64 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_create_guest_memfd
{
    public ulong size;
    public ulong flags;
    /// <summary>Not validated by mainline kvm_gmem_create(); kept zero by the SDK.</summary>
    public U64x6 reserved;
}
