// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>A call on which the two kernels answered differently, with the shortest sequence found that shows it.</summary>
public sealed record Divergence(int OpIndex, string Op, string Reference, string Candidate, IReadOnlyList<string> Reproducer);

public sealed record FuzzReport(int Ops, int Seed, IReadOnlyList<Divergence> Divergences, TimeSpan Elapsed);

/// <summary>
/// Applies one generated sequence to a reference kernel (the truth: the real one) and a candidate (the
/// emulator), compares every answer, and on a divergence reduces the sequence to a short reproducer. After a
/// divergence both sessions restart, so one run can report several.
/// </summary>
public sealed class DifferentialFuzzer(Func<IKernel> reference, Func<IKernel> candidate)
{
    /// <summary>Longest time spent reducing one divergence.</summary>
    public TimeSpan ReductionBudget { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Stop after this many divergences.</summary>
    public int MaxDivergences { get; init; } = 5;

    /// <summary>Calls per session before both restart (bounds live objects and replay cost).</summary>
    public int SessionLength { get; init; } = 400;

    public FuzzReport Run(int ops, int seed)
    {
        var clock = Stopwatch.StartNew();
        var divergences = new List<Divergence>();
        int done = 0;
        int session = 0;
        while (done < ops && divergences.Count < MaxDivergences)
        {
            int length = Math.Min(SessionLength, ops - done);
            var generator = new OpGenerator(HashCode.Combine(seed, session++));
            var log = new List<FuzzOp>(length);
            using (var a = new KernelSession(reference()))
            using (var b = new KernelSession(candidate()))
            {
                for (int i = 0; i < length; i++, done++)
                {
                    var op = generator.Next();
                    log.Add(op);
                    string ra = a.Apply(op);
                    string rb = b.Apply(op);
                    generator.Observe(op, ra);
                    if (ra == rb) continue;
                    divergences.Add(new Divergence(done, op.ToString(), ra, rb, Reduce(log).Select(o => o.ToString()).ToList()));
                    done++;
                    break;
                }
            }
        }
        return new FuzzReport(done, seed, divergences, clock.Elapsed);
    }

    /// <summary>Replays <paramref name="ops"/> on fresh kernels; true when they still disagree somewhere.</summary>
    public bool Diverges(IReadOnlyList<FuzzOp> ops)
    {
        using var a = new KernelSession(reference());
        using var b = new KernelSession(candidate());
        foreach (var op in ops)
        {
            if (a.Apply(op) != b.Apply(op)) return true;
        }
        return false;
    }

    /// <summary>Delta debugging (ddmin): drop chunks of calls while the divergence remains, within the budget.</summary>
    private List<FuzzOp> Reduce(List<FuzzOp> ops)
    {
        var clock = Stopwatch.StartNew();
        var current = new List<FuzzOp>(ops);
        int chunk = Math.Max(1, current.Count / 2);
        while (chunk >= 1 && clock.Elapsed < ReductionBudget)
        {
            bool removed = false;
            // The last call is the divergent one: keep it.
            for (int start = current.Count - 1 - chunk; start >= 0 && clock.Elapsed < ReductionBudget; start -= chunk)
            {
                var candidate = new List<FuzzOp>(current);
                candidate.RemoveRange(start, Math.Min(chunk, current.Count - 1 - start));
                if (Diverges(candidate))
                {
                    current = candidate;
                    removed = true;
                }
            }
            if (!removed) chunk /= 2;
        }
        return current;
    }
}
