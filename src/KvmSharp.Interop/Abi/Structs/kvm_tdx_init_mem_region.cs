// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary>
/// <c>struct kvm_tdx_init_mem_region</c>, 24 bytes (KVM_TDX_INIT_MEM_REGION): updated in place as pages are added
/// (source_addr and gpa advance, nr_pages counts down) and copied back even on failure.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_tdx_init_mem_region
{
    public ulong source_addr;
    public ulong gpa;
    public ulong nr_pages;
}
