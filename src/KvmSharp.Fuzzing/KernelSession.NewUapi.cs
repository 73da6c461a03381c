// SPDX-License-Identifier: MIT
using System.Text;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// MSR filters, coalesced MMIO and the kvmclock MSRs (<see cref="MsrFilterOps"/>, <see cref="CoalescedOps"/>,
/// <see cref="KvmClockMsrOps"/>, and their guest runs in TinyGuestRun.MsrFilter.cs and TinyGuestRun.Coalesced.cs).
/// </summary>
public sealed partial class KernelSession
{
    private string ApplyNewUapiOp(FuzzOp op) => op.Kind switch
    {
        OpKind.MsrFilter => MsrFilterOps.Apply(_kernel, Fd(op.Target), op, () => Scratch, Describe),
        OpKind.MsrFilterGuestRun => TinyGuestRun.RunMsrFilter(_kernel, Fd(op.Target), op.A),
        OpKind.Coalesced => CoalescedOps.Apply(_kernel, Fd(op.Target), op, Describe),
        OpKind.CoalescedGuestRun => TinyGuestRun.RunCoalesced(_kernel, Fd(op.Target), op.A, withReported: (op.E & 2) != 0),
        OpKind.KvmClockMsrs => KvmClockMsrs(op),
        _ => "unknown op",
    };

    /// <summary>KVM_SET_MSRS (E bit 0) then KVM_GET_MSRS of the same entries on vCPU Target, and on vCPU Other.</summary>
    private string KvmClockMsrs(FuzzOp op)
    {
        var fd = Fd(op.Target);
        var entries = KvmClockMsrOps.Entries(op.A);
        var text = new StringBuilder();
        if ((op.E & 1) != 0)
        {
            long set = _kernel.Ioctl(fd, KvmIoctls.KVM_SET_MSRS, MsrBuffer((uint)entries.Length, entries));
            text.Append("set ").Append(Describe(set)).Append(", ");
            foreach (ref var e in entries.AsSpan()) e.data = 0;
        }
        var get = MsrBuffer((uint)entries.Length, entries);
        long rc = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_MSRS, get);
        text.Append("get ").Append(Describe(rc));
        if (rc >= 0) AppendMsrs(text, get, entries.Length);
        if (op.Other < 0) return text.ToString();
        var other = MsrBuffer((uint)entries.Length, entries);
        long otherRc = _kernel.Ioctl(Fd(op.Other), KvmIoctls.KVM_GET_MSRS, other);
        text.Append(", other vcpu ").Append(Describe(otherRc));
        if (otherRc >= 0) AppendMsrs(text, other, entries.Length);
        return text.ToString();
    }
}
