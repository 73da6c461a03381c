// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// The dirty ring (<see cref="OpKind.DirtyRingRun"/>) and guests that EOI an IOAPIC interrupt (<see cref="OpKind.LevelEoiGuestRun"/>): a VM of its own on a /dev/kvm handle, so no other stream's VM
/// gets a ring (their KVM_GET_DIRTY_LOG would be ENXIO). Drawn only on a kernel without guest_memfd, from a stream of
/// its own (<c>_ring</c>), asked after the irqchip stream.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _ring;

    private FuzzOp? NextDirtyRing()
    {
        if (_ring.Next(40) != 0) return null;
        // Now and then a closed handle or a VM instead of /dev/kvm.
        var pool = _ring.Next(16) == 0 ? _closed.Concat(_vms).ToList() : _systems;
        if (pool.Count == 0) return null;
        return new FuzzOp(OpKind.DirtyRingRun, Target: pool[_ring.Next(pool.Count)], A: (ulong)_ring.NextInt64());
    }

    private readonly Random _eoi;

    /// <summary>
    /// <see cref="OpKind.LevelEoiGuestRun"/>: a VM of its own with the in-kernel irqchip, on a /dev/kvm handle (now and
    /// then a closed one or a VM), from a stream of its own (<c>_eoi</c>), asked after the dirty ring's.
    /// </summary>
    private FuzzOp? NextLevelEoi()
    {
        if (_eoi.Next(40) != 0) return null;
        var pool = _eoi.Next(16) == 0 ? _closed.Concat(_vms).ToList() : _systems;
        if (pool.Count == 0) return null;
        return new FuzzOp(OpKind.LevelEoiGuestRun, Target: pool[_eoi.Next(pool.Count)], A: (ulong)_eoi.NextInt64());
    }
}
