// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Globalization;

namespace KvmSharp.Benchmarks;

/// <summary>
/// A/B/A/B cross-check of the BenchmarkDotNet run: BenchmarkDotNet measures all of C, then all of Sdk, so on a busy
/// machine (other builds on 2 cores) a burst of load can land on one side only. Here each round times every variant
/// once, back to back in a rotating order, on the same benchmark objects, and the per-round ratio Sdk/C is taken;
/// its median is robust to load that comes and goes. Run with
/// <c>dotnet run -c Release --project bench/KvmSharp.Benchmarks --artifacts-path /tmp/kvmsharp-bench -- --interleaved [rounds]</c>.
/// </summary>
internal static class Interleaved
{
    private sealed record Case(string Name, Action Setup, Action Cleanup, (string Name, Func<long> Run)[] Variants);

    public static int Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 30;
        Console.WriteLine($"Interleaved A/B, {rounds} rounds; times are medians per operation, ratios the median of per-round ratios to C.");
        Console.WriteLine();
        Console.WriteLine("| Benchmark | SizeMiB | Method | Median | Ratio (median) | Ratio (p25–p75) |");
        Console.WriteLine("|---|---:|---|---:|---:|---:|");
        foreach (Case c in Cases())
        {
            c.Setup();
            try { Measure(c, rounds); }
            finally { c.Cleanup(); }
        }
        return 0;
    }

    private static IEnumerable<Case> Cases()
    {
        foreach (int size in new[] { 16, 64 })
        {
            var b = new GuestMemfdFirstTouch { SizeMiB = size };
            yield return new Case($"FirstTouch|{size}", b.Setup, b.Cleanup, [("C", b.C), ("Sdk", b.Sdk), ("SdkSpan", b.SdkSpan)]);
        }
        foreach (int size in new[] { 1, 16 })
        {
            var b = new GuestMemfdWarmCopy { SizeMiB = size };
            yield return new Case($"WarmCopy|{size}", b.Setup, b.Cleanup, [("C", b.C), ("Sdk", b.Sdk)]);
        }
        {
            var b = new GuestMemfdWarmTouch { SizeMiB = 16 };
            yield return new Case("WarmTouch|16", b.Setup, b.Cleanup, [("C", b.C), ("Sdk", b.Sdk), ("SdkSpan", b.SdkSpan)]);
        }
    }

    private static void Measure(Case c, int rounds)
    {
        var variants = c.Variants;
        // Batch fast operations so one sample lasts at least ~2 ms (timer resolution and call overhead vanish).
        int batch = 1;
        foreach (var (_, run) in variants)
        {
            for (int i = 0; i < 3; i++) run();
            long t0 = Stopwatch.GetTimestamp();
            run();
            double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            batch = Math.Max(batch, (int)Math.Ceiling(2.0 / Math.Max(ms, 1e-4)));
        }
        var times = new double[variants.Length][];
        for (int v = 0; v < variants.Length; v++) times[v] = new double[rounds];
        long sink = 0;
        for (int r = 0; r < rounds; r++)
        {
            for (int k = 0; k < variants.Length; k++)
            {
                // Rotate the order every round and reverse it every other cycle, so each variant runs in each
                // position, and after each other variant, equally often (the previous variant's munmap/close
                // leaves work and cold memory behind that would otherwise always land on the same neighbour).
                int n = variants.Length;
                int slot = ((r / n) & 1) == 0 ? k : n - 1 - k;
                int v = (slot + r) % n;
                Func<long> run = variants[v].Run;
                long t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < batch; i++) sink += run();
                times[v][r] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds / batch;
            }
        }
        GC.KeepAlive(sink);
        string[] parts = c.Name.Split('|');
        for (int v = 0; v < variants.Length; v++)
        {
            double[] ratios = [.. Enumerable.Range(0, rounds).Select(r => times[v][r] / times[0][r]).Order()];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {parts[0]} | {parts[1]} | {variants[v].Name} | {Format(Median(times[v]))} | {Median(ratios):F3} | {Quantile(ratios, 0.25):F3}–{Quantile(ratios, 0.75):F3} |"));
        }
    }

    private static string Format(double us) =>
        us >= 1000 ? string.Create(CultureInfo.InvariantCulture, $"{us / 1000:F2} ms") : string.Create(CultureInfo.InvariantCulture, $"{us:F2} us");

    private static double Median(double[] values) => Quantile([.. values.Order()], 0.5);

    private static double Quantile(double[] sorted, double q)
    {
        double pos = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }
}
