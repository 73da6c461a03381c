// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.DirtyLog.Benchmarks;

/// <summary>
/// <c>-- probe [rounds]</c>: the benchmarks' scenarios timed interleaved. BenchmarkDotNet times all of C, then all
/// of the SDK; on this 2-core host other builds come and go within seconds, so a burst of load can land on one side.
/// Here every round times one batch of each variant back to back, in an order that rotates every round, and the
/// report gives the median per operation, the ratio of the medians, the median of the per-round ratios (load that
/// comes and goes cancels in it) and the bytes each variant allocated per operation. For the empty GET it also
/// times layers between C and the SDK: C writing into the SDK log's bitmap (the buffer's share), and a bare
/// P/Invoke of ioctl on the SDK's VM (the P/Invoke transition's share; the rest is the SDK).
/// </summary>
internal static unsafe partial class DirtyLogProbe
{
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int RawIoctl(int fd, nuint request, nuint arg);

    public static int Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 100;
        foreach (bool manual in new[] { false, true })
        {
            string calls = manual ? "GET + CLEAR" : "GET";
            using (var sdk = DirtyLogVm.Create(manual, pages: 1))
            {
                CReferenceDirtyLog.Open(DirtyLogVm.MemorySize, manual, DirtyLogVm.Code(1), DirtyLogVm.CodeGpa);
                try
                {
                    Measure($"(a) empty poll, 1 GiB slot, {calls}", rounds, batch: 100,
                        ("C", () => CReferenceDirtyLog.Check(manual ? CReferenceDirtyLog.GetClear() : CReferenceDirtyLog.Get(), "poll")),
                        ("SDK GetDirtyLog(log)", () => Reused(sdk, manual)),
                        ("SDK GetDirtyLog()", () => Allocating(sdk, manual)));
                    if (!manual)
                    {
                        Measure("(a) layers of the empty GET", rounds, batch: 100,
                            ("C", () => CReferenceDirtyLog.Check(CReferenceDirtyLog.Get(), "get")),
                            ("C into the SDK log's bitmap", () => CReferenceDirtyLog.Check(CReferenceDirtyLog.GetTo(sdk.Log.Words), "get")),
                            ("C# bare ioctl P/Invoke", () => RawGet(sdk)),
                            ("SDK GetDirtyLog(log)", () => Reused(sdk, manual)));
                    }
                }
                finally
                {
                    CReferenceDirtyLog.Close();
                }
            }
            foreach (int pages in new[] { 8, 128 })
            {
                using var sdk = DirtyLogVm.Create(manual, pages);
                CReferenceDirtyLog.Open(DirtyLogVm.MemorySize, manual, DirtyLogVm.Code(pages), DirtyLogVm.CodeGpa);
                try
                {
                    Measure($"(b) guest writes {pages} pages, then {calls}", rounds, batch: pages <= 8 ? 20 : 3,
                        ("C", () => CReferenceDirtyLog.Check(CReferenceDirtyLog.Round(manual ? 1 : 0), "round")),
                        ("SDK run + GetDirtyLog(log)", () => { sdk.Run(); Reused(sdk, manual); }),
                        ("SDK run + GetDirtyLog()", () => { sdk.Run(); Allocating(sdk, manual); }));
                }
                finally
                {
                    CReferenceDirtyLog.Close();
                }
            }
        }
        return 0;
    }

    private static void Reused(DirtyLogVm vm, bool manual)
    {
        vm.Slot.GetDirtyLog(vm.Log);
        if (manual) vm.Slot.ClearDirtyLog(vm.Log);
    }

    /// <summary>KVM_GET_DIRTY_LOG on the SDK's VM into its log's bitmap through a bare P/Invoke, bypassing the SDK.</summary>
    private static void RawGet(DirtyLogVm vm)
    {
        // SAFETY: the bitmap is the log's (pinned, one bit per page of the slot, all the kernel writes) and the
        // struct is on this stack frame; both outlive the synchronous ioctl. The VM's fd stays open (vm is alive).
        fixed (ulong* bitmap = vm.Log.Words)
        {
            var log = new kvm_dirty_log { slot = vm.Slot.Slot, dirty_bitmap = (ulong)bitmap };
            if (RawIoctl(vm.Vm.Handle.Number, KvmIoctls.KVM_GET_DIRTY_LOG, (nuint)(&log)) != 0)
                throw new InvalidOperationException($"KVM_GET_DIRTY_LOG: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private static void Allocating(DirtyLogVm vm, bool manual)
    {
        var log = vm.Slot.GetDirtyLog();
        if (manual) vm.Slot.ClearDirtyLog(log);
    }

    internal static void Measure(string title, int rounds, int batch, params (string Name, Action Body)[] variants)
    {
        foreach (var v in variants) for (int i = 0; i < 3 * batch; i++) v.Body();
        var samples = variants.Select(_ => new List<double>(rounds)).ToArray();
        var allocated = new long[variants.Length];
        string loadBefore = Load();
        for (int r = 0; r < rounds; r++)
        {
            for (int k = 0; k < variants.Length; k++)
            {
                int i = (r + k) % variants.Length;
                long bytes = GC.GetAllocatedBytesForCurrentThread();
                long start = Stopwatch.GetTimestamp();
                for (int n = 0; n < batch; n++) variants[i].Body();
                samples[i].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds / batch);
                allocated[i] += GC.GetAllocatedBytesForCurrentThread() - bytes;
            }
        }
        Console.WriteLine($"{title}: {rounds} interleaved rounds of {batch} ops; load {loadBefore} → {Load()}");
        Console.WriteLine($"  {"variant",-28} {"median/op",11} {"p25",9} {"p75",9} {"ratio (medians)",16} {"median per-round ratio",23} {"B/op",9}");
        double c = Median(samples[0]);
        for (int i = 0; i < variants.Length; i++)
        {
            var s = samples[i];
            double perRound = Median(s.Zip(samples[0], (x, y) => x / y).ToList());
            double bytesPerOp = allocated[i] / (double)(rounds * batch);
            Console.WriteLine($"  {variants[i].Name,-28} {Median(s),8:F2} µs {Quantile(s, 0.25),9:F2} {Quantile(s, 0.75),9:F2} {Median(s) / c,16:F3} {perRound,23:F3} {bytesPerOp,9:F0}");
        }
        Console.WriteLine();
    }

    private static string Load() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    private static double Median(List<double> s) => Quantile(s, 0.5);

    private static double Quantile(List<double> s, double q)
    {
        var sorted = s.Order().ToArray();
        return sorted[(int)Math.Round(q * (sorted.Length - 1))];
    }
}
