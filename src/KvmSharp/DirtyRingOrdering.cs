// SPDX-License-Identifier: MIT
namespace KvmSharp;

/// <summary>Which dirty ring capability a VM enables; both give the same ring, only the documented protocol differs.</summary>
public enum DirtyRingOrdering
{
    /// <summary>
    /// KVM_CAP_DIRTY_LOG_RING: for hosts with total store order (x86), where KVM and userspace may use plain loads and
    /// stores on an entry's flags.
    /// </summary>
    TotalStoreOrder,

    /// <summary>
    /// KVM_CAP_DIRTY_LOG_RING_ACQ_REL: userspace reads an entry's flags with acquire and publishes its "collected"
    /// mark with release ordering (what <see cref="DirtyRing"/> always does), so the ring also works on weakly
    /// ordered hosts.
    /// </summary>
    AcquireRelease,
}
