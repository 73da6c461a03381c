// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The argument of KVM_ENABLE_CAP: mostly KVM_CAP_EXIT_HYPERCALL or KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with valid, empty
/// or garbage arguments, sometimes a dirty-ring cap with a ring size or KVM_CAP_X2APIC_API with its flags.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>
    /// struct kvm_enable_cap (cap@0 flags@4 args[0]@8): mostly KVM_CAP_EXIT_HYPERCALL with a valid, empty or garbage
    /// mask, or KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with its options; sometimes flags or another cap. False for any other
    /// request (or a buffer too short for args[0]).
    /// </summary>
    private bool FillEnableCap(uint request, byte[] b)
    {
        if (request != KvmIoctls.KVM_ENABLE_CAP || b.Length < 16) return false;
        bool manual = _rng.Next(3) == 0;
        uint cap = (uint)(manual ? KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 : KvmCaps.KVM_CAP_EXIT_HYPERCALL);
        // The dirty ring caps with a size in bytes: valid powers of two from a page to 1 MiB, or anything — drawn
        // only instead of the hypercall cap, so manual protect (which KVM_CLEAR_DIRTY_LOG needs, and a ring makes
        // ENXIO) keeps its share: with the ring drawn over it too, a 200 000-input run sometimes had no successful
        // clear at all (RawIoctlFuzzerTests, seen in a clean-clone CI run).
        int ring = manual ? 7 : _rng.Next(8);
        if (ring < 2) cap = (uint)(ring == 0 ? KvmCaps.KVM_CAP_DIRTY_LOG_RING : KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
        else if (ring == 2) cap = KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP;
        BinaryPrimitives.WriteUInt32LittleEndian(b, _rng.Next(4) == 0 ? (uint)Interesting() : cap);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), _rng.Next(8) == 0 ? (uint)Interesting() : 0);
        U64(b, 8, manual
            ? _rng.Next(4) switch { 0 => (ulong)_rng.Next(4), 1 => Interesting(), _ => KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | (ulong)_rng.Next(2) << 1 }
            : _rng.Next(3) switch { 0 => 0, 1 => Interesting(), _ => KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK });
        if (ring < 3) U64(b, 8, _rng.Next(3) == 0 ? Interesting() : Ps << _rng.Next(0, 10));
        // KVM_CAP_X2APIC_API now and then instead of the hypercall cap: flags 0–15 (4 only on a split irqchip, 4|8
        // EINVAL) or anything (X86/Irqchip/X2apicApi.cs).
        if (!manual && ring >= 3 && _rng.Next(6) == 0)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b, KvmCaps.KVM_CAP_X2APIC_API);
            U64(b, 8, _rng.Next(4) == 0 ? Interesting() : (ulong)(uint)_rng.Next(16));
        }
        return true;
    }
}
