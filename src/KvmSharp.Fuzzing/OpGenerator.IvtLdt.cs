// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.IvtLdtGuestRun"/>: real-mode guests taking interrupts and exceptions through the IVT and 64-bit
/// guests loading the LDT, each on a VM of its own made from a /dev/kvm handle (now and then a closed one or a VM).
/// Drawn only on a kernel without guest_memfd, from a stream of its own (<c>_ivtLdt</c>), asked after the level-EOI
/// stream: the earlier streams' calls keep their order and arguments.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _ivtLdt;

    private FuzzOp? NextIvtLdt()
    {
        if (_ivtLdt.Next(48) != 0) return null;
        var pool = _ivtLdt.Next(16) == 0 ? _closed.Concat(_vms).ToList() : _systems;
        int kind = _ivtLdt.Next(2);
        if (pool.Count == 0) return null;
        return new FuzzOp(OpKind.IvtLdtGuestRun, Target: pool[_ivtLdt.Next(pool.Count)], A: (ulong)_ivtLdt.NextInt64(), E: kind | (_includeReported ? 2 : 0));
    }
}
