// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// mbind / get_mempolicy / move_pages (<see cref="OpKind.Mempolicy"/>) on a session's anonymous pages: modes, mode
/// flags, masks and maxnode valid and not, pointers at the scratch, NULL or the kernel half. Like the device
/// attributes, drawn only on a kernel without guest_memfd and from a stream of its own (<c>_numa</c>).
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _numa;

    private FuzzOp? NextMempolicy()
    {
        if (_numa.Next(32) != 0) return null;
        int call = _numa.Next(4);
        int mode = _numa.Next(8) switch
        {
            < 5 => _numa.Next(8),                           // MPOL_DEFAULT … MPOL_MAX
            5 => _numa.Next(7) | (1 << (13 + _numa.Next(3))), // one mode flag
            6 => _numa.Next(7) | (_numa.Next(8) << 13),      // any mode flags
            _ => _numa.Next(),
        };
        ulong mask = _numa.Next(6) switch
        {
            0 => 0,
            < 4 => 1,
            4 => 3,
            _ => (ulong)_numa.NextInt64(),
        };
        ulong maxnode = _numa.Next(8) switch
        {
            0 => 0,
            1 => 1,
            2 => 2,
            < 6 => 64,
            6 => (ulong)_numa.Next(200),
            _ => (ulong)_numa.Next(40000),
        };
        var at = _numa.Next(4) == 0 ? (DirtyBitmapAt)_numa.Next(1, 7) : DirtyBitmapAt.Scratch;
        ulong u = (ulong)_numa.NextInt64();
        int flags = call == MempolicyOps.MovePages && _numa.Next(6) == 0 ? _numa.Next(5) : 0;
        return new FuzzOp(OpKind.Mempolicy, A: (ulong)(uint)(call == MempolicyOps.MovePages ? flags : mode), B: mask, C: maxnode, D: (ulong)at, E: call, U: u);
    }
}
