// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// Guest time (<see cref="ClockOps"/>): KVM_GET_CLOCK and KVM_SET_CLOCK on the session's VMs with clock values, flags,
/// realtimes and pads valid and not, and KVM_GET/SET_TSC_KHZ on its vCPUs and VMs with rates around the host's
/// thresholds. Like the vCPU state calls (OpGenerator.VcpuState.cs): drawn only on a kernel without guest_memfd and
/// from a stream of their own (<c>_clock</c>), so a seed's other calls keep their order and arguments.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _clock;

    private FuzzOp? NextClock()
    {
        if (_clock.Next(16) != 0) return null;
        if (_clock.Next(2) == 0)
        {
            // Mostly a live VM; now and then a vCPU, a system handle or a closed one (EINVAL / EBADF).
            var pool = _clock.Next(12) == 0 ? _vcpus.Concat(_systems).Concat(_closed).ToList() : _vms;
            if (pool.Count == 0) return null;
            int target = pool[_clock.Next(pool.Count)];
            int variant = _clock.Next(10) switch { < 3 => ClockOps.Get, < 9 => ClockOps.SetThenGet, _ => ClockOps.BadPointer };
            // The flags are compared exactly for every VM: the emulator models the TSC generations (X86/TscSync.cs).
            return new FuzzOp(OpKind.Clock, Target: target, A: ClockOps.Value(_clock), B: ClockOps.Flags(_clock),
                C: (ulong)(uint)_clock.Next(4) | (_clock.Next(6) == 0 ? ClockOps.DirtyPads : 0UL), E: variant, U: (ulong)_clock.NextInt64());
        }
        var targets = _clock.Next(5) == 0 ? _vms.Concat(_systems).Concat(_closed).ToList() : _vcpus;
        if (targets.Count == 0) return null;
        return new FuzzOp(OpKind.TscKhz, Target: targets[_clock.Next(targets.Count)], A: (ulong)_clock.Next(ClockOps.RateKinds),
            B: (ulong)_clock.Next(-2000, 2001), C: (ulong)_clock.NextInt64(), E: _clock.Next(5) == 0 ? 0 : 1);
    }
}
