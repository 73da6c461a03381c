// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// x86 CPUID and MSR calls (<see cref="X86StateOps"/>): KVM_GET/SET_MSRS with random entry lists and counts (255, 256
/// and far beyond: MAX_IO_MSRS), KVM_SET/GET_CPUID2 with small tables and random nent, the system lists with counts
/// below and above every machine's table, and tiny guests executing CPUID, RDMSR and WRMSR. Drawn only on a kernel
/// without guest_memfd (<see cref="NextWithoutGuestMemfd"/>) and from a stream of their own (<c>_x86</c>): a seed's
/// calls on a kernel with guest_memfd are the ones they always were, and on one without, its earlier calls are still
/// all there, in the same order, with these in between.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _x86;

    private FuzzOp? NextX86State()
    {
        if (_x86.Next(8) != 0) return null;
        bool reported = _includeReported;
        int roll = _x86.Next(100);
        if (roll < 30 && _vcpus.Count > 0)
        {
            int count = _x86.Next(8) == 0 ? _x86.Next(0, 40) : _x86.Next(0, 6);
            return new FuzzOp(OpKind.MsrsIo, Target: PickX86(_vcpus), A: (ulong)_x86.Next(), B: Count(count, 255, 256), C: (ulong)count,
                E: _x86.Next(2) | (reported ? 2 : 0));
        }
        if (roll < 55 && _vcpus.Count > 0)
        {
            int count = _x86.Next(0, 7);
            int get = _x86.Next(4) switch { 0 => 0, 1 => _x86.Next(0, 8), 2 => 256, _ => count };
            return new FuzzOp(OpKind.CpuidRoundTrip, Target: PickX86(_vcpus), A: (ulong)_x86.Next(), B: Count(count, 256, 257), C: (ulong)count,
                D: _x86.Next(16) == 0 ? uint.MaxValue : (ulong)get, E: _x86.Next(5) == 0 ? 1 : 0);
        }
        if (roll < 75 && _systems.Count > 0)
        {
            int list = _x86.Next(5);
            // Counts both kernels' tables exceed, or none does (the emulator's are trimmed copies of this host's).
            ulong n = list switch
            {
                0 => _x86.Next(3) == 0 ? (ulong)_x86.Next(0, 10) : BigCount(),
                1 => _x86.Next(3) == 0 ? (ulong)_x86.Next(0, 3) : BigCount(),
                2 => _x86.Next(3) == 0 ? (ulong)_x86.Next(0, 11) : BigCount(),
                3 => _x86.Next(3) == 0 ? (ulong)_x86.Next(0, 2) : BigCount(),
                _ => 0,
            };
            int count = _x86.Next(0, 6);
            if (list == 4) n = Count(count, 255, 256);
            // Now and then on a VM or vCPU handle (not a system ioctl there) or a closed one.
            int target = _x86.Next(10) == 0 ? PickX86(_systems.Concat(_vms).Concat(_vcpus).Concat(_closed).ToList()) : PickX86(_systems);
            return new FuzzOp(OpKind.SystemX86List, Target: target, A: (ulong)_x86.Next(), B: n, C: (ulong)count, E: list);
        }
        if (_systems.Count > 0) return new FuzzOp(OpKind.X86GuestRun, Target: PickX86(_systems), A: (ulong)_x86.Next(), E: reported ? 2 : 0);
        return null;
    }

    /// <summary>Usually the entry count; sometimes one less or more, the last count accepted, the first refused, or anything.</summary>
    private ulong Count(int count, uint lastAccepted, uint firstRefused) => _x86.Next(12) switch
    {
        0 => (ulong)Math.Max(0, count - 1),
        1 => (ulong)count + 1,
        2 => lastAccepted,
        3 => firstRefused,
        4 => (ulong)_x86.NextInt64(0, 1L << 32),
        _ => (ulong)count,
    };

    private ulong BigCount() => _x86.Next(4) switch { 0 => 256, 1 => 257, 2 => 1000, _ => uint.MaxValue };

    private int PickX86(List<int> ids) => ids.Count == 0 ? -1 : ids[_x86.Next(ids.Count)];
}
