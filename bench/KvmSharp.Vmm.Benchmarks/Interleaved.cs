// SPDX-License-Identifier: MIT
using System.Diagnostics;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// The probes' A/B timing: every round runs each variant once, in alternating order, so load that comes and goes
/// hits all of them alike; ratios are then taken per round.
/// </summary>
internal static class Interleaved
{
    /// <summary>
    /// Warms each body up <paramref name="warmups"/> times, then times <paramref name="rounds"/> rounds; sample i of
    /// variant k is its time in round i, in µs divided by <paramref name="perSample"/> (e.g. exits per call).
    /// </summary>
    public static List<double>[] Sample<T>(IReadOnlyList<Func<T>> bodies, int rounds, int warmups, double perSample = 1)
    {
        foreach (var body in bodies) for (int i = 0; i < warmups; i++) body();
        var samples = bodies.Select(_ => new List<double>(rounds)).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            for (int k = 0; k < bodies.Count; k++)
            {
                int i = (r & 1) == 0 ? k : bodies.Count - 1 - k;
                long start = Stopwatch.GetTimestamp();
                bodies[i]();
                samples[i].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds / perSample);
            }
        }
        return samples;
    }
}
