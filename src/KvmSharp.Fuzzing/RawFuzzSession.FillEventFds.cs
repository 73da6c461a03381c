// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// Argument buffers for the two requests that wire an eventfd into a VM: KVM_IOEVENTFD (a guest write to an address
/// signals it) and KVM_IRQFD (signalling it injects a GSI), mostly with one of the session's eventfds.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>KVM_IOEVENTFD and KVM_IRQFD; false for any other request.</summary>
    private bool FillEventFdWiring(uint request, byte[] b)
    {
        if (request == KvmIoctls.KVM_IOEVENTFD) FillIoEventFd(b);
        else if (request == KvmIoctls.KVM_IRQFD) FillIrqFd(b);
        else return false;
        return true;
    }

    /// <summary>
    /// struct kvm_ioeventfd: datamatch@0 addr@8 len@16 fd@20 flags@24 — lengths and flags around the valid ones,
    /// addresses that repeat (collisions, deassigns) or wrap.
    /// </summary>
    private void FillIoEventFd(byte[] b)
    {
        U64(b, 0, _rng.Next(3) == 0 ? Interesting() : (ulong)_rng.Next(4));
        U64(b, 8, _rng.Next(6) switch { 0 => Interesting(), 1 => ulong.MaxValue - (ulong)_rng.Next(8), 2 => (ulong)_rng.Next(0x10000), _ => 0xd0000000 + 8 * (ulong)_rng.Next(4) });
        U32(b, 16, _rng.Next(8) == 0 ? (uint)Interesting() : (uint)new[] { 0, 1, 2, 3, 4, 8 }[_rng.Next(6)]);
        U32(b, 20, (uint)PickEventFd());
        U32(b, 24, _rng.Next(8) == 0 ? (uint)Interesting() : (uint)_rng.Next(32));
    }

    /// <summary>struct kvm_irqfd: fd@0 gsi@4 flags@8 resamplefd@12.</summary>
    private void FillIrqFd(byte[] b)
    {
        U32(b, 0, (uint)PickEventFd());
        U32(b, 4, (uint)_rng.Next(32));
        U32(b, 8, _rng.Next(6) == 0 ? (uint)Interesting() : (uint)_rng.Next(4));
        U32(b, 12, (uint)PickEventFd());
    }
}
