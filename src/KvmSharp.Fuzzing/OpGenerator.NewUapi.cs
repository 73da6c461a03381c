// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// MSR filters and userspace MSR exits (<see cref="MsrFilterOps"/>), coalesced MMIO/PIO zones and their ring
/// (<see cref="CoalescedOps"/>) and the kvmclock MSRs (<see cref="KvmClockMsrOps"/>): drawn only on a kernel without
/// guest_memfd, each from a stream of its own (<c>_msrFilter</c>, <c>_coalesced</c>, <c>_kvmclock</c>), so a seed's
/// other calls keep their order and arguments.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _msrFilter, _coalesced, _kvmclock;

    /// <summary>Zones drawn for each VM (registered or not): what a later call registers again or unregisters around.</summary>
    private readonly Dictionary<int, List<(ulong Addr, uint Size, uint Pio)>> _zones = [];

    /// <summary>One call in forty-eight; one of those in five a guest run on a fresh VM.</summary>
    private FuzzOp? NextMsrFilter()
    {
        if (_msrFilter.Next(48) != 0) return null;
        if (_msrFilter.Next(5) == 0)
            return _systems.Count == 0 ? null : new FuzzOp(OpKind.MsrFilterGuestRun, Target: _systems[_msrFilter.Next(_systems.Count)], A: (ulong)_msrFilter.Next());
        // Mostly a live VM; now and then a vCPU, a system handle or a closed one (ENOTTY / EBADF).
        var pool = _msrFilter.Next(8) == 0 ? _vcpus.Concat(_systems).Concat(_closed).ToList() : _vms;
        if (pool.Count == 0) return null;
        int target = pool[_msrFilter.Next(pool.Count)];
        int variant = _msrFilter.Next(10) switch { < 6 => MsrFilterOps.Set, 6 => MsrFilterOps.BadPointer, _ => MsrFilterOps.UserSpaceMsr };
        return new FuzzOp(OpKind.MsrFilter, Target: target, A: variant == MsrFilterOps.UserSpaceMsr ? MsrFilterOps.ReasonMask(_msrFilter) : (ulong)_msrFilter.NextInt64(),
            B: _msrFilter.Next(10) == 0 ? (ulong)_msrFilter.Next(1, 4) : 0, C: _msrFilter.Next(10) == 0 ? (ulong)_msrFilter.NextInt64() : 0, E: variant);
    }

    /// <summary>One call in forty-eight; one of those in four a guest run on a fresh VM.</summary>
    private FuzzOp? NextCoalesced()
    {
        if (_coalesced.Next(48) != 0) return null;
        if (_coalesced.Next(4) == 0)
            return _systems.Count == 0 ? null : new FuzzOp(OpKind.CoalescedGuestRun, Target: _systems[_coalesced.Next(_systems.Count)], A: (ulong)_coalesced.Next(), E: _includeReported ? 2 : 0);
        if (_coalesced.Next(5) == 0)
        {
            if (_vcpus.Count == 0) return null;
            bool write = _coalesced.Next(2) == 0;
            ulong words = _coalesced.Next(3) == 0 ? (ulong)_coalesced.NextInt64() : (ulong)_coalesced.Next(170) << 32 | (uint)_coalesced.Next(170);
            return new FuzzOp(OpKind.Coalesced, Target: _vcpus[_coalesced.Next(_vcpus.Count)], A: write ? 1UL : 0, D: words, E: CoalescedOps.Ring);
        }
        var pool = _coalesced.Next(8) == 0 ? _vcpus.Concat(_systems).Concat(_closed).ToList() : _vms;
        if (pool.Count == 0) return null;
        int target = pool[_coalesced.Next(pool.Count)];
        if (_coalesced.Next(10) == 0) return new FuzzOp(OpKind.Coalesced, Target: target, A: (ulong)_coalesced.Next(4), E: CoalescedOps.BadPointer);
        var drawn = _zones.TryGetValue(target, out var list) ? list : _zones[target] = [];
        bool unregister = drawn.Count > 0 && _coalesced.Next(3) == 0;
        var zone = unregister ? CoalescedOps.Around(_coalesced, drawn[_coalesced.Next(drawn.Count)])
            : drawn.Count > 0 && _coalesced.Next(4) == 0 ? drawn[_coalesced.Next(drawn.Count)] : CoalescedOps.Zone(_coalesced);
        if (!unregister && drawn.Count < 16) drawn.Add(zone);
        return new FuzzOp(OpKind.Coalesced, Target: target, A: zone.Addr, B: zone.Size, C: zone.Pio,
            E: unregister ? CoalescedOps.Unregister : CoalescedOps.Register);
    }

    /// <summary>One call in sixty-four, on a vCPU (now and then another handle), read back on another vCPU when there is one.</summary>
    private FuzzOp? NextKvmClock()
    {
        if (_kvmclock.Next(64) != 0) return null;
        var pool = _kvmclock.Next(10) == 0 ? _vms.Concat(_systems).Concat(_closed).ToList() : _vcpus;
        if (pool.Count == 0) return null;
        int target = pool[_kvmclock.Next(pool.Count)];
        int other = _vcpus.Count > 1 && _kvmclock.Next(2) == 0 ? _vcpus[_kvmclock.Next(_vcpus.Count)] : -1;
        return new FuzzOp(OpKind.KvmClockMsrs, Target: target, Other: other, A: (ulong)_kvmclock.Next(), E: _kvmclock.Next(4) == 0 ? 0 : 1);
    }
}
