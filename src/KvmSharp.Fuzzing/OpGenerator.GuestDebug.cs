// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// KVM_SET_GUEST_DEBUG on the session's vCPUs and host-debugged tiny guests (<see cref="GuestDebugOps"/>). Like the
/// vCPU state calls (OpGenerator.VcpuState.cs): drawn only on a kernel without guest_memfd and from a stream of their
/// own (<c>_debug</c>), so a seed's other calls keep their order and arguments.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _debug;

    private FuzzOp? NextGuestDebug()
    {
        if (_debug.Next(16) != 0) return null;
        if (_debug.Next(5) < 2 && _vcpus.Count > 0)
        {
            // Now and then on a VM handle (not a vCPU ioctl there) or a closed one.
            var pool = _debug.Next(20) == 0 ? _vms.Concat(_closed).ToList() : _vcpus;
            return new FuzzOp(OpKind.GuestDebugSet, Target: pool.Count == 0 ? -1 : pool[_debug.Next(pool.Count)], A: (ulong)_debug.Next());
        }
        if (_systems.Count == 0) return null;
        return new FuzzOp(OpKind.GuestDebugRun, Target: _systems[_debug.Next(_systems.Count)], A: (ulong)_debug.Next());
    }
}
