// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): <see cref="MemorySlot.GetDirtyLog()"/> stops clearing the
    /// log; the VMM clears the pages a log reported with <see cref="MemorySlot.ClearDirtyLog(DirtyPageLog)"/> and only
    /// then copies them (clearing re-protects the pages, so a write that lands during the copy is logged again rather
    /// than lost), with less write-protection churn for large slots. With <paramref name="initiallySet"/>, slots that start logging
    /// afterwards report every page dirty until cleared. Enable it before creating the logging slots.
    /// </summary>
    public void EnableManualDirtyLogProtect(bool initiallySet = false) =>
        EnableCapability(KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
            KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | (initiallySet ? KvmConstants.KVM_DIRTY_LOG_INITIALLY_SET : 0));
}
