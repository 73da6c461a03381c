// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// The hypercalls a VM may forward to userspace as KVM_EXIT_HYPERCALL (KVM_CAP_EXIT_HYPERCALL's bit mask:
/// bit n = hypercall number n). x86 only; arm64 reports none.
/// </summary>
[Flags]
public enum HypercallExits : ulong
{
    /// <summary>No hypercall exits to userspace.</summary>
    None = 0,

    /// <summary>KVM_HC_MAP_GPA_RANGE: a confidential guest asks to convert a range between private and shared.</summary>
    MapGpaRange = 1UL << (int)KvmPara.KVM_HC_MAP_GPA_RANGE,
}
