// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// Whether a triple fault is pending (KVM_REQ_TRIPLE_FAULT, e.g. from an uncorrected
    /// <see cref="InjectMachineCheck"/> with CR4.MCE clear, or <see cref="SetTripleFaultPending"/>): the next
    /// <see cref="Run"/> then ends in KVM_EXIT_SHUTDOWN without running the guest, and clears it. A triple fault the
    /// guest causes while running ends that run the same way, so it is not pending afterwards. Null when
    /// <see cref="Vm.EnableTripleFaultEvent"/> is off: the kernel then does not report it
    /// (KVM_VCPUEVENT_VALID_TRIPLE_FAULT clear in <see cref="GetEvents"/>).
    /// </summary>
    /// <exception cref="KvmException">KVM_GET_VCPU_EVENTS failed.</exception>
    public bool? GetTripleFaultPending()
    {
        var events = GetEvents();
        if ((events.flags & KvmVcpuEvents.KVM_VCPUEVENT_VALID_TRIPLE_FAULT) == 0) return null;
        return events.triple_fault_pending != 0;
    }

    /// <summary>
    /// Makes (<paramref name="pending"/> true) or cancels a pending triple fault through KVM_GET_VCPU_EVENTS and
    /// KVM_SET_VCPU_EVENTS with KVM_VCPUEVENT_VALID_TRIPLE_FAULT; the other event state is written back as read (a
    /// queued soft exception or soft interrupt, which the kernel does not report, is lost, as with any such round
    /// trip). Needs <see cref="Vm.EnableTripleFaultEvent"/>.
    /// </summary>
    /// <exception cref="KvmException">
    /// EINVAL: KVM_CAP_X86_TRIPLE_FAULT_EVENT is not enabled on the VM (the other event state is then already written
    /// back, unchanged).
    /// </exception>
    public void SetTripleFaultPending(bool pending)
    {
        var events = GetEvents();
        events.flags |= KvmVcpuEvents.KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
        events.triple_fault_pending = pending ? (byte)1 : (byte)0;
        SetEvents(events);
    }
}
