// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// The value generators every kind of call shares: <see cref="Interesting"/> integers (edges, powers of two, page
/// multiples and near-misses, huge and random values) and the user pointers the emulator writes through or reads
/// from, kept inside the fuzzer's PROT_NONE sandbox so a copy never reaches this process's live memory.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>An integer from the classes that find bugs: 0, 1, small, all-ones, sign bit, powers of two, page-ish, random.</summary>
    private ulong Interesting() => _rng.Next(14) switch
    {
        0 => 0,
        1 => 1,
        2 => (ulong)_rng.Next(64),
        3 => ulong.MaxValue,
        4 => 1UL << 63,
        5 => int.MaxValue,
        6 => uint.MaxValue,
        7 => (ulong)_rng.Next(1, 64) << _rng.Next(12, 63),
        8 => (ulong)_rng.NextInt64(),
        9 => ulong.MaxValue - (ulong)_rng.Next(PageSize),
        10 => Ps * (ulong)_rng.Next(0, 64),
        11 => Ps * (ulong)_rng.Next(0, 64) + (ulong)_rng.Next(1, PageSize),
        12 => (ulong)_rng.Next(1, 64) << 32,
        _ => (ulong)_rng.NextInt64() | ((ulong)_rng.Next(2) << 63),
    };

    /// <summary>
    /// A bitmap pointer: mostly into the sandbox's writable pages, sometimes NULL, the kernel half, the sandbox's
    /// PROT_NONE part or just before the end of its writable pages (a copy that faults part way).
    /// </summary>
    private ulong BitmapPointer()
    {
        ulong start = (ulong)_sandbox.Start, writable = UserSandbox.WritablePages * Ps;
        return _rng.Next(10) switch
        {
            0 => 0,
            1 => 0xFFFF_8000_0000_0000 + Ps * (ulong)_rng.Next(0, 16),
            2 => start + writable + Ps * (ulong)_rng.Next(0, 64),
            3 => start + writable - (ulong)_rng.Next(1, 16),
            4 => Interesting(),
            _ => start + (ulong)_rng.NextInt64(0, (long)(writable - 1024)) / 8 * 8 + (_rng.Next(8) == 0 ? (ulong)_rng.Next(1, 8) : 0),
        };
    }

    /// <summary>
    /// Keeps a user pointer the emulator will write through (or read from) away from this process's live memory:
    /// inside the sandbox, NULL or with bit 63 set (access_ok fails) it stays; anything else is moved into the sandbox
    /// (nearly always its PROT_NONE part: EFAULT). A copy runs forward from the pointer and stops at the first page it
    /// cannot write, so even a large bitmap never gets past the sandbox's PROT_NONE pages.
    /// </summary>
    private ulong SafeUserPointer(ulong pointer)
    {
        ulong start = (ulong)_sandbox.Start;
        if (pointer - start < UserSandbox.Size || pointer == 0 || pointer >= 1UL << 63) return pointer;
        return start + pointer % UserSandbox.Size;
    }
}
