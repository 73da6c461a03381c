// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// KVM_SET_SIGNAL_MASK (<see cref="SignalMaskOps"/>): drawn only on a kernel without guest_memfd and from a stream of
/// its own (<c>_sigmask</c>), so a seed's other calls keep their order and arguments.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _sigmask;

    private FuzzOp? NextSignalMask()
    {
        if (_sigmask.Next(48) != 0) return null;
        var pool = _sigmask.Next(6) == 0 ? _vms.Concat(_systems).Concat(_closed).ToList() : _vcpus;
        if (pool.Count == 0) return null;
        int variant = _sigmask.Next(8) switch { < 6 => SignalMaskOps.Struct, 6 => SignalMaskOps.Null, _ => SignalMaskOps.KernelPointer };
        return new FuzzOp(OpKind.SignalMask, Target: pool[_sigmask.Next(pool.Count)], A: (ulong)_sigmask.NextInt64() ^ ((ulong)_sigmask.Next() << 63),
            B: SignalMaskOps.Len(_sigmask), E: variant);
    }
}
