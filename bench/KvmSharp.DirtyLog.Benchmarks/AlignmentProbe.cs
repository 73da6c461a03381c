// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.DirtyLog.Benchmarks;

/// <summary>
/// <c>-- alignment [rounds]</c>: KVM_GET_DIRTY_LOG and KVM_CLEAR_DIRTY_LOG of the 1 GiB slot with the user bitmap at
/// different offsets from a page boundary (bare P/Invoke, one native page-aligned block), interleaved. The kernel's
/// bitmaps of that size are page-aligned and it copies with <c>rep movs</c>: a user bitmap 8–24 bytes past a page
/// boundary makes GET's copy-out ten times slower, one 8 bytes before it CLEAR's copy-in (4K aliasing). This is
/// why <see cref="DirtyPageLog"/> aligns its bitmap to 64 bytes (and the C reference its own): a pinned array lands
/// at any multiple of 8, and in one BenchmarkDotNet run it landed at page offset 8.
/// </summary>
internal static unsafe partial class AlignmentProbe
{
    private static readonly int[] Offsets = [0, 8, 16, 24, 32, 64, 2048, 4032, 4080, 4088];

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int RawIoctl(int fd, nuint request, nuint arg);

    public static int Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 40;
        const int batch = 50;
        foreach (bool manual in new[] { false, true })
        {
            using var vm = DirtyLogVm.Create(manual, pages: 1);
            int fd = vm.Vm.Handle.Number;
            int bytes = vm.Log.Words.Length * sizeof(ulong);
            byte* block = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes + 8192), 4096);
            try
            {
                var get = Offsets.Select(_ => new List<double>(rounds)).ToArray();
                var clear = Offsets.Select(_ => new List<double>(rounds)).ToArray();
                for (int r = 0; r < rounds; r++)
                {
                    for (int k = 0; k < Offsets.Length; k++)
                    {
                        // SAFETY: block has bytes + 8192 bytes, so the bitmap at any offset below 4096 lies inside it; the
                        // kernel writes (GET) or reads (CLEAR) exactly one bit per page of the slot, bytes in all; the
                        // structs are on this stack frame and the calls are synchronous.
                        ulong bitmap = (ulong)(block + Offsets[k]);
                        var log = new kvm_dirty_log { slot = vm.Slot.Slot, dirty_bitmap = bitmap };
                        get[k].Add(Time(batch, fd, KvmIoctls.KVM_GET_DIRTY_LOG, (nuint)(&log)));
                        if (!manual) continue;
                        var c = new kvm_clear_dirty_log { slot = vm.Slot.Slot, num_pages = (uint)vm.Log.PageCount, dirty_bitmap = bitmap };
                        clear[k].Add(Time(batch, fd, KvmIoctls.KVM_CLEAR_DIRTY_LOG, (nuint)(&c)));
                    }
                }
                Console.WriteLine($"{(manual ? "manual protect" : "GET clears")}: 1 GiB slot, bare ioctl, {rounds} interleaved rounds of {batch}; load {File.ReadAllText("/proc/loadavg").Trim()}");
                Console.WriteLine($"  {"bitmap page offset",18} {"GET median",12}" + (manual ? $" {"CLEAR median",13}" : ""));
                for (int k = 0; k < Offsets.Length; k++)
                    Console.WriteLine($"  {Offsets[k],18} {Median(get[k]),9:F2} µs" + (manual ? $" {Median(clear[k]),10:F2} µs" : ""));
                Console.WriteLine();
            }
            finally
            {
                NativeMemory.AlignedFree(block);
            }
        }
        return 0;
    }

    /// <summary>Microseconds per ioctl(fd, request, arg), over <paramref name="batch"/> calls.</summary>
    private static double Time(int batch, int fd, uint request, nuint arg)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < batch; i++)
        {
            if (RawIoctl(fd, request, arg) != 0) throw new InvalidOperationException($"ioctl failed: errno {Marshal.GetLastPInvokeError()}");
        }
        return Stopwatch.GetElapsedTime(start).TotalMicroseconds / batch;
    }

    private static double Median(List<double> s) => s.Order().ElementAt(s.Count / 2);
}
