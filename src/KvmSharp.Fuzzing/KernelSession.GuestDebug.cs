// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.GuestDebugSet"/>: KVM_SET_GUEST_DEBUG drawn by <see cref="GuestDebugOps"/>, what it queued
/// (KVM_GET_VCPU_EVENTS) and left of the guest's own debug registers (KVM_GET_DEBUGREGS), every byte; then
/// KVM_SET_GUEST_DEBUG(0), so no later call meets host debugging it does not expect (a queued #DB/#BP stays, as
/// one KVM_SET_VCPU_EVENTS queues would).
/// </summary>
public sealed partial class KernelSession
{
    private string GuestDebugSet(FuzzOp op)
    {
        var fd = Fd(op.Target);
        var rng = new Random(unchecked((int)op.A * 13 + 0xDB9));
        // INJECT_DB/BP included: the #DB/#BP stays queued for later calls on this vCPU (KVM_SET_REGS drops it, a
        // KVM_RUN delivers it), which the kernels must agree on.
        uint control = GuestDebugOps.Control(rng);
        Span<ulong> regs = stackalloc ulong[8];
        GuestDebugOps.DebugRegs(rng, regs, [0xFFF0, 0x10_0000, (ulong)rng.NextInt64()], withGd: true);
        var dbg = GuestDebugOps.Struct(control, regs, rng.Next(8) == 0 ? (uint)rng.Next() : 0);
        string text = string.Create(CultureInfo.InvariantCulture, $"set 0x{control:X} {Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_SET_GUEST_DEBUG, Bytes(ref dbg)))}");
        var events = new kvm_vcpu_events();
        long rc = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_VCPU_EVENTS, Bytes(ref events));
        text += ", events " + Describe(rc) + (rc == 0 ? " " + Convert.ToHexString(Bytes(ref events)) : "");
        var debugRegs = new kvm_debugregs();
        rc = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_DEBUGREGS, Bytes(ref debugRegs));
        text += ", debugregs " + Describe(rc) + (rc == 0 ? " " + Convert.ToHexString(Bytes(ref debugRegs)) : "");
        var off = new kvm_guest_debug();
        return text + ", off " + Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_SET_GUEST_DEBUG, Bytes(ref off)));
    }
}
